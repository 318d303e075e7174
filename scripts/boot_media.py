"""Bootable media made from Debian packages only, without root: a raw MBR disk whose FAT16
partition holds SYSLINUX, a kernel and an initramfs (syslinux, syslinux-common, mtools,
dosfstools), and an El Torito CD image with ISOLINUX (isolinux, xorriso). The BIOS then
boots them the way a PC does: MBR -> SYSLINUX -> Linux, or El Torito -> ISOLINUX -> Linux.

  disk_image(kernel, initrd, append, out)     # out: a raw disk image
  iso_image(kernel, initrd, append, out)      # out: an ISO 9660 image
"""
from __future__ import annotations

import pathlib
import shutil
import struct
import subprocess
import tempfile

SECTOR = 512
PARTITION_START = 2048  # sectors: 1 MiB, where partitioning tools put the first partition
MBR_CODE = pathlib.Path("/usr/lib/syslinux/mbr/mbr.bin")
ISOLINUX = pathlib.Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX_C32 = pathlib.Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
TOOLS = {"mkfs.fat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux", "xorriso": "xorriso"}


def missing_tools() -> list[str]:
    """Debian packages still to install for these media."""
    need = {pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    if not MBR_CODE.exists():
        need.add("syslinux-common")
    if not ISOLINUX.exists():
        need.add("isolinux")
    return sorted(need)


def _config(append: str) -> str:
    # SERIAL: the loader's own prompt goes to COM1 too; no prompt, no timeout.
    return (f"SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\n"
            f"LABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND {append}\n")


def _chs(lba: int) -> bytes:
    """CHS bytes of an MBR entry for a 255-head, 63-sector geometry (1023/254/63 past it)."""
    cylinder, rest = divmod(lba, 255 * 63)
    head, sector = divmod(rest, 63)
    if cylinder > 1023:
        cylinder, head, sector = 1023, 254, 62
    return bytes([head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF])


def disk_image(kernel: pathlib.Path, initrd: pathlib.Path, append: str, out: pathlib.Path,
               size_mib: int = 64) -> pathlib.Path:
    total = size_mib * 1024 * 1024 // SECTOR
    sectors = total - PARTITION_START
    with open(out, "wb") as f:
        f.truncate(total * SECTOR)
    # The FAT16 file system in the partition, then the files, then SYSLINUX's boot sector
    # and ldlinux.sys (syslinux writes into the image file at the offset, no loop device).
    subprocess.run(["mkfs.fat", "-F", "16", "-n", "VMM86BOOT", "--offset", str(PARTITION_START), str(out),
                    str(sectors * SECTOR // 1024)], check=True, stdout=subprocess.DEVNULL)
    offset = PARTITION_START * SECTOR
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pathlib.Path(tmp) / "syslinux.cfg"
        cfg.write_text(_config(append))
        image = f"{out}@@{offset}"
        for src, name in ((kernel, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
            subprocess.run(["mcopy", "-o", "-i", image, str(src), f"::/{name}"], check=True)
    subprocess.run(["syslinux", "--offset", str(offset), "--install", str(out)], check=True)
    # The MBR: SYSLINUX's boot code, one active FAT16 (LBA) partition, the signature.
    with open(out, "r+b") as f:
        f.write(MBR_CODE.read_bytes()[:440])
        entry = (bytes([0x80]) + _chs(PARTITION_START) + bytes([0x0E]) + _chs(total - 1) +
                 struct.pack("<II", PARTITION_START, sectors))
        f.seek(446)
        f.write(entry + bytes(48) + b"\x55\xAA")
    return out


def iso_image(kernel: pathlib.Path, initrd: pathlib.Path, append: str, out: pathlib.Path) -> pathlib.Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "cd"
        (root / "isolinux").mkdir(parents=True)
        shutil.copy(ISOLINUX, root / "isolinux" / "isolinux.bin")
        shutil.copy(LDLINUX_C32, root / "isolinux" / "ldlinux.c32")
        shutil.copy(kernel, root / "isolinux" / "vmlinuz")
        shutil.copy(initrd, root / "isolinux" / "initrd.gz")
        (root / "isolinux" / "isolinux.cfg").write_text(_config(append))
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(out), "-b", "isolinux/isolinux.bin",
                        "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
                        "-V", "VMM86CD", str(root)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return out
