#!/usr/bin/env bash
# Fetches the real Multiboot kernels that Debian 12 ships, for tests/guest/multiboot_test.py:
#   gnumach.elf     GNU Mach 1.8 (gnumach-image-1.8-486:i386): an ELF32 kernel linked at
#                   0xC1000000 and loaded at 16 MiB, serial console with console=com0
#   tboot.elf       Intel's Trusted Boot 1.10 (tboot): an ELF32 Multiboot kernel at 8 MiB
#                   that logs to the serial port (logging=serial)
#   invaders.exec   grub-invaders 1.0 (grub-invaders): an a.out-kludge kernel (VGA text only)
# Nothing is installed: the packages are downloaded (apt-get download) and unpacked into
# $VMM86_GUEST_DIR/multiboot (default ~/.cache/vmm86/guest/multiboot), outside git, and
# fetched again only when a package version or this script changes.
# Prints the output directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${VMM86_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm86/guest}/multiboot
log_tag=multiboot
. "$here/debs.sh"

for tool in apt-get apt-cache dpkg-deb gzip; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/setup.sh first"
done
dpkg --print-foreign-architectures | grep -qx i386 \
  || die "dpkg does not know the i386 architecture; run scripts/setup.sh first"

# package:architecture, one per kernel.
packages=(gnumach-image-1.8-486:i386 tboot:amd64 grub-invaders:amd64)
versions=()
for pkg in "${packages[@]}"; do
  ver=$(candidate "$pkg")
  versions+=("$pkg=$ver")
done

stamp="${versions[*]} $(sha256sum < "$here/build-multiboot.sh" | cut -c1-16)"
if up_to_date "$stamp" gnumach.elf tboot.elf invaders.exec; then
  say "up to date: ${versions[*]}"
  echo "$out"; exit 0
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
say "downloading ${versions[*]}"
download "$work" "${versions[@]}"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done

mkdir -p "$out"
gzip -dc "$work/root/boot/gnumach-1.8-486.gz" > "$out/gnumach.elf"
gzip -dc "$work/root/boot/tboot.gz" > "$out/tboot.elf"
cp "$work/root/boot/invaders.exec" "$out/invaders.exec"
echo "$stamp" > "$out/stamp"
say "done: $(cd "$out" && ls -1 | tr '\n' ' ')"
echo "$out"
