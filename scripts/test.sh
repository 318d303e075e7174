#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite:
# packages, build (build/), the default guest image, ctest, clang-tidy, then the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# clang-tidy-14 and clang-format-14 for the static checks (setup.sh installs what builds and
# runs vmm86; these are CI's own tools), the same way: apt-get when missing.
lint_tools=()
for tool in clang-tidy-14 clang-format-14; do
  dpkg-query -W -f='${Status}' "$tool" 2>/dev/null | grep -q 'install ok installed' || lint_tools+=("$tool")
done
if ((${#lint_tools[@]})); then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  echo "[test] installing ${lint_tools[*]}"
  # setup.sh updates the package indexes only when it installs something: update here when
  # the install cannot find the packages.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${lint_tools[@]}" >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${lint_tools[@]}" >/dev/null; }
fi
echo "[test] C++ layout (scripts/format.sh --check: clang-format-14 with .clang-format)"
bash scripts/format.sh --check
echo "[test] folder layering (no include or link cycles)"
python3 scripts/check_layers.py
bash guest/build-image.sh >/dev/null
echo "[test] configuring and building (build/)"
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)"
echo "[test] running tests"
# Tests that need the real guest must fail, not skip, when it is missing.
export VMM86_REQUIRE_GUEST=1
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"

# Static check (issue 15): clang-tidy-14 with .clang-tidy over build/'s C++ translation units
# (its compile_commands.json; scripts/lint-pending.txt aside), two at a time; a finding fails the
# run. Measured 7 Dec 2026: 6-7 CPU-minutes for 154 units, 7.5-12.5 minutes of wall time on the
# 2-core machine shared with fuzzing runs; on an otherwise idle 2-core CI machine that should be
# 3-4 minutes (CPU time over 2 cores, an estimate), taking CI from ~16 to ~20 minutes.
echo "[test] clang-tidy over build/ (scripts/lint.sh)"
BUILD_DIR=build LINT_JOBS=2 bash scripts/lint.sh

# The unit, bt-engine and differential tests again under AddressSanitizer + UBSan
# (issue 14 point 6), in their own folder; not the guest boots (too slow instrumented).
echo "[test] sanitizers: building build-asan/ (ASan + UBSan)"
cmake --preset asan >/dev/null
asan_targets=(alu_tests arch_tests decoder_tests devices_tests interp_tests mmu_walker_tests shadow_mmu_tests
              translator_tests bt_engine_tests bt_engine_differential_tests differential_tests
              wide_differential_tests devices_pci_tests devices_firmware_tests devices_storage_tests devices_display_tests display_tests devices_net_tests machine_tests)
cmake --build build-asan -j"$(nproc)" --target "${asan_targets[@]}"
# The monitor takes SIGSEGV and SIGBUS itself (a guest access that misses the shadow
# window is the MMU's fill path, not a bug), and SIGFPE/SIGILL from translated code:
# ASan must leave those signals to the monitor's handler (handle_*=0) and let it install
# one (allow_user_segv_handler=1). LeakSanitizer stays on, with scripts/lsan.supp for the
# one allocation only the kernel points to. UBSan findings fail the test (halt_on_error).
export ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:allow_user_segv_handler=1:detect_leaks=1
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Instrumented code runs 3-10x slower: the differential tests run fewer programs here (the
# release run above has the full counts); what ASan adds is the monitor's memory safety.
export VMM86_DIFF_COUNT=600 VMM86_DIFF_PAGING_COUNT=200 VMM86_WIDE_COUNT=400 VMM86_WIDE_FORMS_SHARE=40
echo "[test] running the unit and differential tests under ASan/UBSan"
# Only the executables built above (tests of the others show up as *_NOT_BUILT); the
# conformance kernels run on the vmm86 binary, which this folder does not build.
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -E '_NOT_BUILT$|^guest\.|^guest_programs\.qemu|^loader\.|^conformance\.'
