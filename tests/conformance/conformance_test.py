#!/usr/bin/python3
"""Conformance kernels (tests/conformance/README.md) on vmm86 and on QEMU, serial consoles
and exit statuses compared. The expected answers are QEMU's (expected.txt beside this file,
written by `conformance_test.py qemu --record`), never vmm86's.

  conformance_test.py ENGINE --kernels DIR [--only NAME] [--record]
  ENGINE: qemu | vmm86 | vmm86-interp; DIR holds the built NAME.elf files.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).with_name("expected.txt")


@dataclasses.dataclass
class Kernel:
    name: str
    mem_mb: int = 32
    timeout_s: float = 60
    qemu_args: tuple[str, ...] = ()   # extra QEMU flags (-cpu, -smp, ...)
    vmm86_args: tuple[str, ...] = ()  # the same machine on vmm86
    # Lines left out of the comparison on both sides: (regex, why), each with its reason.
    ignore: tuple[tuple[str, str], ...] = ()


KERNELS = [
    Kernel("basics"),
]


def command(engine: str, k: Kernel, path: pathlib.Path) -> list[str]:
    if engine == "qemu":
        return ["qemu-system-i386", "-accel", "tcg", "-m", str(k.mem_mb), "-kernel", str(path), "-display", "none",
                "-serial", "stdio", "-monitor", "none", "-nodefaults", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", *k.qemu_args]
    cmd = [guestrun.vmm86_binary(engine), "run", "--kernel", str(path), "--mem", f"{k.mem_mb}M", "--no-reboot",
           "--debug-exit", "iobase=0xf4,iosize=4", *k.vmm86_args]
    return cmd + (["--engine", "interp"] if engine == "vmm86-interp" else [])


def console(engine: str, k: Kernel, path: pathlib.Path) -> tuple[list[str], int | None, str]:
    out, status, err, _ = guestrun.run_console(command(engine, k, path), k.timeout_s)
    text = out.decode("utf-8", "replace").replace("\r", "")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [line for line in lines if not any(re.search(p, line) for p, _ in k.ignore)], status, err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--kernels", type=pathlib.Path, required=True, help="the build's tests/conformance directory")
    ap.add_argument("--only", help="one kernel by name")
    ap.add_argument("--record", action="store_true", help="write QEMU's answers (qemu only)")
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")
    expected = {} if args.record else guestrun.read_sections(EXPECTED)
    recorded: list[str] = []
    failures = 0
    for k in KERNELS:
        if args.only and k.name != args.only:
            continue
        lines, status, err = console(args.engine, k, args.kernels / f"{k.name}.elf")
        if args.record:
            recorded += [f"[{k.name}]", f"status={status}", *lines]
            print(f"{k.name}: recorded {len(lines)} lines, status {status}")
            continue
        want = expected.get(k.name)
        if want is None:
            problem = "no answers recorded from QEMU (run with qemu --record)"
        elif lines != want[1:]:
            diff = [f"  line {i}: want {w!r}, got {g!r}" for i, (w, g) in enumerate(zip(want[1:], lines)) if w != g]
            diff += [f"  {len(want) - 1} lines wanted, {len(lines)} got"] if len(lines) != len(want) - 1 else []
            problem = "console differs from QEMU's:\n" + "\n".join(diff[:20])
        elif want[0] != f"status={status}":
            problem = f"exit status {status}, QEMU's {want[0]}"
        else:
            problem = ""
        failures += bool(problem)
        print(f"{k.name} ({args.engine}): {'FAIL: ' + problem if problem else 'ok'}")
        if problem:
            print("--- console:\n" + "\n".join(lines[-30:]) + "\n--- stderr:\n" + err)
    if args.record:
        header = ["# QEMU's serial consoles and exit statuses for tests/conformance/conformance_test.py,",
                  "# written by `conformance_test.py qemu --record` (qemu-system-i386, Debian 12); never from vmm86."]
        EXPECTED.write_text("\n".join(header + recorded) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
