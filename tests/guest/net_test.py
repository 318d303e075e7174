#!/usr/bin/python3
"""Guest integration test: networking with real software on an emulated NIC and user
networking (libslirp on vmm86, QEMU's slirp on QEMU).

  net_test.py ENGINE [--model ne2k_pci]        ENGINE: qemu | vmm86

The default guest boots through SeaBIOS from a disk (the PCI bus comes with the BIOS
boot), loads Debian's NIC driver modules (guest/build-image.sh keeps them in modules/),
and with busybox:
  - gets its address by DHCP from the user network (udhcpc),
  - wgets a file from an HTTP server this test runs on the host's 127.0.0.1, through the
    guest's gateway 10.0.2.2, and checks its sha256 against the host's,
  - serves a file of its own with busybox httpd, which the test fetches from the host
    through a hostfwd rule (127.0.0.1:PORT -> guest:80) and checks against the sha256 the
    guest printed (then fetches /done, which tells the guest it may end).
The same script on QEMU (`-netdev user -device ne2k_pci`) gives the reference answers for
the rest: the PCI function, the driver's probe line, the lease, the routes.
Exit status 0 when every check passes; prints one line per check. No traffic leaves the
host's loopback.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import pathlib
import re
import socket
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

BLOB_BYTES = 1 << 20
# What the NIC looks like to the guest, and the lease slirp gives it, as QEMU gives them.
EXPECTED = {
    "ne2k_pci": {
        "pci": "0000:00:02.0 0x10ec 0x8029 0x020000",
        "driver": "ne2k-pci",
        "modules": ["8390.ko", "ne2k-pci.ko"],
        "probe": r"eth0: RealTek RTL-8029\(AS\) found at 0x[0-9a-f]+, IRQ \d+, 52:54:00:12:34:56\.",
    },
}
LEASE = "ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3"
ROUTES = ["default via 10.0.2.2 dev eth0", "10.0.2.0/24 dev eth0 scope link  src 10.0.2.15"]

# The udhcpc hook: busybox's default script is not in the initramfs.
DHCP_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "$subnet" up
    route add default gw "$router" dev "$interface"
    echo "nameserver $dns" > /etc/resolv.conf
    echo "lease ip=$ip subnet=$subnet router=$router dns=$dns" ;;
esac
"""


