#!/usr/bin/python3
"""Writes made in the guest reach the disk image and survive the next boot: the default guest
on an ext4 root (/dev/sda2, scripts/boot_media.py) writes a file, syncs and powers off;
the same image, booted again, reads it back. QEMU is run the same way as the reference.

  disk_persist_test.py ENGINE     ENGINE: qemu | vmm86 | vmm86-interp
"""
from __future__ import annotations

import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

# The same script runs at both boots (it lives on the root file system): the first boot
# writes, the second finds the file.
SCRIPT = ("if [ -f /persist.txt ]; then echo second-boot; cat /persist.txt; "
          "else echo first-boot; echo vmm86-$((6 * 7)) > /persist.txt; sync; fi\n")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    engine = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="vmm86-persist-") as tmp:
        disk = pathlib.Path(tmp) / "disk.img"
        first = guestrun.run(engine, SCRIPT, timeout_s=900, medium="disk-root", keep_disk=disk)
        if not first.ok or first.output.strip() != "first-boot":
            print(f"FAIL first boot on {engine}: {first.error or repr(first.output)}")
            print("\n".join(first.console.splitlines()[-30:]))
            return 1
        second = guestrun.boot_disk(engine, disk, timeout_s=900)
        if not second.ok or second.output.split() != ["second-boot", "vmm86-42"]:
            print(f"FAIL second boot on {engine}: {second.error or repr(second.output)}")
            print("\n".join(second.console.splitlines()[-30:]))
            return 1
    print(f"ok   {engine}: the file written at the first boot was there at the second "
          f"({first.total_s:.1f} s + {second.total_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
