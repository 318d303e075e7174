#!/usr/bin/python3
"""The anchor benchmark: the same guest workloads on QEMU TCG, vmm86 and native, in one run.

Prints a table of times and ratios (and JSON with --json). Every workload's output is
checked against its known answer; a wrong answer is reported as a failure, not a time.
With --repeat N the engines take turns (run 1 on each, then run 2 on each, ...), and the
table shows medians.

  bench/anchor.py                          # all workloads, engines qemu,native(,vmm86 if built and booting)
  bench/anchor.py --engines qemu,vmm86 --workloads md5sum,awk-fp --repeat 3 --json out.json
  bench/anchor.py --engines vmm86@/tmp/old/vmm86,vmm86 --repeat 5   # an older build side by side
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))
sys.path.insert(0, str(HERE))

import guestrun  # noqa: E402
from workloads import WORKLOADS, by_name  # noqa: E402

ALL_ENGINES = ("qemu", "vmm86", "native")


def measure(engines: list[str], workload, repeat: int, timeout: float, log) -> dict:
    """Runs `workload` `repeat` times on every engine, the engines taking turns (run 1 of
    each, then run 2 of each, ...), so that a slow drift of the machine's state hits all
    of them alike. Returns {engine: result}."""
    state = {e: {"times": [], "totals": [], "rss": [], "failure": None} for e in engines}
    for i in range(repeat):
        for engine in engines:
            st = state[engine]
            if st["failure"]:
                continue
            image = guestrun.userland_image(build=False) if workload.image == "userland" else None
            run = guestrun.run(engine, workload.script, timeout_s=timeout, medium=workload.medium, image=image)
            missing = [e for e in workload.expect if e not in run.output.splitlines()]
            if not run.ok or missing:
                st["failure"] = run.error or (f"exit status {run.status}" if run.status else
                                              f"wrong output: expected {missing!r}, got {run.output[-300:]!r}")
                log(f"  {engine:7} {workload.name:10} FAILED: {st['failure']}")
                continue
            seconds = run.total_s if workload.whole_run else run.timed_s
            st["times"].append(seconds)
            st["totals"].append(run.total_s)
            if run.peak_rss_kib:
                st["rss"].append(run.peak_rss_kib)
            log(f"  {engine:7} {workload.name:10} run {i + 1}/{repeat}: {seconds:8.3f} s (whole run {run.total_s:.1f} s)")
    return {e: {"engine": e, "workload": workload.name, "ok": st["failure"] is None, "error": st["failure"],
                "times_s": st["times"],
                "median_s": statistics.median(st["times"]) if st["times"] and st["failure"] is None else None,
                "total_s": st["totals"],
                "peak_rss_mib": statistics.median(st["rss"]) / 1024 if st["rss"] else None}
            for e, st in state.items()}


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def table(results: dict, engines: list[str], workloads) -> str:
    def fmt(x, unit=""):
        return "—" if x is None else f"{x:.3f}{unit}" if unit == " s" else f"{x:.2f}{unit}"

    head = ["workload"] + [f"{e} (s)" for e in engines]
    if "qemu" in engines and "native" in engines:
        head.append("qemu/native")
    if "vmm86" in engines:
        if "qemu" in engines:
            head.append("vmm86 speed-up vs qemu")
        if "native" in engines:
            head.append("vmm86/native")
    # Other vmm86 builds (vmm86@PATH) against the first vmm86 engine named: after/before.
    variants = [e for e in engines if e.startswith("vmm86@")]
    baseline = next((e for e in engines if e.startswith("vmm86")), None)
    compared = [e for e in engines if e.startswith("vmm86") and e != baseline] if variants else []
    head += [f"{e}/{baseline}" for e in compared]
    rows = []
    for w in workloads:
        t = {e: results[(e, w.name)]["median_s"] for e in engines}
        row = [w.name] + [("FAIL" if not results[(e, w.name)]["ok"] else fmt(t[e], " s").replace(" s", ""))
                          if not (w.guest_only and e == "native") else "—" for e in engines]
        if "qemu" in engines and "native" in engines:
            row.append(fmt(ratio(t["qemu"], t["native"]), "×") if not w.guest_only else "—")
        if "vmm86" in engines:
            if "qemu" in engines:
                row.append(fmt(ratio(t["qemu"], t["vmm86"]), "×"))
            if "native" in engines:
                row.append(fmt(ratio(t["vmm86"], t["native"]), "×") if not w.guest_only else "—")
        row += [fmt(ratio(t[e], t[baseline]), "×") for e in compared]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def rss_table(results: dict, engines: list[str], workloads) -> str:
    """Peak resident memory of each engine's process (median over the runs), in MiB: the
    monitor's own cost in memory beside the guest's RAM."""
    head = ["workload"] + [f"{e} peak RSS (MiB)" for e in engines]
    rows = [[w.name] + [("—" if results[(e, w.name)].get("peak_rss_mib") is None
                         else f"{results[(e, w.name)]['peak_rss_mib']:.0f}") for e in engines] for w in workloads]
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def plot(results: dict, engines: list[str], workloads, path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("[bench] error: --plot needs matplotlib (Debian: python3-matplotlib; run with /usr/bin/python3)",
              file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(engines)
    for k, e in enumerate(engines):
        vals = [results[(e, w.name)]["median_s"] or 0 for w in workloads]
        ax.bar([i + k * width for i in range(len(workloads))], vals, width, label=e)
    ax.set_xticks([i + width * (len(engines) - 1) / 2 for i in range(len(workloads))])
    ax.set_xticklabels([w.name for w in workloads])
    ax.set_ylabel("seconds (lower is better)")
    ax.set_yscale("log")
    ax.set_title("vmm86 anchor benchmark")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=None,
                    help="comma list of qemu,vmm86,native, and vmm86@PATH for another vmm86 binary "
                         "(default: qemu,vmm86,native where available)")
    ap.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS),
                    help="comma list (default: all): " + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per engine and workload; the median is reported")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before one run counts as hung")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    ap.add_argument("--plot", metavar="PNG", help="also draw the table as a bar chart")
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: print the table (and --plot) of results saved with --json")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    if args.from_json:
        doc = json.loads(pathlib.Path(args.from_json).read_text())
        results = {(r["engine"], r["workload"]): r for r in doc["results"]}
        names = list(dict.fromkeys(r["workload"] for r in doc["results"]))
        workloads = [by_name(n) for n in names]
        print(table(results, doc["engines"], workloads))
        print()
        print(rss_table(results, doc["engines"], workloads))
        if args.plot:
            plot(results, doc["engines"], workloads, args.plot)
        return 0
    try:
        workloads = [by_name(n) for n in args.workloads.split(",") if n]
    except KeyError as e:
        ap.error(f"unknown workload {e}")
    engines = args.engines.split(",") if args.engines else [e for e in ALL_ENGINES if guestrun.have(e)]
    for e in engines:
        if e not in ALL_ENGINES and not e.startswith("vmm86@"):
            ap.error(f"unknown engine {e!r}; choose from {', '.join(ALL_ENGINES)}")
        if not guestrun.have(e):
            ap.error(f"engine {e!r} is not available here (qemu-system-i386 installed? build/vmm86 built?)")

    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    log(f"[bench] guest: {guestrun.build_guest()}")
    if any(w.image == "userland" for w in workloads):
        log(f"[bench] userland: {guestrun.userland_image().initrds[0].parent}")
    results = {}
    started = time.time()
    for w in workloads:
        log(f"[bench] {w.name}: {w.description}")
        runnable = [e for e in engines if not (w.guest_only and e == "native")]
        for e in engines:
            if e not in runnable:
                results[(e, w.name)] = {"engine": e, "workload": w.name, "ok": True, "error": None,
                                        "times_s": [], "median_s": None, "total_s": []}
        for e, r in measure(runnable, w, args.repeat, args.timeout, log).items():
            results[(e, w.name)] = r

    print(table(results, engines, workloads))
    print()
    print(rss_table(results, engines, workloads))
    if args.json:
        doc = {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
               "engines": engines, "repeat": args.repeat, "results": list(results.values())}
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            pathlib.Path(args.json).write_text(text + "\n")
    if args.plot:
        plot(results, engines, workloads, args.plot)
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
