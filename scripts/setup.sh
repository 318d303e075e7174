#!/usr/bin/env bash
# Installs every Debian package vmm86 needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt-get.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libzydis-dev libasmjit-dev libboost-container-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libslirp-dev
  qemu-system-x86 qemu-utils seabios cpio xz-utils nasm gcc-multilib
  syslinux syslinux-common isolinux xorriso mtools dosfstools e2fsprogs memtest86+ bochsbios
  python3 python3-matplotlib gawk acpica-tools
  libvncserver-dev
)

say() { printf '[setup] %s\n' "$*"; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "error: not root and no sudo; install as root: ${packages[*]}"; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# The guest recipe downloads i386 .debs through apt; dpkg must know the architecture.
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  say "enabling the i386 architecture in dpkg (for guest packages)"
  "${sudo_cmd[@]}" dpkg --add-architecture i386
  need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  say "apt-get update"
  # A partial failure (one mirror index out of sync) is common and harmless as long as
  # the packages below resolve; the install step reports a real failure.
  "${sudo_cmd[@]}" apt-get update -qq >/dev/null 2>&1 || say "warning: apt-get update reported errors; continuing with the indexes it got"
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { say "error: apt-get install failed for: ${missing[*]}"; exit 1; }
else
  say "all packages present"
fi
