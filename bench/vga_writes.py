#!/usr/bin/python3
"""Screen update cost: how many guest writes per second reach the std VGA's memory, on
vmm86 (--vga std) and QEMU (-vga std), from Debian's kernel booted from a disk.

Two ways of writing, both into text memory at B8000 (what a VGA text console writes; the
linear framebuffer takes the same path on vmm86, an emulated access each):
- copies: the guest copies 32 KiB to B8000-BFFFF through /dev/mem (the kernel's copy, a
  `rep movs` of 4-byte stores, 8192 per copy) ROUNDS times, and the same copies to
  /dev/null as the baseline; the difference is the VGA's share;
- single stores: bench/vga/stores.c (built here with gcc -m32 -static) maps B8000 and
  stores STORES 16-bit words one instruction at a time, as a console puts characters.

  bench/vga_writes.py [--rounds N] [--stores N] [--engines vmm86,qemu]
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
import guestrun  # noqa: E402

COPY_BYTES = 32768
SEEK = 0xB8000 // COPY_BYTES  # 23: B8000 is a whole number of 32 KiB blocks


def script(rounds: int, target: str) -> str:
    seek = f"seek={SEEK} " if target == "/dev/mem" else ""
    return f"""
i=0
echo @@T0
while [ $i -lt {rounds} ]; do dd if=/dev/zero of={target} bs={COPY_BYTES} {seek}count=1 2>/dev/null; i=$((i+1)); done
echo @@T1
"""


STORES_C = pathlib.Path(__file__).resolve().parent / "vga" / "stores.c"


def stores_script(stores: int) -> str:
    return f"""
chmod +x /stores
echo @@T0
/stores {stores}
echo @@T1
"""


def timed(engine: str, text: str, extra: dict[str, bytes] | None = None) -> float:
    """Seconds between the script's markers, the guest booted from a disk with the VGA."""
    with tempfile.TemporaryDirectory(prefix="vmm86-vga-bench-") as tmp:
        work = pathlib.Path(tmp)
        image = guestrun.default_image()
        initrd = guestrun._initrd_with_script(image, text, work, extra)  # noqa: SLF001
        cmd = guestrun._machine_command(engine, image, initrd, 256, "", "disk", work)  # noqa: SLF001
        cmd += ["-vga", "std"] if engine == "qemu" else ["--vga", "std"]
        run = guestrun._drive(engine, cmd, None, 600)  # noqa: SLF001 (the one runner that times)
        if not run.ok or run.timed_s is None:
            raise SystemExit(f"{engine}: {run.error or 'no timing'}\n{run.console[-2000:]}")
        return run.timed_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--stores", type=int, default=200000)
    parser.add_argument("--engines", default="vmm86,qemu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmm86-vga-stores-") as tmp:
        binary = pathlib.Path(tmp) / "stores"
        subprocess.run(["gcc", "-m32", "-static", "-O2", "-o", str(binary), str(STORES_C)], check=True)
        stores_binary = binary.read_bytes()
    stores = args.rounds * COPY_BYTES // 4
    print(f"copies: {args.rounds} of {COPY_BYTES} bytes ({stores} 4-byte stores); "
          f"single stores: {args.stores} 16-bit")
    for engine in args.engines.split(","):
        vga = timed(engine, script(args.rounds, "/dev/mem"))
        base = timed(engine, script(args.rounds, "/dev/null"))
        share = max(vga - base, 1e-9)
        print(f"{engine:8s} copies: to VGA {vga:6.2f} s, to /dev/null {base:6.2f} s: "
              f"{stores / share / 1e6:7.2f} M stores/s ({share / stores * 1e9:6.0f} ns each)")
        single = timed(engine, stores_script(args.stores), {"stores": stores_binary})
        print(f"{engine:8s} single stores: {single:6.2f} s: {args.stores / single / 1e6:7.3f} M stores/s "
              f"({single / args.stores * 1e9:6.0f} ns each, the program's start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
