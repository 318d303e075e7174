"""Bootable media made from Debian packages only, without root: a raw MBR disk whose FAT16
partition holds SYSLINUX, a kernel and an initramfs (syslinux, syslinux-common, mtools,
dosfstools), a 1.44 MB FAT12 floppy with SYSLINUX and the same files, and an El Torito CD
image with ISOLINUX (isolinux, xorriso). The BIOS then boots them the way a PC does: MBR ->
SYSLINUX -> Linux, boot sector -> SYSLINUX -> Linux, or El Torito -> ISOLINUX -> Linux.

  disk_image(kernel, initrd, append, out)     # out: a raw disk image
  disk_image(..., root_dir=D)                 # and an ext4 root partition (/dev/sda2) made of D
  floppy_image(kernel, initrd, append, out)   # out: a raw 1.44 MB floppy image
  iso_image(kernel, initrd, append, out)      # out: an ISO 9660 image
  disk_image(MEMTEST, None, MEMTEST_APPEND, out)  # Debian's memtest86+ (no initrd)
"""
from __future__ import annotations

import pathlib
import shutil
import struct
import subprocess
import tempfile

SECTOR = 512
PARTITION_START = 2048  # sectors: 1 MiB, where partitioning tools put the first partition
FLOPPY_KIB = 1440  # a 1.44 MB floppy: 80 cylinders, 2 heads, 18 sectors
MBR_CODE = pathlib.Path("/usr/lib/syslinux/mbr/mbr.bin")
ISOLINUX = pathlib.Path("/usr/lib/ISOLINUX/isolinux.bin")
# Debian's memtest86+ (package memtest86+) speaks the Linux boot protocol: SYSLINUX's LINUX
# loads it like a kernel. Its serial console on COM1; no pause for the configuration menu.
MEMTEST = pathlib.Path("/boot/memtest86+ia32.bin")
MEMTEST_APPEND = "console=ttyS0,115200 nopause"
LDLINUX_C32 = pathlib.Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
TOOLS = {"mkfs.fat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux", "xorriso": "xorriso",
         "mke2fs": "e2fsprogs"}


