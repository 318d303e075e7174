#!/usr/bin/env bash
# Builds the real userland guest from Debian's i386 packages: dynamic glibc with ld.so,
# bash, coreutils, grep, sed, gawk, findutils, diffutils, gzip, bzip2, xz-utils, tar,
# perl-base, python3.11 with its stdlib, sqlite3, openssl and the libraries they need, plus
# our own C programs (guest/userland/progs, gcc -m32, each static and dynamic) in /opt/progs,
# and the benchmark's compute programs (guest/userland/bench, static) in /opt/bench.
# It boots with the kernel of guest/build-image.sh (built first if needed).
#   build-userland.sh [--with-testsuite]
# Output in $VMM86_GUEST_DIR/userland (default ~/.cache/vmm86/guest/userland):
#   initrd.cpio.gz      the userland; /init-userland is the scripted init (busybox-static
#                       mounts and reboots; the commands themselves run with bash)
#   initrd-small.cpio   the init, bash, a few coreutils and the C programs with their
#                       libraries, for the interpreter (it boots the full image in >15 min);
#                       not compressed, as inflating it cost the interpreter a minute
#   native-bench/       the benchmark programs built for the host (x86-64), for bench/anchor.py's
#                       native column
#   testsuite.cpio.gz   (--with-testsuite) Debian's libpython3.11-testsuite, to append to
#                       the initramfs (the kernel unpacks concatenated archives in order)
# Rebuilt only when a package version, this script, the init or a program changes.
# Prints the output directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${VMM86_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm86/guest}
out=$base/userland
say() { printf '[userland] %s\n' "$*" >&2; }
die() { printf '[userland] error: %s\n' "$*" >&2; exit 1; }

with_testsuite=0
for arg in "$@"; do
  case $arg in
    --with-testsuite) with_testsuite=1 ;;
    *) die "unknown argument $arg (usage: build-userland.sh [--with-testsuite])" ;;
  esac
done

for tool in apt-get apt-cache dpkg-deb cpio gzip gcc readelf file; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/setup.sh first"
done
# The host's python3.11 (the same 3.11 bytecode as the guest's) precompiles the stdlib, so
# the guest does not compile it again at every boot.
hostpy=/usr/bin/python3.11
[ -x "$hostpy" ] || die "$hostpy not found (needed to precompile the guest's python stdlib)"

# The kernel comes from the default guest.
"$here/build-image.sh" >/dev/null || die "guest/build-image.sh failed"
[ -f "$base/vmlinuz" ] || die "no kernel at $base/vmlinuz after guest/build-image.sh"

# The programs and their libraries: a fixed list, checked below against every NEEDED entry.
packages=(
  libc6 libc-bin libgcc-s1 libcrypt1 zlib1g libtinfo6 libreadline8 libncursesw6
  bash coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0
  grep sed gawk libmpfr6 libsigsegv2 findutils diffutils gzip bzip2 libbz2-1.0
  xz-utils liblzma5 tar perl-base
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libexpat1 libssl3
  libdb5.3 libffi8 libnsl2 libsqlite3-0 libtirpc3 libuuid1
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1
  sqlite3 openssl busybox-static
)
# One apt-cache call for every version (each call costs seconds).
declare -A cand
while read -r name ver; do cand[$name]=$ver; done < <(
  apt-cache policy "${packages[@]/%/:i386}" libpython3.11-testsuite 2>/dev/null \
    | awk '/^[^ ].*:$/ { p = $0; sub(/:$/, "", p) } /^  Candidate:/ { print p, $2 }')
specs=()
versions=""
for p in "${packages[@]}"; do
  v=${cand[$p:i386]:-}
  [ -n "$v" ] && [ "$v" != "(none)" ] || die "package $p:i386 has no candidate version (run apt-get update?)"
  specs+=("$p:i386=$v")
  versions+="$p=$v "
done
ts_ver=${cand[libpython3.11-testsuite]:-}
[ -n "$ts_ver" ] && [ "$ts_ver" != "(none)" ] || die "package libpython3.11-testsuite has no candidate version"

