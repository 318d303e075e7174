#!/usr/bin/env python3
"""Linux's floppy driver on the floppy controller: the default guest boots through the BIOS
from its disk (SeaBIOS -> MBR -> SYSLINUX -> Linux, as boot_test.py --medium disk) with a
1.44 MB floppy image in drive A:, loads Debian's floppy.ko (guest/build-image.sh keeps it
beside the image; it is in neither initramfs) and reads /dev/fd0: the first and last sectors
and a whole cylinder, each compared with the image on the host, then writes a sector, which
the host finds in the image after the run. The driver probes the controller (DUMPREG,
CONFIGURE, PERPENDICULAR, UNLOCK, PARTID), reads the drive type from CMOS, resets it, seeks
to clear the disk-change line and reads through ISA DMA channel 2, and must identify the
controller (QEMU's answers PART ID: "an S82078B"; vmm86's 82077AA does not: "a post-1991
82077"). The sectors' checksums come from the image itself, so QEMU and vmm86 are held to
the same answers.

  floppy_test.py ENGINE      # qemu or vmm86
"""
import hashlib
import os
import pathlib
import random
import re
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

SECTOR = 512
SECTORS = 2880  # 80 cylinders, 2 heads, 18 sectors
CYLINDER = 36 * SECTOR
WRITE_AT = 1000  # the sector the guest writes
WRITTEN = b"written by the guest through /dev/fd0"
# dd reads through the block layer in 4 KiB pages (8 sectors): the last full read is at 2872.
SCRIPT = f"""insmod /floppy.ko || exit 1
i=0; while [ ! -b /dev/fd0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "first $(dd if=/dev/fd0 bs=512 count=1 2>/dev/null | md5sum)"
echo "last $(dd if=/dev/fd0 bs=512 skip={SECTORS - 1} count=1 2>/dev/null | md5sum)"
echo "cyl40 $(dd if=/dev/fd0 bs={CYLINDER} skip=40 count=1 2>/dev/null | md5sum)"
printf '{WRITTEN.decode()}' | dd of=/dev/fd0 bs=512 seek={WRITE_AT} conv=sync 2>/dev/null
sync
dmesg | grep -iE 'fdc|floppy' | sed 's/^\\[[ 0-9.]*\\] //'
"""


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def main() -> int:
    engine = sys.argv[1] if len(sys.argv) > 1 else "vmm86"
    module = guestrun.guest_dir() / "modules" / "floppy.ko"
    if not module.exists():
        print(f"floppy_test: {module} is missing (run guest/build-image.sh)", file=sys.stderr)
        return 77 if os.environ.get("VMM86_REQUIRE_GUEST") != "1" else 1
    data = random.Random(1440).randbytes(SECTORS * SECTOR)
    with tempfile.TemporaryDirectory(prefix="vmm86-floppy-") as tmp:
        floppy = pathlib.Path(tmp) / "floppy.img"
        floppy.write_bytes(data)
        run = guestrun.run(engine, SCRIPT, timeout_s=600, medium="disk", floppy=floppy,
                           extra_files={"floppy.ko": module.read_bytes()})
        after = floppy.read_bytes()
    expected = {
        "first": md5(data[:SECTOR]),
        "last": md5(data[-SECTOR:]),
        "cyl40": md5(data[40 * CYLINDER:41 * CYLINDER]),
    }
    failed = []
    if not run.ok:
        failed.append(f"the guest script failed: {run.error or f'status {run.status}'}")
    for name, digest in expected.items():
        if f"{name} {digest}  -" not in run.output:
            failed.append(f"{name}: expected md5 {digest}")
    want = WRITTEN + bytes(SECTOR - len(WRITTEN))
    if after[WRITE_AT * SECTOR:(WRITE_AT + 1) * SECTOR] != want:
        failed.append(f"sector {WRITE_AT} of the image does not hold what the guest wrote")
    if after[:WRITE_AT * SECTOR] != data[:WRITE_AT * SECTOR] or after[(WRITE_AT + 1) * SECTOR:] != data[
            (WRITE_AT + 1) * SECTOR:]:
        failed.append("the guest's write changed other sectors")
    if not re.search(r"FDC 0 is a post-1991 82077|FDC 0 is an? \S+", run.output):
        failed.append("the driver did not identify the controller")
    if failed:
        print(f"floppy_test ({engine}): FAIL\n  " + "\n  ".join(failed))
        print("--- guest output ---\n" + run.output + "\n--- last console lines ---\n" +
              "\n".join(run.console.splitlines()[-30:]))
        return 1
    controller = re.search(r"FDC 0 is [^\n]*", run.output).group(0)
    print(f"floppy_test ({engine}): /dev/fd0 reads the image's sectors and writes reach it "
          f"({controller}; {run.total_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
