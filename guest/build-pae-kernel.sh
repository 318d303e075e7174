#!/usr/bin/env bash
# Fetches Debian's PAE kernel (linux-image-6.1.0-*-686-pae-unsigned, the newest ABI the
# mirror offers) for the PAE boot test: it boots with the default guest's initramfs
# (guest/build-image.sh). Output: $VMM86_GUEST_DIR/pae/vmlinuz, outside git, fetched again
# only when the package version changes. Prints the output directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${VMM86_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm86/guest}/pae
log_tag=guest-pae
. "$here/debs.sh"

for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/setup.sh first"
done

kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-686-pae-unsigned$' 2>/dev/null \
  | cut -d' ' -f1 | sort -V | tail -n1)
[ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-686-pae-unsigned package in the apt indexes (run apt-get update?)"
stamp="$kernel_pkg:i386=$(candidate "$kernel_pkg:i386")"
if up_to_date "$stamp" vmlinuz; then
  say "up to date: $stamp"
  echo "$out"; exit 0
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
say "downloading $stamp"
download "$work" "$stamp"
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -n1)
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kernel_pkg"
mkdir -p "$out"
cp "$vmlinuz" "$out/vmlinuz"
echo "$stamp" > "$out/stamp"
say "fetched $out/vmlinuz: $(basename "$vmlinuz")"
echo "$out"
