#!/usr/bin/python3
"""SMP scaling: the same guest work on one and on two vCPUs, vmm86 (--smp N) and QEMU TCG
(-smp N) side by side, alternating, medians.

The default guest writes 24 MiB of random data to its tmpfs, then times (by /proc/uptime,
the guest's own clock) one job of four md5sums over it, and two such jobs started at once.
With one vCPU the two jobs take turns; with two they should take about as long as one.

  bench/smp_scaling.py [--runs N] [--engines vmm86,qemu] [--cpus 1,2]
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
import guestrun  # noqa: E402

JOB = "(for i in 1 2 3 4; do md5sum /tmp/f; done > /dev/null)"
SCRIPT = rf"""
dd if=/dev/urandom of=/tmp/f bs=1M count=24 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
{JOB}
t1=$(cut -d' ' -f1 /proc/uptime)
{JOB} & {JOB} & wait
t2=$(cut -d' ' -f1 /proc/uptime)
echo "@@times $t0 $t1 $t2"
"""


def measure(engine: str, cpus: int) -> tuple[float, float] | None:
    run = guestrun.run(engine, SCRIPT, timeout_s=900, cpus=cpus)
    for line in run.console.splitlines():
        if line.startswith("@@times "):
            t0, t1, t2 = (float(x) for x in line.split()[1:4])
            return t1 - t0, t2 - t1
    print(f"  {engine} --smp {cpus}: no result ({run.error or f'status {run.status}'})", file=sys.stderr)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engines", default="vmm86,qemu")
    ap.add_argument("--cpus", default="1,2")
    args = ap.parse_args()
    configs = [(e, int(c)) for c in args.cpus.split(",") for e in args.engines.split(",")]
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {c: [] for c in configs}
    for run in range(args.runs):
        for config in configs:  # alternating: each round runs every configuration once
            if (m := measure(*config)) is not None:
                samples[config].append(m)
                print(f"run {run + 1}: {config[0]} --smp {config[1]}: one job {m[0]:.2f} s, two jobs {m[1]:.2f} s",
                      flush=True)
    print(f"\n| engine | vCPUs | one job (s) | two jobs at once (s) | two / one | runs |")
    print("|---|---|---|---|---|---|")
    for (engine, cpus), ms in samples.items():
        if not ms:
            continue
        one = statistics.median(m[0] for m in ms)
        two = statistics.median(m[1] for m in ms)
        print(f"| {engine} | {cpus} | {one:.2f} | {two:.2f} | {two / one:.2f} | {len(ms)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
