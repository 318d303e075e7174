#!/usr/bin/python3
"""Debian's kernel on two CPUs, on vmm86 (--smp 2) and on QEMU (-smp 2): the CPUs Linux brings
up, interrupts routed through the IOAPIC, the local APIC timer ticking on both, both CPUs
running work, and the answers of work run in parallel (two checksums at once, a pipeline).
The expected answers are QEMU's (tests/guest/smp_expected.txt, written by
`smp_test.py qemu --record`), never vmm86's.

  smp_test.py ENGINE [--medium kernel|disk] [--record]      ENGINE: qemu | vmm86 | vmm86-interp

--medium disk boots through SeaBIOS from a disk: the firmware starts the APs first (its own
INIT/SIPI and CPU count from fw_cfg), then Linux starts them again. The answers are the same.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).with_name("smp_expected.txt")
CPUS = 2
# Every line is a fact whose value depends on the machine, not on timing.
SCRIPT = r"""
echo "processors: $(grep -c ^processor /proc/cpuinfo)"
echo "online: $(cat /sys/devices/system/cpu/online)"
grep -q IO-APIC /proc/interrupts && echo "interrupts routed through the IO-APIC"
awk '/^ *LOC:/ { print "local timer interrupts on every CPU: " (($2 > 0 && $3 > 0) ? "yes" : "no") }' /proc/interrupts
seq 1 300000 > /tmp/numbers
md5sum /tmp/numbers > /tmp/a & sha1sum /tmp/numbers > /tmp/b & md5sum /tmp/numbers > /tmp/c & wait
echo "parallel: $(cat /tmp/a /tmp/b /tmp/c | cut -d' ' -f1 | tr '\n' ' ')"
echo "pipeline: $(seq 1 200000 | sort -r | awk '{ s += $1 } END { print s }') $(seq 1 100000 | md5sum | cut -d' ' -f1)"
awk '/^cpu[0-9]/ { print $1 " ran work: " (($2 + $4 > 0) ? "yes" : "no") }' /proc/stat
"""


def answers(console: str) -> list[str]:
    body = console.split(guestrun.BEGIN, 1)[1] if guestrun.BEGIN in console else ""
    body = body.split(guestrun.END_PREFIX, 1)[0]
    # The script's lines only: kernel messages ("[   29.2] reboot: ...") interleave with them.
    lines = [line.strip() for line in body.splitlines() if not re.match(r"\s*\[\s*\d+\.\d+\]", line)]
    return [line for line in lines if ": " in line or "IO-APIC" in line]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--record", action="store_true", help="write QEMU's answers (qemu only)")
    ap.add_argument("--medium", default="kernel", choices=["kernel", "disk"])
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")
    timeout = 3600 if args.engine == "vmm86-interp" else 600
    run = guestrun.run(args.engine, SCRIPT, timeout_s=timeout, cpus=CPUS, medium=args.medium)
    got = answers(run.console)
    if args.record:
        if not run.ok:
            print(f"not recording: {run.error or f'status {run.status}'}")
            return 1
        EXPECTED.write_text("# QEMU's answers for tests/guest/smp_test.py (qemu-system-i386 -smp 2, Debian 12)\n"
                            + "\n".join(got) + "\n")
        print(f"recorded {len(got)} lines")
        return 0
    want = [line for line in EXPECTED.read_text().splitlines() if line and not line.startswith("#")]
    report = "\n".join(guestrun.console_diff(want, got, 20))
    ok = run.ok and got == want
    print(f"{args.engine} --smp {CPUS} ({args.medium}): {'ok' if ok else 'FAIL'} in {run.total_s:.1f} s"
          + ("" if run.ok else f" ({run.error or f'status {run.status}'})"))
    if not ok:
        print(report)
        print("--- last console lines:\n" + "\n".join(run.console.splitlines()[-20:]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
