#!/usr/bin/python3
"""Guest integration test on real software: the userland guest of guest/build-userland.sh
(Debian's i386 glibc, bash, coreutils, ..., python3.11, sqlite3, openssl and our own
gcc -m32 programs) runs a list of commands; each command's output must equal the answer
recorded from QEMU on the same image (tests/guest/userland_expected.txt), never from vmm86.

  userland_test.py ENGINE [--quick] [--record] [--only NAME,...] [--no-skip] [--timeout S]
      ENGINE    qemu | vmm86 | vmm86-interp
      --quick   a small subset (for the interpreter, which runs ~17 M instructions/s)
      --record  write the outputs as the new expected answers (QEMU only)
      --only    run these checks only
      --no-skip also run the checks on the engine's skip list (to see if a fix landed)
      --timeout seconds per boot
VMM86_EXTRA_ARGS adds flags to vmm86's command line (scripts/guestrun.py), e.g.
"--verify --verify-period 1" runs the checks in self-checking mode.
Exit status 0 when every check run passes; one line per check (ok / FAIL / SKIP).
If the monitor dies in a check, the check fails and the remaining ones run in a new boot.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).resolve().parent / "userland_expected.txt"
MEM_MB = 512
CHECK_TIMEOUT_S = 300  # per command, inside the guest

# (name, command). Commands run with /bin/bash (Debian's), stdin from /dev/null, stderr
# merged; "@" as the first character runs an absolute path directly from the init's busybox
# shell instead, so a C program does not depend on bash working.
CHECKS: list[tuple[str, str]] = [
    ("bash-arith", r"""
echo $(( (1<<40) / 7 % 1000003 )) $(( -17 / 5 )) $(( -17 % 5 )) $(( 2**62 )) $(( 0x7fffffff * 3 ))
s=0; for ((i = 0; i < 3000; i++)); do (( s += i * i % 13 )); done; echo "loop $s"
x=abcdefgh; echo "${x^^} ${x:2:3} ${#x} ${x/cd/-}"
declare -A h=([one]=1 [two]=2 [three]=3); for k in $(printf '%s\n' "${!h[@]}" | sort); do echo "$k=${h[$k]}"; done
a=(5 3 9 1); echo "${#a[@]} ${a[*]:1:2}"
printf '%x %o %05d %e %s\n' 255 8 42 12345.678 "$(echo sub)"
f() { local n=$1; (( n <= 1 )) && { echo 1; return; }; echo $(( n * $(f $((n - 1))) )); }; echo "fact $(f 15)"
"""),
    ("bash-processes", r"""
for i in $(seq 1 40); do /bin/true; done; echo forks ok
echo "$( (echo a; echo b; echo c) | wc -l ) lines via subshell and pipe"
( exit 7 ); echo "subshell status $?"
cat <<EOF | tr a-z A-Z
here document $((6 * 7))
EOF
sleep 0.2 & wait $!; echo "background status $?"
"""),
    ("coreutils-sort-uniq", r"""
seq 0 9999 | sed 's/.*\(.\)$/\1/' | sort | uniq -c
seq 1 30000 | tr 0-9 a-j | sort -r | md5sum
seq 1 5000 | sort -R --random-source=/dev/zero | sort -n | tail -n 2
printf 'b 2\na 10\nc 1\na 2\n' | sort -k1,1 -k2,2n
"""),
    ("coreutils-wc-seq", r"""
seq 1 100000 | wc
seq -w 0.5 0.25 3 | tr '\n' ' '; echo
seq -s, 1 12
head -c 100000 /dev/zero | tr '\0' 'x' | fold -w 70 | wc -l
printf '%s\n' one two three | paste -sd: ; yes abc | head -n 5 | nl | tail -n 1
"""),
    ("coreutils-checksums", r"""
seq 1 200000 | md5sum
seq 1 200000 | sha1sum
seq 1 200000 | sha256sum
seq 1 200000 | sha512sum
head -c 1048576 /dev/zero | b2sum
seq 1 50000 | cksum
seq 1 1000 | base64 | md5sum; seq 1 1000 | base64 | base64 -d | md5sum
"""),
    ("coreutils-factor-expr", r"""
factor 1234567890123 600851475143 18446744073709551557 340282366920938463463374607431768211455
expr 123456789 \* 987654321; expr 1000000007 % 97
echo $(numfmt --to=iec 1073741824) $(numfmt --from=si 12K)
"""),
    ("coreutils-date", r"""
