# Sourced by the guest recipes that fetch Debian packages without installing them
# (build-multiboot.sh, build-pae-kernel.sh). The caller sets `out` (its output directory)
# and `log_tag` (the prefix of its messages).

say() { printf '[%s] %s\n' "$log_tag" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$log_tag" "$*" >&2; exit 1; }

# The version apt would download of PKG (package:architecture); dies when there is none.
candidate() {
  local ver
  ver=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "package $1 has no candidate version (run apt-get update?)"
  echo "$ver"
}

# True when $out/stamp holds STAMP and every FILE (relative to $out) exists.
up_to_date() {
  local stamp=$1 f
  shift
  [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] || return 1
  for f in "$@"; do [ -f "$out/$f" ] || return 1; done
}

# apt-get download PKG=VERSION... into DIR (dies with apt's error).
download() {
  local dir=$1
  shift
  (cd "$dir" && apt-get download -q "$@" >/dev/null 2>"$dir/dl.err") \
    || die "apt-get download failed: $(grep -m1 -E '^E:' "$dir/dl.err" || tail -n1 "$dir/dl.err")"
}
