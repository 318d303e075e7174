#!/usr/bin/env bash
# Builds the default vmm86 guest from Debian's i386 packages:
#   vmlinuz          linux-image-6.1.0-*-686-unsigned (newest ABI the mirror offers)
#   initrd.cpio.gz   busybox-static:i386 with two inits: /init (interactive shell) and
#                    /init-scripted (select with rdinit=/init-scripted)
#   initrd-disk.cpio.gz  busybox and the kernel's ATA/SCSI disk/ext4 modules with
#                    /init (guest/init-disk), which mounts an ext4 root from /dev/sda2 (scripts/boot_media.py)
#   modules/floppy.ko    the kernel's floppy driver, for tests that append it to an initramfs
#   modules/8390.ko, modules/ne2k-pci.ko  the NE2000 PCI driver (net_test.py appends them)
# and the host's x86-64 busybox-static for the native benchmark engine.
# Output goes to $VMM86_GUEST_DIR (default ~/.cache/vmm86/guest), outside git; the image is
# rebuilt only when the package versions or the init scripts change.
# Prints the output directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${VMM86_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm86/guest}
say() { printf '[guest] %s\n' "$*" >&2; }
die() { printf '[guest] error: %s\n' "$*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/setup.sh first"
done
dpkg --print-foreign-architectures | grep -qx i386 \
  || die "dpkg does not know the i386 architecture; run scripts/setup.sh first"

kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-686-unsigned$' 2>/dev/null \
  | cut -d' ' -f1 | sort -V | tail -n1)
[ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-686-unsigned package in the apt indexes (run apt-get update?)"

version_of() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p'; }
kernel_ver=$(version_of "$kernel_pkg:i386")
bb_ver=$(version_of busybox-static:i386)
bb64_ver=$(version_of busybox-static:amd64)
[ -n "$kernel_ver" ] && [ "$kernel_ver" != "(none)" ] || die "package $kernel_pkg:i386 has no candidate version"
[ -n "$bb_ver" ] && [ "$bb_ver" != "(none)" ] || die "package busybox-static:i386 has no candidate version"
[ -n "$bb64_ver" ] && [ "$bb64_ver" != "(none)" ] || die "package busybox-static:amd64 has no candidate version"

stamp="$kernel_pkg=$kernel_ver busybox=$bb_ver busybox64=$bb64_ver $(cat "$here/build-image.sh" "$here/init-interactive" "$here/init-scripted" "$here/init-disk" | sha256sum | cut -c1-16)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] \
   && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.cpio.gz" ] && [ -f "$out/initrd-disk.cpio.gz" ] \
   && [ -f "$out/modules/floppy.ko" ] && [ -f "$out/modules/ne2k-pci.ko" ] \
   && [ -x "$out/busybox-native" ]; then
  say "up to date: $kernel_pkg $kernel_ver, busybox $bb_ver"
  echo "$out"; exit 0
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
say "downloading $kernel_pkg:i386 $kernel_ver, busybox-static:i386 $bb_ver, busybox-static:amd64 $bb64_ver"
(cd "$work" && apt-get download -q "$kernel_pkg:i386=$kernel_ver" "busybox-static:i386=$bb_ver" >/dev/null 2>"$work/dl.err") \
  || die "apt-get download failed: $(grep -m1 -E '^E:' "$work/dl.err" || tail -n1 "$work/dl.err")"
mkdir "$work/amd64"
(cd "$work/amd64" && apt-get download -q "busybox-static:amd64=$bb64_ver" >/dev/null 2>"$work/dl.err") \
  || die "apt-get download failed: $(grep -m1 -E '^E:' "$work/dl.err" || tail -n1 "$work/dl.err")"

say "unpacking"
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb32"
dpkg-deb -x "$work"/amd64/busybox-static_*.deb "$work/bb64"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -n1)
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kernel_pkg"

say "making the initramfs"
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
cp "$work/bb32/bin/busybox" "$root/bin/busybox"
install -m 0755 "$here/init-interactive" "$root/init"
install -m 0755 "$here/init-scripted" "$root/init-scripted"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'export PS1="vmm86:\w# "' > "$root/etc/profile"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$work/initrd.cpio.gz"

say "making the disk-root initramfs"
# Modules that reach an ext4 root on the PIIX IDE disk, dependencies first (from each
# module's .modinfo "depends=": Debian ships no modules.dep, depmod makes it on install).
disk_modules="scsi_common scsi_mod libata ata_piix crct10dif_common crc-t10dif crc64 crc64-rocksoft t10-pi sd_mod
  crc16 mbcache jbd2 crc32c_generic ext4"
droot="$work/disk-root"
mkdir -p "$droot"/{bin,modules}
cp "$work/bb32/bin/busybox" "$droot/bin/busybox"
install -m 0755 "$here/init-disk" "$droot/init"  # switch_root wants /init to be a file
for m in $disk_modules; do
  ko=$(find "$work"/kernel/lib/modules -name "$m.ko" | head -n1)
  [ -n "$ko" ] || die "module $m.ko not in $kernel_pkg"
  cp "$ko" "$droot/modules/$m.ko"
  echo "$m" >> "$droot/modules/load-order"
done
(cd "$droot" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$work/initrd-disk.cpio.gz"

# The floppy driver (it depends on no other module): tests/guest/floppy_test.py loads it.
floppy_ko=$(find "$work"/kernel/lib/modules -name floppy.ko | head -n1)
[ -n "$floppy_ko" ] || die "module floppy.ko not in $kernel_pkg"

mkdir -p "$out/modules"
cp "$floppy_ko" "$out/modules/floppy.ko"
# The NE2000 PCI driver and the 8390 core it depends on (tests/guest/net_test.py).
for m in 8390 ne2k-pci; do
  ko=$(find "$work"/kernel/lib/modules -name "$m.ko" | head -n1)
  [ -n "$ko" ] || die "module $m.ko not in $kernel_pkg"
  cp "$ko" "$out/modules/$m.ko"
done
cp "$vmlinuz" "$out/vmlinuz"
cp "$work/initrd-disk.cpio.gz" "$out/initrd-disk.cpio.gz"
cp "$work/initrd.cpio.gz" "$out/initrd.cpio.gz"
install -m 0755 "$work/bb64/bin/busybox" "$out/busybox-native"
echo "$stamp" > "$out/stamp"
say "built $out: $(basename "$vmlinuz"), initrd $(du -k "$out/initrd.cpio.gz" | cut -f1) KiB"
echo "$out"