date -d @0 -u
date -u -d '2000-02-29 12:34:56' +%s
date -u -d @1700000000 '+%A %j %U %Y-%m-%dT%H:%M:%S'
date -u -d '2024-01-31 + 1 month' +%F
"""),
    ("grep", r"""
seq 1 10000 | grep -E '^(1|7)[0-9]*7$' | wc -l
seq 1 3000 | grep -c -v 3
printf 'alpha12 beta3 gamma456\ndelta78\n' | grep -o -E '[a-z]+[0-9]{2,}'
seq 1 2000 | grep -P '^(\d)\d*\1$' | md5sum
printf 'foo\nBar\nbaz\n' | grep -in '^b'
"""),
    ("sed", r"""
seq 1 20 | sed -n '2~3p' | sed 's/\(.\)$/<\1>/' | tr '\n' ' '; echo
echo 'hello world again' | sed -E 's/(\w+) (\w+)/\2 \1/; s/a/A/g'
seq 1 1000 | sed -e '/5/d' -e 's/1/one/g' | md5sum
printf 'a\nb\nc\n' | sed '1!G;h;$!d'
"""),
    ("gawk", r"""
gawk 'BEGIN { for (i = 1; i <= 10; i++) s += sqrt(i) * log(i) / exp(i / 10); printf "%.15g %.12f %d\n", s, atan2(1, 1) * 4, 2^53 + 1 }'
gawk 'BEGIN { print sin(1), cos(1), -1/3, 1e300 * 1e10, int(-3.7), 17 % 5, 2^0.5 }'
seq 1 10000 | gawk '{ s += $1; q += $1 * $1 } END { printf "%d %d %.6f\n", s, q, sqrt(q / NR - (s / NR)^2) }'
gawk -M 'BEGIN { print 2^200; printf "%.30f\n", 1/3 }'
printf 'b:2 a:1 c:3' | gawk -v RS=' ' -F: '{ a[$1] = $2 } END { n = asorti(a, k); for (i = 1; i <= n; i++) printf "%s=%s ", k[i], a[k[i]]; print "" }'
gawk 'BEGIN { printf "%s %s\n", strftime("%Y-%m-%d", 86400 * 365, 1), toupper(substr("vmm86 guest", 7)) }'
"""),
    ("find-xargs", r"""
rm -rf /tmp/ft; mkdir -p /tmp/ft/a/b/c /tmp/ft/d
for i in $(seq 1 60); do echo "file $i" > /tmp/ft/$(( i % 4 == 0 ? 1 : 0 )).$i.txt; done
for i in $(seq 1 20); do echo "$i" > /tmp/ft/a/b/f$i.dat; echo "$i$i" > /tmp/ft/a/b/c/g$i.txt; done
find /tmp/ft -type f -name '*.txt' | sort | xargs cat | md5sum
find /tmp/ft -type d | sort
find /tmp/ft -type f -size -4c | wc -l
find /tmp/ft -name '*.dat' -print0 | sort -z | xargs -0 -n 7 echo | wc -l
find /tmp/ft -path '*/c' -prune -o -type f -print | wc -l
"""),
    ("diff", r"""
seq 1 100 > /tmp/a; seq 1 100 | sed '50d; 70s/.*/x/' > /tmp/b
diff -u /tmp/a /tmp/b | tail -n +3
diff /tmp/a /tmp/b; echo "diff status $?"
cmp /tmp/a /tmp/b; echo "cmp status $?"
diff -q /tmp/a /tmp/a; echo "same status $?"
"""),
    ("compressors", r"""
seq 1 200000 > /tmp/d
gzip -9n -c /tmp/d > /tmp/d.gz; wc -c < /tmp/d.gz; md5sum < /tmp/d.gz; gzip -dc /tmp/d.gz | md5sum
bzip2 -9 -c /tmp/d > /tmp/d.bz2; wc -c < /tmp/d.bz2; md5sum < /tmp/d.bz2; bzip2 -dc /tmp/d.bz2 | md5sum
xz -6 -c /tmp/d > /tmp/d.xz; wc -c < /tmp/d.xz; md5sum < /tmp/d.xz; xz -dc /tmp/d.xz | md5sum
xz -T2 -c /tmp/d | xz -dc | md5sum
gzip -t /tmp/d.gz && bzip2 -t /tmp/d.bz2 && xz -t /tmp/d.xz && echo integrity ok
"""),
    ("tar", r"""
