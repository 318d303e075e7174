#!/usr/bin/env python3
"""Fails when folders depend on each other in a cycle (STYLE.md #1: dependencies go one way).

A folder depends on another when one of its files #includes a file of the other, or when a
CMake target built from its sources links a target built from the other's. A folder is the
directory a file sits in, except that the subfolders of devices/ count as devices/ (the
platform registers its devices in one file beside the interfaces they implement).
Exit status 0: no cycle; 1: cycles, each printed with one include or link per step.

Usage: scripts/check_layers.py [--graph]   (--graph also prints every folder edge)
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not ours (guest-side code, build output) or not code.
SKIPPED_DIRS = {".git", "guest", "docs", "scripts"}
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".h", ".hpp", ".inc", ".def")
# Folders whose subfolders count as the folder itself.
MERGED_ROOTS = ("devices",)
# Cycles tolerated for now, each with its reason and way out; a new cycle still fails.
KNOWN_CYCLES = {}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
COMMAND_RE = re.compile(r"\b(add_library|add_executable|target_link_libraries)\s*\(([^)]*)\)", re.DOTALL)


def folder_of(rel_path):
    folder = os.path.dirname(rel_path)
    for root in MERGED_ROOTS:
        if folder == root or folder.startswith(root + "/"):
            return root
    return folder


def walk(suffixes=None, names=None):
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames
                       if not (rel_dir == "." and (d in SKIPPED_DIRS or d.startswith("build")))]
        for name in filenames:
            if (suffixes and name.endswith(suffixes)) or (names and name in names):
                yield os.path.normpath(os.path.join(rel_dir, name))


def include_edges():
    """(from folder, to folder, where) for every #include "..." that names a file of the tree."""
    for rel in walk(suffixes=SOURCE_SUFFIXES):
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for match in INCLUDE_RE.finditer(text):
            name = match.group(1)
            target = None
            for candidate in (name, os.path.join(os.path.dirname(rel), name)):
                if os.path.isfile(os.path.join(ROOT, candidate)):
                    target = os.path.normpath(candidate)
                    break
            if target is None:
                continue  # generated, or a system header spelled with quotes
            line = text.count("\n", 0, match.start()) + 1
            yield folder_of(rel), folder_of(target), f"{rel}:{line} includes {target}"


def cmake_edges():
    """(from folder, to folder, where) for every link between two targets of the tree."""
    target_folder = {}
    links = []
    for rel in walk(names={"CMakeLists.txt"}):
        cmake_dir = os.path.dirname(rel)
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            text = re.sub(r"#[^\n]*", "", f.read())
        for match in COMMAND_RE.finditer(text):
            command, args = match.group(1), match.group(2).split()
            if not args:
                continue
            if command == "target_link_libraries":
                line = text.count("\n", 0, match.start()) + 1
                links += [(args[0], dep, f"{rel}:{line}") for dep in args[1:]
                          if dep not in ("PUBLIC", "PRIVATE", "INTERFACE")]
                continue
            # A target lives where its first source does (vmm/CMakeLists.txt builds several folders).
            sources = [a for a in args[1:] if a.endswith((".c", ".cc", ".cpp", ".S"))]
            where = os.path.dirname(os.path.normpath(os.path.join(cmake_dir, sources[0]))) if sources else cmake_dir
            target_folder[args[0]] = folder_of(os.path.join(where, "x"))
    for target, dep, where in links:
        if target in target_folder and dep in target_folder:
            yield target_folder[target], target_folder[dep], f"{where}: {target} links {dep}"


def strongly_connected(graph):
    """Tarjan's algorithm, iterative; returns the components of more than one folder."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def main():
    evidence = defaultdict(list)  # (from, to) -> where
    for source, dest, where in list(include_edges()) + list(cmake_edges()):
        if source != dest:
            evidence[(source, dest)].append(where)
    graph = defaultdict(set)
    for source, dest in evidence:
        graph[source].add(dest)
    if "--graph" in sys.argv[1:]:
        for source, dest in sorted(evidence):
            print(f"{source} -> {dest}  ({len(evidence[(source, dest)])}x, e.g. {evidence[(source, dest)][0]})")
    cycles = []
    for component in strongly_connected(graph):
        reason = KNOWN_CYCLES.get(frozenset(component))
        if reason:
            print(f"check_layers: known cycle {' <-> '.join(component)}: {reason}")
        else:
            cycles.append(component)
    for component in cycles:
        print(f"check_layers: folder cycle among {', '.join(component)}:")
        members = set(component)
        for source, dest in sorted(evidence):
            if source in members and dest in members:
                print(f"  {source} -> {dest}: {evidence[(source, dest)][0]}")
    if cycles:
        return 1
    print(f"check_layers: {len(graph)} folders, {len(evidence)} dependencies, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