def missing_tools() -> list[str]:
    """Debian packages still to install for these media."""
    need = {pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    if not MBR_CODE.exists():
        need.add("syslinux-common")
    if not ISOLINUX.exists():
        need.add("isolinux")
    return sorted(need)


def _config(append: str, initrd: pathlib.Path | None) -> str:
    # SERIAL: the loader's own prompt goes to COM1 too; no prompt, no timeout.
    return (f"SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\n"
            f"LABEL linux\n  KERNEL vmlinuz\n" + ("  INITRD initrd.gz\n" if initrd else "") + f"  APPEND {append}\n")


def _chs(lba: int) -> bytes:
    """CHS bytes of an MBR entry for a 255-head, 63-sector geometry (1023/254/63 past it)."""
    cylinder, rest = divmod(lba, 255 * 63)
    head, sector = divmod(rest, 63)
    if cylinder > 1023:
        cylinder, head, sector = 1023, 254, 62
    return bytes([head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF])


def _entry(active: bool, kind: int, start: int, count: int) -> bytes:
    return (bytes([0x80 if active else 0]) + _chs(start) + bytes([kind]) + _chs(start + count - 1) +
            struct.pack("<II", start, count))


def disk_image(kernel: pathlib.Path, initrd: pathlib.Path | None, append: str, out: pathlib.Path,
               size_mib: int = 64, root_dir: pathlib.Path | None = None) -> pathlib.Path:
    """The boot partition (FAT16, SYSLINUX) holds kernel and initrd; with `root_dir`, a second
    partition holds an ext4 file system made of that directory (no loop device: mke2fs -d),
    half again as large as the files and at least 64 MiB, so the guest can write."""
    root_mib = 0
    if root_dir:
        used = sum(p.stat().st_size for p in root_dir.rglob("*") if p.is_file() and not p.is_symlink())
        root_mib = max(64, (used * 3 // 2) // (1024 * 1024) + 32)
    boot_total = size_mib * 1024 * 1024 // SECTOR
    total = boot_total + (root_mib * 1024 * 1024 // SECTOR if root_dir else 0)
    sectors = boot_total - PARTITION_START
    with open(out, "wb") as f:
        f.truncate(total * SECTOR)
    # The FAT16 file system in the partition, then the files, then SYSLINUX's boot sector
    # and ldlinux.sys (syslinux writes into the image file at the offset, no loop device).
    subprocess.run(["mkfs.fat", "-F", "16", "-n", "VMM86BOOT", "--offset", str(PARTITION_START), str(out),
                    str(sectors * SECTOR // 1024)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    offset = PARTITION_START * SECTOR
    _copy_boot_files(f"{out}@@{offset}", kernel, initrd, append)
    subprocess.run(["syslinux", "--offset", str(offset), "--install", str(out)], check=True)
    entries = _entry(True, 0x0E, PARTITION_START, sectors)  # FAT16 (LBA), active
    if root_dir:
        root_sectors = total - boot_total
        # No metadata_csum: the kernel would need crc32c before the root is mounted.
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^metadata_csum,^64bit", "-L", "vmm86root",
                        "-E", f"offset={boot_total * SECTOR}", "-d", str(root_dir), str(out),
                        f"{root_sectors * SECTOR // 1024}k"], check=True, stderr=subprocess.PIPE)
        entries += _entry(False, 0x83, boot_total, root_sectors)
    # The MBR: SYSLINUX's boot code, the partition table, the signature.
    with open(out, "r+b") as f:
        f.write(MBR_CODE.read_bytes()[:440])
        f.seek(446)
        f.write(entries + bytes(64 - len(entries)) + b"\x55\xAA")
    return out


def _copy_boot_files(image: str, kernel: pathlib.Path, initrd: pathlib.Path | None, append: str) -> None:
    """The kernel, the initrd and syslinux.cfg into the FAT file system `image` (mtools'
    FILE[@@OFFSET]), no loop device."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pathlib.Path(tmp) / "syslinux.cfg"
        cfg.write_text(_config(append, initrd))
        for src, name in ((kernel, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
            if src is None:
                continue
            subprocess.run(["mcopy", "-o", "-i", image, str(src), f"::/{name}"], check=True)


def floppy_image(kernel: pathlib.Path, initrd: pathlib.Path | None, append: str,
                 out: pathlib.Path) -> pathlib.Path:
    """A 1.44 MB FAT12 floppy (no partition table): SYSLINUX's boot sector and ldlinux.sys,
    the kernel and initrd, which must fit in its 1.4 MiB."""
    out.unlink(missing_ok=True)  # mkfs.fat -C makes the file and refuses an existing one
    subprocess.run(["mkfs.fat", "-C", "-n", "VMM86FLOPPY", str(out), str(FLOPPY_KIB)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _copy_boot_files(str(out), kernel, initrd, append)
    subprocess.run(["syslinux", "--install", str(out)], check=True)
    return out


def iso_image(kernel: pathlib.Path, initrd: pathlib.Path, append: str, out: pathlib.Path) -> pathlib.Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "cd"
        (root / "isolinux").mkdir(parents=True)
        shutil.copy(ISOLINUX, root / "isolinux" / "isolinux.bin")
        shutil.copy(LDLINUX_C32, root / "isolinux" / "ldlinux.c32")
        shutil.copy(kernel, root / "isolinux" / "vmlinuz")
        shutil.copy(initrd, root / "isolinux" / "initrd.gz")
        (root / "isolinux" / "isolinux.cfg").write_text(_config(append, initrd))
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(out), "-b", "isolinux/isolinux.bin",
                        "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
                        "-V", "VMM86CD", str(root)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return out
