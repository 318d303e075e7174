#!/usr/bin/python3
"""The guest boots from qcow2 disks and its writes persist there: the default guest on an
ext4 root (/dev/sda2, scripts/boot_media.py) counts its boots in a file on that root.

  1. the raw disk is built and booted once (boot 1);
  2. `qemu-img convert -O qcow2` makes a qcow2 copy; booted twice with
     --drive file=X.qcow2,format=qcow2 it says boot 2, then boot 3 (the second boot read
     what the first wrote through vmm86's qcow2 writer);
  3. a qcow2 overlay whose backing file is the raw disk (qemu-img create -b disk.img -F raw)
     boots twice the same way (boot 2, boot 3), and the raw disk is left as it was;
  4. after each power-off `qemu-img check` finds the image clean.

  qcow2_disk_test.py ENGINE     ENGINE: vmm86 | vmm86-interp   (exit 77: no qemu-img)
"""
from __future__ import annotations

import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

# Runs at every boot (it lives on the root file system): counts the boots on the disk.
SCRIPT = ("n=$(cat /boots.txt 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /boots.txt; sync; "
          "echo boot-$n\n")


def qemu_img(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def boot_qcow2(engine: str, image: pathlib.Path) -> guestrun.GuestRun:
    """Boots `image` as the primary master IDE disk, named qcow2 on the command line."""
    drive = ["--drive", f"file={image},format=qcow2,if=ide"]
    return guestrun._drive(engine, guestrun._engine_command(engine, drive, 256), None, 900)


def boot_twice(engine: str, image: pathlib.Path, what: str) -> str | None:
    """Two boots of `image` must count 2 and 3, with a clean image after each. An error or None."""
    for expected in ("boot-2", "boot-3"):
        run = boot_qcow2(engine, image)
        if not run.ok or run.output.strip() != expected:
            tail = "\n".join(run.console.splitlines()[-30:])
            return f"{what}: expected {expected}, got {run.error or repr(run.output)}\n{tail}"
        check = qemu_img("check", str(image))
        if check.returncode != 0 or "No errors were found" not in check.stdout:
            return f"{what}: qemu-img check after {expected}:\n{check.stdout}"
        print(f"ok   {what}: {expected} ({run.total_s:.1f} s), qemu-img check clean")
    return None


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    engine = sys.argv[1]
    if shutil.which("qemu-img") is None:
        print("SKIP: qemu-img is not installed (Debian: qemu-utils)")
        return 77
    with tempfile.TemporaryDirectory(prefix="vmm86-qcow2-") as tmp:
        disk = pathlib.Path(tmp) / "disk.img"
        first = guestrun.run(engine, SCRIPT, timeout_s=900, medium="disk-root", keep_disk=disk)
        if not first.ok or first.output.strip() != "boot-1":
            print(f"FAIL first boot (raw) on {engine}: {first.error or repr(first.output)}")
            print("\n".join(first.console.splitlines()[-30:]))
            return 1
        raw_digest = hashlib.sha256(disk.read_bytes()).hexdigest()

        converted = pathlib.Path(tmp) / "converted.qcow2"
        made = qemu_img("convert", "-f", "raw", "-O", "qcow2", str(disk), str(converted))
        if made.returncode != 0:
            print(f"FAIL qemu-img convert: {made.stdout}")
            return 1
        error = boot_twice(engine, converted, "converted qcow2")

        overlay = pathlib.Path(tmp) / "overlay.qcow2"
        if error is None:
            made = qemu_img("create", "-q", "-f", "qcow2", "-b", disk.name, "-F", "raw", str(overlay))
            error = f"qemu-img create: {made.stdout}" if made.returncode != 0 else None
        if error is None:
            error = boot_twice(engine, overlay, "qcow2 over the raw disk")
        if error is None and hashlib.sha256(disk.read_bytes()).hexdigest() != raw_digest:
            error = "the overlay's backing file (the raw disk) changed"
    if error is not None:
        print(f"FAIL {engine}: {error}")
        return 1
    print(f"ok   {engine}: booted from qcow2 and its writes persisted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