def guest_script(model: str, host_port: int) -> str:
    modules = " ".join(f"/{m}" for m in EXPECTED[model]["modules"])
    return f"""
echo '@@<pci>'
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/class)" = 0x020000 ] && echo ${{d##*/}} $(cat $d/vendor $d/device $d/class)
done
echo '@@</pci>'
for m in {modules}; do insmod $m || echo "insmod $m failed"; done
echo '@@<probe>'
dmesg | grep -m1 -o 'eth0: .*found at.*'
echo '@@</probe>'
echo '@@<driver>'
basename $(readlink /sys/class/net/eth0/device/driver)
echo '@@</driver>'
ifconfig lo 127.0.0.1 up
ifconfig eth0 up
echo '@@<dhcp>'
udhcpc -i eth0 -s /udhcpc.script -q -n -t 10 -T 2 2>/dev/null | grep '^lease'
echo '@@</dhcp>'
echo '@@<route>'
ip route
echo '@@</route>'
echo '@@<wget>'
wget -q -O /tmp/blob http://10.0.2.2:{host_port}/blob && sha256sum /tmp/blob | cut -d' ' -f1
echo '@@</wget>'
mkdir -p /www
head -c 262144 /dev/urandom > /www/guest.bin
echo done > /www/done
echo '@@<served>'
sha256sum /www/guest.bin | cut -d' ' -f1
echo '@@</served>'
httpd -p 80 -h /www -v -f 2>/tmp/httpd.log &
sleep 1
echo '@@httpd-ready'
# httpd logs a response as it starts sending it: the host asks for /done once it has the
# whole of guest.bin, so the guest does not end while the file is still on its way.
i=0
while [ $i -lt 300 ] && [ "$(grep -c 'response:200' /tmp/httpd.log)" -lt 2 ]; do sleep 0.1; i=$((i+1)); done
echo '@@<fetched>'
grep -c 'response:200' /tmp/httpd.log
echo '@@</fetched>'
kill %1 2>/dev/null
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test's output to its checks
        pass


def section(output: str, name: str) -> str:
    """A check's output, without the engines' own messages (stderr shares the console:
    QEMU's slirp reports frames the NIC had no room for) and trailing blanks."""
    m = re.search(rf"@@<{name}>\n(.*?)\n?@@</{name}>", output, re.S)
    if not m:
        return "<no output>"
    lines = [l.rstrip() for l in m.group(1).splitlines() if not l.startswith(("qemu-system-i386:", "vmm86:"))]
    return "\n".join(lines).strip()


def machine_args(engine: str, model: str, forward_port: int) -> list[str]:
    fwd = f"hostfwd=tcp:127.0.0.1:{forward_port}-:80"
    if engine == "qemu":
        return ["-netdev", f"user,id=n0,{fwd}", "-device", f"{model},netdev=n0"]
    return ["--netdev", f"user,id=n0,{fwd}", "--device", f"{model},netdev=n0"]


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    engine = sys.argv[1]
    model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else "ne2k_pci"
    expected = EXPECTED[model]
    modules_dir = guestrun.guest_dir() / "modules"
    missing = [m for m in expected["modules"] if not (modules_dir / m).exists()]
    if missing:
        print(f"FAIL the guest image has no {', '.join(missing)} (rebuild it: guest/build-image.sh)")
        return 1

    with tempfile.TemporaryDirectory(prefix="vmm86-net-") as tmp:
        blob = os.urandom(BLOB_BYTES)
        (pathlib.Path(tmp) / "blob").write_bytes(blob)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(QuietHandler, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        forward_port = free_port()
        fetched: dict[str, str] = {}

        def fetch_from_guest() -> None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{forward_port}/guest.bin", timeout=30) as r:
                    fetched["sha256"] = hashlib.sha256(r.read()).hexdigest()
                with urllib.request.urlopen(f"http://127.0.0.1:{forward_port}/done", timeout=30) as r:
                    r.read()
            except Exception as e:  # noqa: BLE001 (any failure is the check's answer)
                fetched["error"] = repr(e)

        fetcher = threading.Thread(target=fetch_from_guest, daemon=True)

        def on_line(line: str) -> None:
            if line == "@@httpd-ready" and not fetcher.is_alive() and not fetched:
                fetcher.start()

        files = {m: (modules_dir / m).read_bytes() for m in expected["modules"]}
        files["udhcpc.script"] = DHCP_SCRIPT.encode()
        run = guestrun.run(engine, guest_script(model, server.server_address[1]), timeout_s=300,
                           medium="disk", extra_files=files, on_line=on_line,
                           machine_args=machine_args(engine, model, forward_port))
        if fetcher.is_alive():
            fetcher.join(timeout=30)
        server.shutdown()

    if not run.ok:
        print(f"FAIL boot on {engine}: {run.error or f'status {run.status}'}")
        print("--- last console lines ---")
        print("\n".join(run.console.splitlines()[-40:]))
        return 1
    print(f"ok   boot on {engine} from disk with {model} ({run.total_s:.1f} s)")
    checks = [
        ("pci", section(run.output, "pci"), expected["pci"]),
        ("driver", section(run.output, "driver"), expected["driver"]),
        ("probe", section(run.output, "probe"), re.compile(expected["probe"])),
        ("dhcp", section(run.output, "dhcp"), f"lease {LEASE}"),
        ("route", section(run.output, "route"), "\n".join(ROUTES)),
        ("wget", section(run.output, "wget"), hashlib.sha256(blob).hexdigest()),
        ("hostfwd", fetched.get("sha256", fetched.get("error", "<not fetched>")), section(run.output, "served")),
        ("httpd-log", section(run.output, "fetched"), "2"),
    ]
    failed = 0
    for name, got, want in checks:
        ok = want.fullmatch(got) is not None if isinstance(want, re.Pattern) else got == want
        if ok:
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: expected {want.pattern if isinstance(want, re.Pattern) else want!r}, got {got!r}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
