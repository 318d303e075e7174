#!/usr/bin/env bash
# clang-format-14 with the repo's .clang-format over vmm86's own C++ sources and headers.
#   scripts/format.sh                    reformats them in place
#   scripts/format.sh --check            changes nothing: lists the files that would change and
#                                        exits 1 if there is one (under 20 s on 2 cores)
#   scripts/format.sh [--check] FILE...  these files only
# The files: *.cpp, *.cc, *.h, *.hpp that git tracks or would track (new, not ignored) under
# the folders below. Build folders are git-ignored; a third-party folder would be skipped.
# `// clang-format off` regions (hand-laid tables) stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-14}
folders=(common decoder shadow-mmu translator vmm devices bench tests)
check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
if ! command -v "$clang_format" >/dev/null; then
  echo "format: no $clang_format (apt-get install clang-format-14, or set CLANG_FORMAT)" >&2
  exit 2
fi
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${folders[@]}" |
    grep -E '\.(cpp|cc|h|hpp)$' | grep -v -E '(^|/)(third[_-]party|external|vendor)/' | sort -u)
fi
# A tracked file deleted in the working tree is not there to format.
existing=()
for f in "${files[@]}"; do
  [[ -f $f ]] && existing+=("$f")
done
jobs=$(nproc)
if ((check)); then
  # Each file is formatted to stdout and compared; a file clang-format cannot parse counts as
  # changed (its error goes to stderr).
  mapfile -t changed < <(printf '%s\0' "${existing[@]}" | xargs -0 -r -P"$jobs" -n16 bash -c '
    for f; do "$0" --style=file "$f" | cmp -s - "$f" || printf "%s\n" "$f"; done' "$clang_format" | sort)
  if ((${#changed[@]})); then
    printf '%s\n' "${changed[@]}"
    echo "format: ${#changed[@]} of ${#existing[@]} files would change (scripts/format.sh FILE... reformats them)" >&2
    exit 1
  fi
  echo "format: ${#existing[@]} files clean"
else
  printf '%s\0' "${existing[@]}" | xargs -0 -r -P"$jobs" -n16 "$clang_format" --style=file -i
  echo "format: ${#existing[@]} files formatted"
fi
