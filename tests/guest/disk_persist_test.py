#!/usr/bin/python3
"""Writes made in the guest reach the disk image and survive the next boot: the default guest
on an ext4 root (/dev/sda2, scripts/boot_media.py) writes a file, syncs and powers off;
the same image, booted again, reads it back. Then a guest reboot: booted a third time, now
letting a reset restart the machine, it writes a second file and runs `reboot -f`; the BIOS,
the boot loader and the kernel start over in the same run and find that file. QEMU is run
the same way as the reference.

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
SCRIPT = ("if [ -f /rebooted.txt ]; then echo after-reboot; cat /rebooted.txt; "
          "elif [ -f /persist.txt ] && [ -f /second.txt ]; then echo before-reboot; "
          "echo vmm86-reboot-$((6 * 7)) > /rebooted.txt; sync; reboot -f; "
          "elif [ -f /persist.txt ]; then echo second-boot; cat /persist.txt; touch /second.txt; sync; "
          "else echo first-boot; echo vmm86-$((6 * 7)) > /persist.txt; sync; fi\n")
REBOOTED = b"vmm86-reboot-42"


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
        console, err, third_s = guestrun.watch_console(guestrun.disk_command(engine, disk, reboot=True), REBOOTED,
                                                       900)
        lines = [line.strip() for line in console.replace("\r", "").splitlines()]
        if "before-reboot" not in lines or REBOOTED.decode() not in lines or \
                lines.index("before-reboot") > lines.index(REBOOTED.decode()):
            print(f"FAIL reboot on {engine}: no 'before-reboot' then '{REBOOTED.decode()}' after {third_s:.1f} s")
            print("\n".join(lines[-30:]) + "\n--- stderr:\n" + err)
            return 1
    print(f"ok   {engine}: the file written at the first boot was there at the second, and one written "
          f"before a guest reboot after it ({first.total_s:.1f} s + {second.total_s:.1f} s + {third_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
