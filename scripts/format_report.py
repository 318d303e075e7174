#!/usr/bin/env python3
"""How many lines clang-format (.clang-format) would change, per folder, without touching a file.

Usage: scripts/format_report.py [FILE_OR_FOLDER...]   (default: every C/C++ file git tracks,
guest/ excepted). Prints "N folder" rows and a total; always exits 0 (a report, not a gate).
"""
import difflib
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLANG_FORMAT = os.environ.get("CLANG_FORMAT", "clang-format-14")


def tracked_sources(paths):
    files = subprocess.check_output(["git", "ls-files", "--", *(paths or ["."])], cwd=ROOT, text=True).split()
    return [f for f in files if f.endswith((".c", ".cpp", ".h")) and not f.startswith("guest/")]


def changed_lines(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        source = f.read()
    formatted = subprocess.run([CLANG_FORMAT, "--style=file", f"--assume-filename={path}"], input=source,
                               capture_output=True, text=True, cwd=ROOT, check=True).stdout
    diff = difflib.unified_diff(source.splitlines(), formatted.splitlines(), lineterm="", n=0)
    return path, sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))


def main():
    files = tracked_sources(sys.argv[1:])
    per_folder = Counter()
    total_lines = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for path, changed in pool.map(changed_lines, files):
            per_folder[os.path.dirname(path) or "."] += changed
    for path in files:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            total_lines += sum(1 for _ in f)
    for folder, changed in sorted(per_folder.items()):
        print(f"{changed:6d} {folder}")
    print(f"{sum(per_folder.values()):6d} lines of {total_lines} would change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
