#!/usr/bin/python3
"""Python's own regression tests (Debian's libpython3.11-testsuite) inside the userland guest
(guest/build-userland.sh --with-testsuite), compared per test module with the results
recorded from QEMU on the same image (tests/guest/python_suite_expected.txt).

  python_suite.py ENGINE [--record] [--tests test_math,test_float,...]
      ENGINE   qemu | vmm86 | vmm86-interp
      --record write QEMU's results as the expected ones (QEMU only)
Per module the guest runs `python3.11 -m test --junit-xml ... MODULE` and prints a summary:
counts of passed / failed / skipped tests and the names of the failing ones; the module's
exit status and wall time are printed too but only the summary is compared. Prints one
line per module (ok / FAIL) and the total time. A module that differs is followed by the
tail of its log.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).resolve().parent / "python_suite_expected.txt"
MEM_MB = 1024  # the image, its test suite and python's biggest tests fit well in 1 GiB
MODULE_TIMEOUT_S = 3000
MODULES = ("test_math test_float test_cmath test_decimal test_fractions test_struct test_long "
           "test_int test_re test_json test_zlib test_hashlib test_bz2 test_lzma test_threading "
           "test_signal test_subprocess test_mmap test_os test_time test_select").split()

# Runs in the guest: turns libregrtest's JUnit XML into the lines that are compared.
SUMMARIZE = r'''
import sys, xml.etree.ElementTree as ET
passed, failed, skipped = 0, [], 0
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    print("no results:", type(e).__name__); sys.exit()
for case in root.iter("testcase"):
    name = case.get("name")
    if name is None:  # a test whose subtests failed never gets its result recorded
        failed.append("<a test with failing subtests>")
    elif case.find("failure") is not None or case.find("error") is not None:
        failed.append(name)
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"passed {passed} failed {len(failed)} skipped {skipped}")
for name in sorted(failed):
    print("FAIL", name)
'''


def guest_script(modules: list[str]) -> str:
    lines = ["cat > /tmp/summarize.py <<'@@END'", SUMMARIZE.strip(), "@@END", "mkdir -p /tmp/pt",
             "echo @@T0"]
    for m in modules:
        lines.append(
            f"echo '@@<{m}>'; s=$(date +%s)\n"
            f"cd /tmp && timeout {MODULE_TIMEOUT_S} python3.11 -m test --junit-xml /tmp/pt/{m}.xml {m} "
            f"</dev/null >/tmp/pt/{m}.log 2>&1; rc=$?\n"
            f"python3.11 /tmp/summarize.py /tmp/pt/{m}.xml\n"
            f"echo \"log: exit status $rc, $(( $(date +%s) - s )) s\"\n"
            f"tail -n 25 /tmp/pt/{m}.log | sed 's/^/log: /'\n"
            f"echo '@@</{m}>'")
    lines.append("echo @@T1")
    return "\n".join(lines) + "\n"


def parse(output: str) -> dict[str, tuple[str, str]]:
    """module -> (summary compared, log lines shown on a difference)"""
    result = {}
    for m in re.finditer(r"^@@<(\w+)>\n(.*?)^@@</\1>$", output, re.S | re.M):
        lines = m.group(2).rstrip("\n").split("\n")
        summary = "\n".join(l for l in lines if not l.startswith("log: "))
        log = "\n".join(l for l in lines if l.startswith("log: "))
        result[m.group(1)] = (summary, log)
    return result


def read_expected() -> dict[str, str]:
    expected: dict[str, list[str]] = {}
    current = None
    if EXPECTED.exists():
        for line in EXPECTED.read_text().split("\n"):
            if line.startswith("=== "):
                current = line[4:]
                expected[current] = []
            elif current is not None and not line.startswith("#"):
                expected[current].append(line)
    return {k: "\n".join(v).rstrip("\n") for k, v in expected.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--tests", default=",".join(MODULES))
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="for the whole run, seconds")
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")
    modules = args.tests.split(",")

    image = guestrun.userland_image(with_testsuite=True)
    run = guestrun.run(args.engine, guest_script(modules), timeout_s=args.timeout, mem_mb=MEM_MB,
                       image=image)
    body = run.console.split(guestrun.BEGIN, 1)[1] if guestrun.BEGIN in run.console else ""
    results = parse(body)
    timed = f"{run.timed_s:.0f} s of tests" if run.timed_s else "tests not timed"
    print(f"{args.engine}: {len(results)} of {len(modules)} modules in {run.total_s:.0f} s ({timed})"
          + ("" if run.ok else f"; {run.error or f'status {run.status}'}"))

    if args.record:
        if len(results) != len(modules):
            print("not recording: modules without results:", ", ".join(m for m in modules if m not in results))
            return 1
        old = read_expected()
        old.update({m: s for m, (s, _) in results.items()})
        parts = ["# Expected per-module results of tests/guest/python_suite.py ('=== module' sections).",
                 f"# Recorded by `python_suite.py qemu --record` (QEMU, {time.strftime('%Y-%m-%d')}, "
                 f"{run.total_s:.0f} s for {len(modules)} modules); never from vmm86."]
        parts += [f"=== {m}\n{old[m]}" for m in MODULES + [m for m in old if m not in MODULES] if m in old]
        EXPECTED.write_text("\n".join(parts) + "\n")
        for m, (_, log) in results.items():
            print(f"{m}: {results[m][0].splitlines()[0]}  [{log.splitlines()[0][5:] if log else ''}]")
        print(f"recorded {len(results)} modules into {EXPECTED.name}")
        return 0

    expected = read_expected()
    failed = 0
    for m in modules:
        if m not in results:
            failed += 1
            print(f"FAIL {m}: no result (the run ended: {run.error or f'status {run.status}'})")
            continue
        got, log = results[m]
        want = expected.get(m)
        status = log.splitlines()[0][5:] if log else ""
        if want is None:
            failed += 1
            print(f"FAIL {m}: no recorded answer (run `python_suite.py qemu --record`)")
        elif got == want:
            print(f"ok   {m}: {got.splitlines()[0]} [{status}]")
        else:
            failed += 1
            print(f"FAIL {m}: expected\n    " + want.replace("\n", "\n    ") + "\n  got\n    "
                  + got.replace("\n", "\n    ") + "\n  " + log.replace("\n", "\n  "))
    if not run.ok and len(results) == len(modules):
        failed += 1
        print(f"FAIL the guest did not end cleanly: {run.error or f'status {run.status}'}")
    print(f"{len(modules) - failed} of {len(modules)} modules as QEMU on {args.engine} ({run.total_s:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