rm -rf /tmp/tt; mkdir -p /tmp/tt/x/y; seq 1 1000 > /tmp/tt/x/n; echo hi > /tmp/tt/x/y/h; ln -s n /tmp/tt/x/l
tar -C /tmp/tt -cf /tmp/t.tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner .
tar -tvf /tmp/t.tar
md5sum < /tmp/t.tar
tar -C /tmp/tt -czf - --sort=name --mtime=@0 . | tar -tzf - | wc -l
tar -C /tmp/tt -cJf - --sort=name --mtime=@0 x | tar -xJOf - x/n | md5sum
"""),
    ("perl", r"""
perl -e 'my $s = 0; $s += $_ ** 2 for 1 .. 1000; print "$s\n"; printf "%.15g %.15g\n", atan2(1, 1) * 4, exp(1)'
perl -le 'print 2**53 + 1; print 0xffffffff * 0xffff; print 7 / 3; print -7 % 3; print int(-7 / 2)'
perl -e 'my %h = map { $_ => length } qw(alpha beta gamma); print join(",", map { "$_=$h{$_}" } sort keys %h), "\n"'
perl -e '$_ = "the quick brown fox"; s/(\w+)/\u\L$1/g; print "$_\n"; print join(" ", sort { $a <=> $b } map { $_ * 7 % 31 } 1 .. 10), "\n"'
perl -e 'print unpack("H*", pack("NnC", 0xdeadbeef, 513, 7)), " ", join(",", unpack("V2", pack("Q<", 2**40 + 5))), "\n"'
perl -MList::Util=sum,max,reduce -e 'print sum(1 .. 100), " ", max(3, 9, 2), " ", (reduce { $a * $b } 1 .. 20), "\n"'
seq 1 5000 | perl -ne '$c{$_ % 7}++; END { print join(" ", map { "$_:$c{$_}" } sort keys %c), "\n" }'
"""),
    ("python-math", r"""
