#!/usr/bin/python3
"""Network cost on the emulated NIC with user networking: the same guest and driver on
vmm86 (--netdev user --device MODEL, libslirp) and QEMU (-netdev user -device MODEL, its
own slirp), side by side.

The default guest boots from a disk (the PCI bus comes with the BIOS), loads the NIC's
driver, takes its DHCP lease, then:
- ping: 20 echo requests to the gateway 10.0.2.2 (slirp answers from a host socket),
  every 0.2 s: the round trip of one small frame each way;
- host->guest: `wget` of MIB MiB from an HTTP server on the host's 127.0.0.1 (one warm-up
  fetch first), timed on the host between the script's @@T0/@@T1 markers.
vmm86's --stats adds the NIC's frames and port accesses per frame (each an exit).

  bench/net_transfer.py [--mib N] [--engines vmm86,qemu] [--model ne2k_pci]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import pathlib
import re
import sys
import tempfile
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "guest"))
import guestrun  # noqa: E402
import net_test  # noqa: E402


def script(model: str, port: int) -> str:
    modules = " ".join(f"/{m}" for m in net_test.EXPECTED[model]["modules"])
    url = f"http://10.0.2.2:{port}/blob"
    return f"""
for m in {modules}; do insmod $m; done
ifconfig lo 127.0.0.1 up; ifconfig eth0 up
udhcpc -i eth0 -s /udhcpc.script -q -n -t 10 -T 2 >/dev/null 2>&1
ping -c 20 -i 0.2 10.0.2.2 | tail -1
wget -q -O /dev/null {url}
echo @@T0
wget -q -O /tmp/blob {url}
echo @@T1
sha256sum /tmp/blob | cut -d' ' -f1
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--engines", default="vmm86,qemu")
    parser.add_argument("--model", default="ne2k_pci")
    args = parser.parse_args()
    modules_dir = guestrun.guest_dir() / "modules"
    files = {m: (modules_dir / m).read_bytes() for m in net_test.EXPECTED[args.model]["modules"]}
    files["udhcpc.script"] = net_test.DHCP_SCRIPT.encode()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vmm86-netbench-") as tmp:
        blob = os.urandom(args.mib << 20)
        (pathlib.Path(tmp) / "blob").write_bytes(blob)
        want = hashlib.sha256(blob).hexdigest()
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(net_test.QuietHandler, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for engine in args.engines.split(","):
            machine = net_test.machine_args(engine, args.model, net_test.free_port())
            if engine.startswith("vmm86"):
                machine.append("--stats")
            run = guestrun.run(engine, script(args.model, server.server_address[1]), timeout_s=600,
                               medium="disk", extra_files=files, machine_args=machine)
            lines = [l for l in run.output.splitlines() if not l.startswith(("qemu-system-i386:", "vmm86:"))]
            ping = next((l for l in lines if "round-trip" in l), "")
            rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+) ms", ping)
            ok = run.ok and want in lines
            stats = re.search(r"net0\.rx_frames=(\d+).*?net0\.exits_per_frame=([\d.]+)", run.console)
            rows.append((engine, ok, run.timed_s, rtt.groups() if rtt else None,
                         stats.groups() if stats else None))
        server.shutdown()
    print(f"{args.model}, {args.mib} MiB host->guest over user networking")
    print(f"{'engine':8} {'ok':3} {'seconds':>8} {'MB/s':>6} {'ping min/avg/max ms':>22} {'rx frames':>9} "
          f"{'exits/frame':>11}")
    for engine, ok, seconds, rtt, stats in rows:
        mbs = f"{(args.mib * 1.048576) / seconds:.2f}" if seconds else "-"
        print(f"{engine:8} {'yes' if ok else 'NO':3} {seconds or 0:8.2f} {mbs:>6} "
              f"{'/'.join(rtt) if rtt else '-':>22} {stats[0] if stats else '-':>9} {stats[1] if stats else '-':>11}")
    return 0 if all(r[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
