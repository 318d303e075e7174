#!/usr/bin/env bash
# Static checks beside the tests; scripts/test.sh runs the clang-tidy pass in CI after the build.
#   scripts/lint.sh                  clang-tidy (.clang-tidy) over every translation unit of the
#                                    build except C ones (see below) and those in
#                                    scripts/lint-pending.txt; fails on a finding
#   scripts/lint.sh FILE...          clang-tidy over these files only
#   scripts/lint.sh --format-report  how many lines clang-format (.clang-format) would change, per folder
# BUILD_DIR names a configured build with compile_commands.json (default: build); LINT_JOBS how
# many clang-tidy processes run at once (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == --format-report ]]; then
  exec python3 scripts/format_report.py "${@:2}"
fi
build_dir=${BUILD_DIR:-build}
if [[ ! -f $build_dir/compile_commands.json ]]; then
  echo "lint: no $build_dir/compile_commands.json (configure the build first, or set BUILD_DIR)" >&2
  exit 2
fi
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(python3 - "$build_dir/compile_commands.json" scripts/lint-pending.txt <<'PY'
import json, os, sys
root = os.getcwd()
pending = {line.split("#")[0].strip() for line in open(sys.argv[2])} - {""}
units = {os.path.relpath(entry["file"], root) for entry in json.load(open(sys.argv[1]))}
print("\n".join(sorted(unit for unit in units if unit not in pending and not unit.startswith(".."))))
PY
  )
fi
# C units are skipped: the profile is vmm86's C++ one; md5.c (RFC 1321 code) keeps C names.
mapfile -t files < <(printf '%s\n' "${files[@]}" | grep -v '\.c$')
echo "lint: clang-tidy over ${#files[@]} files"
set +e
printf '%s\n' "${files[@]}" | xargs -r -P"${LINT_JOBS:-$(nproc)}" -n1 clang-tidy-14 -p "$build_dir" --quiet 2>&1 |
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$'
tidy_status=${PIPESTATUS[1]}
set -e
if ((tidy_status != 0)); then
  echo "lint: clang-tidy found problems (see above)" >&2
  exit 1
fi
echo "lint: clean"