inputs=$(cat "$here/build-userland.sh" "$here/userland/init" "$here"/userland/progs/*.c "$here"/userland/bench/*.c \
  | sha256sum | cut -c1-16)
stamp="$versions kernel=$(sha256sum "$base/vmlinuz" | cut -c1-16) $inputs"
ts_stamp="libpython3.11-testsuite=$ts_ver $inputs"
base_ok=0 ts_ok=1
[ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/initrd.cpio.gz" ] \
  && [ -f "$out/initrd-small.cpio" ] && [ -d "$out/native-bench" ] && base_ok=1
if [ "$with_testsuite" = 1 ]; then
  [ -f "$out/testsuite.stamp" ] && [ "$(cat "$out/testsuite.stamp")" = "$ts_stamp" ] \
    && [ -f "$out/testsuite.cpio.gz" ] || ts_ok=0
fi
if [ "$base_ok" = 1 ] && [ "$ts_ok" = 1 ]; then
  say "up to date: $out ($(du -k "$out/initrd.cpio.gz" | cut -f1) KiB)"
  echo "$out"; exit 0
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/debs"
download() {
  (cd "$work/debs" && apt-get download -q "$@" >/dev/null 2>"$work/dl.err") \
    || die "apt-get download failed: $(grep -m1 -E '^E:' "$work/dl.err" || tail -n1 "$work/dl.err")"
}
pack() {  # pack DIR FILE [COMPRESSOR]: a newc cpio, owned by root, in a stable order
  (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | ${3:-gzip -9} > "$2"
}

if [ "$base_ok" = 0 ]; then
  say "downloading ${#specs[@]} i386 packages"
  download "${specs[@]}"
  root="$work/root"
  mkdir -p "$root"
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$root" || die "cannot unpack $(basename "$deb")"
  done

  say "trimming documentation, locales and what the guest never runs"
  rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,menu,doc-base,bash-completion,zsh} \
         "$root"/usr/lib/i386-linux-gnu/gconv "$root"/etc/init.d "$root"/etc/cron.* \
         "$root"/usr/lib/python3.11/{idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data}
  # busybox only serves the init (mount, timeout, reboot); it is not installed as applets,
  # so every command the tests run is Debian's real program.
  mv "$root/bin/busybox" "$root/busybox"
  ln -sf bash "$root/bin/sh"
  ln -sf python3.11 "$root/usr/bin/python3"
  mkdir -p "$root"/{proc,sys,dev,tmp,root,run,var/tmp,opt/progs}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
  echo vmm86 > "$root/etc/hostname"
  install -m 0755 "$here/userland/init" "$root/init-userland"

  say "building the C programs (gcc -m32, static and dynamic)"
  for src in "$here"/userland/progs/*.c; do
    name=$(basename "$src" .c)
    for kind in static dyn; do
      flags=(-m32 -O2 -std=gnu11 -D_GNU_SOURCE -Wall -pthread)
      [ "$kind" = static ] && flags+=(-static)
      if [ "$name" = fpmath ]; then
        # one source, two floating-point units
        gcc "${flags[@]}" -mfpmath=387 "$src" -o "$root/opt/progs/fpx87-$kind" -lm 2>"$work/cc.err" \
          && gcc "${flags[@]}" -msse2 -mfpmath=sse "$src" -o "$root/opt/progs/fpsse-$kind" -lm 2>>"$work/cc.err" \
          || die "gcc -m32 failed on $name.c: $(head -n1 "$work/cc.err")"
      else
        gcc "${flags[@]}" "$src" -o "$root/opt/progs/$name-$kind" -lm 2>"$work/cc.err" \
          || die "gcc -m32 failed on $name.c: $(head -n1 "$work/cc.err")"
      fi
    done
  done

  say "building the benchmark programs (gcc -m32 -static; and for the host)"
  mkdir -p "$root/opt/bench" "$work/native-bench"
  bench_build() {  # NAME SOURCE FLAGS...: the guest's static i386 build and the host's own
    local name=$1 src=$2
    shift 2
    gcc -m32 -O2 -static -std=gnu11 -Wall "$@" "$src" -o "$root/opt/bench/$name" -lm 2>"$work/cc.err" \
      && gcc -O2 -std=gnu11 -Wall "$src" -o "$work/native-bench/$name" -lm 2>>"$work/cc.err" \
      || die "gcc failed on $(basename "$src"): $(head -n1 "$work/cc.err")"
  }
  for src in "$here"/userland/bench/*.c; do
    name=$(basename "$src" .c)
    case $name in
      nbody) bench_build nbody-x87 "$src" -mfpmath=387
             bench_build nbody-sse "$src" -msse2 -mfpmath=sse ;;
      matmul) bench_build matmul "$src" -msse2 -mfpmath=sse ;;
      *) bench_build "$name" "$src" ;;
    esac
  done

  say "checking that every NEEDED library is in the image"
  libdirs=(lib/i386-linux-gnu usr/lib/i386-linux-gnu lib usr/lib)
  missing=""
  while IFS= read -r elf; do
    for lib in $(readelf -d "$elf" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      found=0
      for d in "${libdirs[@]}"; do [ -e "$root/$d/$lib" ] && found=1 && break; done
      [ "$found" = 1 ] || missing+=" $lib (${elf#"$root"/})"
    done
  done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -exec file {} + \
             | sed -n 's/^\([^:]*\): *ELF 32-bit.*/\1/p')
  [ -z "$missing" ] || die "libraries missing from the image:$missing"

  say "making the small image"
  small="$work/small"
  mkdir -p "$small"
  (cd "$root" && cp -a --parents busybox init-userland etc proc sys dev tmp root run var "$small/")
  needed_closure() {  # copies the files named (relative to $root), following NEEDED entries
    local f lib d
    for f in "$@"; do
      [ -e "$small/$f" ] && continue
      (cd "$root" && cp -L --parents "$f" "$small/")
      for lib in $(readelf -d "$root/$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        for d in "${libdirs[@]}"; do
          [ -e "$root/$d/$lib" ] && { needed_closure "$d/$lib"; break; }
        done
      done
    done
  }
  # what userland_test.py --quick runs, and no more: every byte costs the interpreter time
  # (the kernel inflates the archive at ~17 M instructions/s)
  needed_closure lib/ld-linux.so.2 bin/bash bin/date usr/bin/sort \
    $(cd "$root" && echo opt/progs/{hello,div64,fpsse,signals}-{static,dyn})
  pack "$small" "$work/initrd-small.cpio" cat
  mv "$work/initrd-small.cpio" "$out/initrd-small.cpio"
  rm -f "$out/initrd-small.cpio.gz"  # the compressed form of earlier versions

  say "precompiling the python stdlib"
  "$hostpy" -m compileall -q -j2 -d /usr/lib/python3.11 "$root/usr/lib/python3.11" >/dev/null \
    || die "compileall failed on the guest's stdlib"

  say "packing the initramfs"
  pack "$root" "$work/initrd.cpio.gz"
  mv "$work/initrd.cpio.gz" "$out/initrd.cpio.gz"
  rm -rf "$out/native-bench"
  mv "$work/native-bench" "$out/native-bench"
  echo "$stamp" > "$out/stamp"
fi

if [ "$with_testsuite" = 1 ] && [ "$ts_ok" = 0 ]; then
  say "downloading libpython3.11-testsuite $ts_ver"
  rm -f "$work"/debs/*.deb
  download "libpython3.11-testsuite=$ts_ver"
  ts="$work/testsuite"
  dpkg-deb -x "$work"/debs/libpython3.11-testsuite_*.deb "$ts" || die "cannot unpack libpython3.11-testsuite"
  # the tests of packages the image leaves out go with them
  rm -rf "$ts/usr/share" "$ts"/usr/lib/python3.11/{idlelib,lib2to3,tkinter}
  # files that are meant not to compile (badsyntax_*) make compileall fail: that is expected
  "$hostpy" -m compileall -q -j2 -d /usr/lib/python3.11 "$ts/usr/lib/python3.11" >/dev/null 2>&1 || true
  pack "$ts" "$work/testsuite.cpio.gz"
  mv "$work/testsuite.cpio.gz" "$out/testsuite.cpio.gz"
  echo "$ts_stamp" > "$out/testsuite.stamp"
fi

say "built $out: initrd $(du -k "$out/initrd.cpio.gz" | cut -f1) KiB, small $(du -k "$out/initrd-small.cpio" | cut -f1) KiB$([ "$with_testsuite" = 1 ] && echo ", testsuite $(du -k "$out/testsuite.cpio.gz" | cut -f1) KiB")"
echo "$out"
