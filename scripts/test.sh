#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite:
# packages, build (build/), the default guest image, then ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash guest/build-image.sh >/dev/null
echo "[test] configuring and building (build/)"
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)"
echo "[test] running tests"
# Tests that need the real guest must fail, not skip, when it is missing.
export VMM86_REQUIRE_GUEST=1
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
