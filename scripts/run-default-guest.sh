#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and boots the default guest
# (Debian's linux-image-686 + busybox) to an interactive shell on vmm86.
# Extra arguments go to `vmm86 run` (e.g. --engine interp --stats).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
guest=$(bash guest/build-image.sh | tail -n1)
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)" --target vmm86
exec build/vmm86 run --kernel "$guest/vmlinuz" --initrd "$guest/initrd.cpio.gz" \
  --append "console=ttyS0 nokaslr" --mem 256M "$@"