python3 - <<'EOF'
import math, cmath, fractions, statistics, random
print(math.factorial(30), math.comb(60, 30), math.isqrt(10**40 + 12345))
print(repr(math.sqrt(2)), repr(math.exp(1)), repr(math.log(10)), repr(math.sin(1e6)), repr(math.atan2(1, -1)))
print(repr(math.fsum([0.1] * 10)), repr(sum([0.1] * 10)), repr(math.hypot(3e200, 4e200)), math.gcd(2**64 - 1, 3**40))
print(cmath.sqrt(-2), cmath.exp(1j * math.pi), fractions.Fraction(355, 113) - fractions.Fraction(22, 7))
print(2**200 // 3**50, pow(3, 10**5, 10**9 + 7), (1 << 100) % 97, -(2**70) // 7, divmod(-(10**30), 12345))
r = random.Random(42); print([r.randrange(1000) for _ in range(5)], repr(r.random()))
print(repr(statistics.mean([1.5, 2.25, 3.125])), repr(statistics.stdev(range(100))))
print(float.fromhex('0x1.fffffffffffffp+1023'), (1e308 * 10), repr(5e-324 / 2), repr(float('nan')), int(1e20))
print('%.17g %r %s' % (1 / 3, 0.1 + 0.2, round(2.675, 2)))
EOF
"""),
    ("python-decimal-json", r"""
python3 - <<'EOF'
import decimal, json
decimal.getcontext().prec = 60
D = decimal.Decimal
print(D(1) / D(7), D(2).sqrt(), D(10).ln(), D('1.1') ** 100)
print(D('123.456').quantize(D('0.01'), rounding=decimal.ROUND_HALF_EVEN), D('-0') + D('0'))
doc = {"name": "vmm86", "n": [1, 2.5, -3e-7, 10**20], "nested": {"t": True, "f": None, "s": "\u00e9\u4e2d"}}
s = json.dumps(doc, sort_keys=True); print(s); print(json.loads(s) == doc)
print(json.dumps(json.loads('[1e400, -0.0, 1.7976931348623157e308, 5e-324]')))
big = json.dumps([{"i": i, "sq": i * i, "f": i / 7} for i in range(2000)])
print(len(big), hash(json.loads(big)[1999]["f"]))
EOF
"""),
    ("python-hashlib-zlib", r"""
python3 - <<'EOF'
import hashlib, zlib, bz2, lzma, base64, binascii
data = b''.join(b'%d\n' % i for i in range(1, 200001))
for name in ('md5', 'sha1', 'sha256', 'sha512', 'sha3_256', 'blake2b', 'blake2s'):
    print(name, hashlib.new(name, data).hexdigest())
print('pbkdf2', hashlib.pbkdf2_hmac('sha256', b'secret', b'salt', 2000).hex())
c = zlib.compress(data, 9); print('zlib', len(c), hex(zlib.crc32(c)), zlib.decompress(c) == data, hex(zlib.adler32(data)))
c = bz2.compress(data, 9); print('bz2', len(c), bz2.decompress(c) == data)
c = lzma.compress(data); print('lzma', len(lzma.decompress(c)), lzma.decompress(c) == data)
print(base64.b85encode(data[:40]).decode(), hex(binascii.crc_hqx(data, 0)))
EOF
"""),
    ("python-re-text", r"""
python3 - <<'EOF'
import re, collections, struct, textwrap, itertools
text = ' '.join('word%d' % (i * 7919 % 1000) for i in range(5000))
words = re.findall(r'word(\d*?)(\d)\b', text)
print(len(words), collections.Counter(d for _, d in words).most_common(3))
print(re.sub(r'(?P<w>[aeiou])(?=[^aeiou]*$)', lambda m: m.group('w').upper(), 'binary translation monitor'))
print(re.split(r'\s*[,;]\s*', 'a , b;c ;  d'), bool(re.fullmatch(r'(a|ab)*c', 'ab' * 20 + 'c')))
print(struct.pack('<qdfH', -2, 1.5, 0.1, 65535).hex(), struct.unpack('>Id', bytes(range(12))))
print(sorted(itertools.permutations('abc', 2))[:4], sum(itertools.accumulate(range(100), lambda a, b: a ^ b)))
print(textwrap.fill('the quick brown fox jumps over the lazy dog ' * 3, 30).count('\n'))
EOF
"""),
    ("python-sqlite-threads", r"""
python3 - <<'EOF'
import sqlite3, threading, queue, subprocess, os
db = sqlite3.connect(':memory:')
db.execute('create table t(a integer primary key, b real, c text)')
db.executemany('insert into t values (?, ?, ?)', ((i, i / 3, 'x%d' % (i % 10)) for i in range(1, 5001)))
print(db.execute('select count(*), sum(a), round(sum(b), 6), min(c), max(c) from t').fetchone())
print(db.execute('select c, count(*) from t group by c order by c limit 3').fetchall())
q = queue.Queue(); total = [0]; lock = threading.Lock()
def work(n):
    s = sum(i * i for i in range(n * 10000, (n + 1) * 10000))
    with lock: total[0] += s
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print('threads', total[0])
out = subprocess.run(['sh', '-c', 'echo $((6*7)); exit 3'], capture_output=True, text=True)
print('subprocess', out.stdout.strip(), out.returncode, os.cpu_count() >= 1)
EOF
"""),
    ("sqlite3", r"""
sqlite3 :memory: "
create table t(a integer, b text);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000) insert into t select x, hex(x * x) from c;
select count(*), sum(a), avg(a), max(b) from t;
select group_concat(a) from t where a % 97 = 0;
select printf('%.6f', sum(1.0 / a)) from t;
create index i on t(b); select a from t where b = hex(49 * 49);
select json_object('n', count(*), 'total', total(a * 1.5)) from t;
"
"""),
    ("openssl", r"""
