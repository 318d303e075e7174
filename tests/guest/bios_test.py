#!/usr/bin/env python3
"""Debian's SeaBIOS boots on vmm86 with no disk: POST (PCI enumeration through the i440FX,
fw_cfg, shadow RAM under PAM, the PM timer), its serial console on COM1, and the boot menu's
end, "No bootable device." The lines checked were recorded from QEMU (qemu-system-i386
-machine pc with the same bios.bin and etc/sercon-port=0x3f8), never from vmm86.

  bios_test.py [ENGINE]     # bt (default) or interp
"""
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

BIOS = pathlib.Path("/usr/share/seabios/bios.bin")
# From QEMU 7.2's serial console (tests/guest/bios_expected.txt holds the same lines).
EXPECTED = (pathlib.Path(__file__).with_name("bios_expected.txt").read_text().splitlines())


def main() -> int:
    engine = sys.argv[1] if len(sys.argv) > 1 else "bt"
    if not BIOS.exists():
        print(f"bios_test: {BIOS} missing (Debian package seabios)", file=sys.stderr)
        return 77 if os.environ.get("VMM86_REQUIRE_GUEST") != "1" else 1
    cmd = [guestrun.vmm86_binary("vmm86"), "run", "--mem", "64M", "--engine", engine]
    out, err, elapsed = guestrun.watch_console(cmd, b"No bootable device.", 120)
    lines = [l.strip() for l in out.replace("\r", "").splitlines()]
    missing = [e for e in EXPECTED if not any(e in l for l in lines)]
    if missing:
        print(f"bios_test ({engine}): missing {missing!r} after {elapsed:.1f} s\n--- console:\n{out}\n"
              f"--- stderr:\n{err}")
        return 1
    print(f"bios_test ({engine}): SeaBIOS reached 'No bootable device.' in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