printf 'vmm86' | openssl dgst -sha256 -r
seq 1 10000 | openssl dgst -sha512 -r
seq 1 10000 | openssl dgst -sha3-256 -r
seq 1 10000 > /tmp/p
openssl enc -aes-256-cbc -pbkdf2 -iter 1000 -pass pass:secret -in /tmp/p -out /tmp/p.enc
openssl enc -d -aes-256-cbc -pbkdf2 -iter 1000 -pass pass:secret -in /tmp/p.enc | md5sum; md5sum < /tmp/p
openssl enc -aes-128-cbc -K 00112233445566778899aabbccddeeff -iv 0f0e0d0c0b0a09080706050403020100 -in /tmp/p | md5sum
openssl enc -chacha20 -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f -iv 00000000000000000000000000000000 -in /tmp/p | md5sum
openssl prime 2305843009213693951
printf 'hello' | openssl dgst -sha256 -hmac key -r
"""),
]
# Our own C programs (guest/userland/progs), each built static and dynamic.
PROGS = ["hello", "fpx87", "fpsse", "jmp", "signals", "threads", "forkwait", "mmap", "div64",
         "clock", "memcpy"]
for _prog in PROGS:
    for _kind in ("static", "dyn"):
        CHECKS.append((f"c-{_prog}-{_kind}", f"@/opt/progs/{_prog}-{_kind}"))

# For the interpreter (~17 M guest instructions/s): a few cheap commands that still touch
# the dynamic loader, bash and static and dynamic C programs. They run on the small image,
# which holds only what they need (guest/build-userland.sh lists it).
QUICK = ("bash-arith", "coreutils-date", "c-hello-static", "c-hello-dyn", "c-div64-static",
         "c-fpsse-dyn", "c-signals-static")

# Known failures per engine, each with its reason; printed as SKIP. Remove an entry when its
# fix lands (run with --no-skip to see which pass again). Empty since the translator handles
# ENDBR32 (commit 9bc4265): before, every gcc -m32 program killed the monitor with SIGILL.
SKIP: dict[str, dict[str, str]] = {
    "vmm86": {},
    "vmm86-interp": {},
}


def script_for(checks: list[tuple[str, str]]) -> str:
    """The guest script: each command is written to a file and run under a timeout, its
    output framed by @@<name> ... @@rc=N @@</name>."""
    bb = "/busybox"
    lines = [f"{bb} mkdir -p /checks"]
    for name, cmd in checks:
        if cmd.startswith("@"):
            run = cmd[1:]
        else:
            lines.append(f"{bb} cat > /checks/{name} <<'@@END-OF-CHECK'\n{cmd.strip()}\n@@END-OF-CHECK")
            run = f"/bin/bash /checks/{name}"
        lines.append(f"echo '@@<{name}>'\ncd /root; {bb} timeout {CHECK_TIMEOUT_S} {run} </dev/null 2>&1\n"
                     f"echo \"@@rc=$?\"\necho '@@</{name}>'")
    return "\n".join(lines) + "\n"


def parse(output: str) -> tuple[dict[str, str], str | None]:
    """Outputs of the checks that ended, and the name of one that began but never ended."""
    done = {m.group(1): m.group(2) for m in
            re.finditer(r"^@@<([\w-]+)>\n(.*?)^@@</\1>$", output, re.S | re.M)}
    started = re.findall(r"^@@<([\w-]+)>$", output, re.M)
    broken = next((n for n in started if n not in done), None)
    return {k: v.rstrip("\n") for k, v in done.items()}, broken


def read_expected() -> dict[str, str]:
    if not EXPECTED.exists():
        return {}
    expected: dict[str, list[str]] = {}
    current = None
    for line in EXPECTED.read_text().split("\n"):
        if line.startswith("=== "):
            current = line[4:]
            expected[current] = []
        elif current is not None:
            expected[current].append(line)
    return {k: "\n".join(v).rstrip("\n") for k, v in expected.items()}


def write_expected(results: dict[str, str], note: str) -> None:
    parts = ["# Expected outputs of tests/guest/userland_test.py, one '=== name' section per check.",
             f"# Recorded by `userland_test.py qemu --record` ({note}); never from vmm86."]
    for name, _ in CHECKS:
        if name in results:
            parts.append(f"=== {name}\n{results[name]}")
    EXPECTED.write_text("\n".join(parts) + "\n")


def first_error(console: str, after: str) -> str:
    """The first line after the check began that looks like the monitor's last word."""
    tail = console.split(after, 1)[-1].splitlines()
    for line in tail:
        if re.search(r"vmm86|error|fatal|Illegal|Segmentation|panic|Oops|BUG", line, re.I) \
                and not line.startswith("@@"):
            return line.strip()
    return next((line.strip() for line in reversed(tail) if line.strip()), "<nothing printed>")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-skip", action="store_true")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per boot (default 1500, interp 3600; a --verify run needs more)")
    ap.add_argument("--medium", default="kernel", choices=["kernel", "disk", "cdrom", "disk-root"],
                    help="how the guest boots (scripts/guestrun.py): disk-root puts the userland on an ext4 "
                         "root on /dev/sda2 behind SeaBIOS and SYSLINUX")
    ap.add_argument("--max-boots", type=int, default=None,
                    help="give up after this many boots when the monitor keeps dying (default 8, interp 2)")
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")

    checks = CHECKS
    if args.quick:
        checks = [c for c in checks if c[0] in QUICK]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {n for n, _ in CHECKS}
        if unknown:
            ap.error(f"unknown checks: {', '.join(sorted(unknown))}")
        checks = [c for c in checks if c[0] in wanted]
    skips = {} if args.no_skip else SKIP.get(args.engine, {})
    to_run = [c for c in checks if c[0] not in skips]

    # the interpreter boots the full image in more than 15 minutes: --quick uses the small one
    image = guestrun.userland_image(small=args.quick)
    # The kernel's crypto self-tests are ~5 G instructions at boot (QEMU: 2 s of
    # crypto_algapi_init; the interpreter: ~5 minutes); the interpreter skips them.
    append = "cryptomgr.notests" if args.engine == "vmm86-interp" else ""
    expected = read_expected()
    results: dict[str, str] = {}
    failures: dict[str, str] = {}   # name -> why it has no result (monitor died, timeout)
    boots = 0
    max_boots = args.max_boots or (2 if args.engine == "vmm86-interp" else 8)
    pending = list(to_run)
    start = time.monotonic()
    while pending and boots < max_boots:
        boots += 1
        run = guestrun.run(args.engine, script_for(pending), timeout_s=args.timeout or (3600 if args.engine == "vmm86-interp" else 1500),
                           mem_mb=MEM_MB, image=image, append_extra=append, medium=args.medium)
        # the framed output survives even if the machine died before the end marker
        body = run.console.split(guestrun.BEGIN, 1)[1] if guestrun.BEGIN in run.console else ""
        done, broken = parse(body)
        results.update(done)
        print(f"boot {boots} on {args.engine}: {len(done)} checks in {run.total_s:.1f} s"
              + ("" if run.ok else f" ({run.error or f'status {run.status}'})"), flush=True)
        names = [n for n, _ in pending]
        if run.ok or not broken and len(done) == len(pending):
            pending = [c for c in pending if c[0] not in done]
            break
        if broken is None:
            if not done:  # never reached the first check: no point in booting again
                why = run.error or f"status {run.status}"
                print(f"FAIL boot on {args.engine}: {why}; last console lines:")
                print("\n".join(run.console.splitlines()[-30:]))
                for n in names:
                    failures[n] = f"guest did not reach the checks ({why})"
                pending = []
                break
            broken = names[len(done)] if len(done) < len(names) else None
        if broken:
            failures[broken] = (f"the machine died in this check ({run.error or f'status {run.status}'}); "
                                f"its last words: {first_error(run.console, f'@@<{broken}>')}")
            pending = pending[names.index(broken) + 1:]
    for n, _ in pending:
        failures.setdefault(n, f"not run (gave up after {boots} boots)")
    elapsed = time.monotonic() - start

    if args.record:
        missing = [n for n, _ in to_run if n not in results]
        if missing:
            print(f"not recording: no output for {', '.join(missing)}")
            return 1
        merged = dict(expected)
        merged.update(results)
        write_expected(merged, f"QEMU, {time.strftime('%Y-%m-%d')}")
        print(f"recorded {len(results)} checks into {EXPECTED.name} ({elapsed:.0f} s)")
        return 0

    failed = 0
    for name, _ in checks:
        if name in skips:
            print(f"SKIP {name}: {skips[name]}")
            continue
        if name in failures:
            failed += 1
            print(f"FAIL {name}: {failures[name]}")
            continue
        got, want = results[name], expected.get(name)
        if want is None:
            failed += 1
            print(f"FAIL {name}: no recorded answer (run `userland_test.py qemu --record`)")
        elif got == want:
            print(f"ok   {name}")
        else:
            failed += 1
            diff = next(((i, w, g) for i, (w, g) in enumerate(
                zip(want.split("\n") + ["<end>"], got.split("\n") + ["<end>"])) if w != g), None)
            line, w, g = diff if diff else (0, want, got)
            print(f"FAIL {name}: line {line + 1}: expected {w!r}, got {g!r}")
    ran = len(checks) - len([n for n, _ in checks if n in skips])
    print(f"{ran - failed} passed, {failed} failed, {len(checks) - ran} skipped on {args.engine} "
          f"({boots} boot{'s' if boots != 1 else ''}, {elapsed:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
