"""The anchor workloads: the same shell script on every engine, each with a checked answer.

A workload prints @@T0 and @@T1 around the part that is timed (setup and checks are not).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    description: str
    script: str
    expect: tuple[str, ...]  # lines that must appear in the output
    guest_only: bool = False  # no native equivalent (booting, or the guest's own file tree)
    whole_run: bool = False  # time the whole run (the boots), not what @@T0..@@T1 enclose
    medium: str = "kernel"  # how the machine boots: kernel (direct), disk or cdrom (through the BIOS)
    image: str = "default"  # default (busybox) or userland (Debian's i386 userland, guest/build-userland.sh)


WORKLOADS = [
    Workload("boot", "boot to the shell prompt and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True, whole_run=True),
    # The same boot through SeaBIOS and a boot loader: MBR + SYSLINUX on an IDE disk, El
    # Torito + ISOLINUX on an ATAPI CD (scripts/boot_media.py); the whole run is timed.
    Workload("boot-disk", "BIOS -> MBR -> SYSLINUX -> Linux from an IDE disk, to the shell and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True, whole_run=True, medium="disk"),
    Workload("boot-cdrom", "BIOS -> El Torito -> ISOLINUX -> Linux from an ATAPI CD, to the shell and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True, whole_run=True, medium="cdrom"),
    Workload("md5sum", "md5sum of 32 MiB of zeros",
             "echo @@T0\nhead -c 33554432 /dev/zero | md5sum\necho @@T1\n",
             ("58f06dd588d8ffb3beb46ada6309436b  -",)),
    Workload("sha256sum", "sha256sum of 16 MiB of zeros",
             "echo @@T0\nhead -c 16777216 /dev/zero | sha256sum\necho @@T1\n",
             ("080acf35a507ac9849cfcba47dc2ad83e01b75663a516279c8b9d243b719643e  -",)),
    Workload("gzip", "gzip of 4 MiB from /dev/urandom",
             "head -c 4194304 /dev/urandom > /tmp/r\n"
             "echo @@T0\ngzip -c /tmp/r > /tmp/r.gz\necho @@T1\n"
             "gzip -dc /tmp/r.gz | cmp - /tmp/r && echo gzip-roundtrip-ok\n",
             ("gzip-roundtrip-ok",)),
    Workload("fork-exec", "300x fork+exec of /bin/true from a shell loop",
             "i=0\necho @@T0\nwhile [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done\necho @@T1\n"
             "echo forks=$i\n",
             ("forks=300",)),
    Workload("awk-fp", "busybox awk loop of 2,000,000 iterations with floating point",
             "echo @@T0\nawk 'BEGIN{s=0;t=0;for(i=1;i<=2000000;i++){s+=i*0.5;t+=i/4} "
             "printf \"%.1f %.2f\\n\", s, t}'\necho @@T1\n",
             ("1000000500000.0 500000250000.00",)),
]


def _userland(name: str, description: str, timed: str, expect: tuple[str, ...], setup: str = "",
              guest_only: bool = False) -> Workload:
    """A workload on the real userland guest: a bash script (the image's init runs scripts
    with busybox sh, whose applets would shadow Debian's tools), so coreutils, gawk, gzip,
    xz, perl, python3 and sqlite3 are Debian's; natively the host's own x86-64 tools and
    programs run the same script."""
    body = f"{setup}echo @@T0\n{timed}\necho @@T1\n"
    script = f"cat > /tmp/workload.sh <<'VMM86_EOF'\n{body}VMM86_EOF\nbash /tmp/workload.sh\n"
    return Workload(name, description, script, expect, guest_only=guest_only, image="userland")


# What real systems do all day (issue 21): short processes, pipes, page-table churn, and the
# interpreters and tools of the Debian userland, plus compute kernels built with gcc -m32
# (guest/userland/bench). The answers were checked against QEMU's runs of the same image.
WORKLOADS += [
    _userland("shell-subst", "bash loop with 2,000 command substitutions",
              "i=0; while [ $i -lt 2000 ]; do x=$(echo $i); i=$((i+1)); done; echo subst=$x", ("subst=1999",)),
    _userland("fork-exec-dyn", "300x fork+exec of a dynamically linked /bin/true (coreutils)",
              "for i in $(seq 300); do /bin/true; done; echo execs=$i", ("execs=300",)),
    _userland("pipeline", "seq | sed | grep | sort -r | md5sum over 200,000 lines",
              "seq 200000 | sed 's/1/x/g' | grep -v 7 | sort -r | md5sum", ("fd42fb2f0df6267500d79e8c706b96a1  -",)),
    _userland("sort", "sort -n of 200,000 pseudo-random numbers from awk",
              "gawk 'BEGIN{s=1; for(i=0;i<200000;i++){s=(s*69069+1)%4294967296; printf \"%d\\n\", s}}' | sort -n | md5sum",
              ("a14a8982edd5130f573458b7a3df9979  -",)),
    _userland("find-xargs", "find | xargs md5sum over python's stdlib (.py files)",
              "find /usr/lib/python3.11 -name '*.py' | xargs md5sum | wc -l", ("542",), guest_only=True),
    _userland("gzip-fanout", "40 gzip -9 runs, four at a time, as a make -j4 would start them",
              "for i in $(seq 40); do gzip -9 -n -c /tmp/in > /tmp/o$i.gz & [ $((i % 4)) = 0 ] && wait; done; "
              "wait; cat /tmp/o*.gz | md5sum", ("9c01da80ea056a678b0d100ccdb54636  -",), setup="seq 100000 > /tmp/in\n"),
    _userland("tar", "tar of python's stdlib to a pipe",
              "tar cf - -C /usr/lib/python3.11 . | wc -c", ("24514560",), guest_only=True),
    _userland("perl", "perl loop of 2,000,000 iterations",
              "perl -e '$s=0; for $i (1..2000000) { $s += ($i*$i) % 7 } print \"perl=$s\\n\"'", ("perl=4000001",)),
    _userland("python", "python3 generator sum over 1,000,000 numbers",
              "python3 -c 'print(\"python=%d\" % sum(i*i % 7 for i in range(1000000)))'", ("python=1999998",)),
    _userland("sqlite3", "sqlite3: 20,000 inserts in one transaction, then a sum",
              "gawk 'BEGIN{print \"create table t(a,b); begin;\"; for(i=0;i<20000;i++) "
              "printf \"insert into t values(%d,%d);\\n\", i, i*7%13; print \"commit; select count(*), sum(a*b) from t;\"}' "
              "| sqlite3 /tmp/db", ("20000|1199900008",)),
    _userland("xz", "xz -6 of 300,000 lines and back",
              "seq 300000 | xz -6 -c | xz -dc | md5sum", ("daef482d6c698625ab13d987d14e8781  -",)),
    _userland("nbody-x87", "n-body, 1,000,000 steps, x87 (gcc -m32 -mfpmath=387)",
              "/opt/bench/nbody-x87 1000000", ("-0.169075164", "-0.169086185")),
    _userland("nbody-sse", "n-body, 1,000,000 steps, SSE2 (gcc -m32 -msse2 -mfpmath=sse)",
              "/opt/bench/nbody-sse 1000000", ("-0.169075164", "-0.169086185")),
    _userland("matmul", "500x500 double matrix multiply, SSE2", "/opt/bench/matmul 500", ("93749906.963541",)),
    _userland("sieve", "sieve of Eratosthenes below 20,000,000", "/opt/bench/sieve 20000000", ("1270607",)),
    _userland("qsort", "qsort(3) of 2,000,000 integers", "/opt/bench/qsort 2000000", ("17173065588224523",)),
    _userland("crc32", "table CRC-32 of 64 MiB", "/opt/bench/crc32 64", ("b8f6f69e",)),
    _userland("pagetouch", "32 MiB touched page by page, mprotect, mremap, 4 rounds",
              "/opt/bench/pagetouch 32 4", ("4341760",)),
]


def by_name(name: str) -> Workload:
    for w in WORKLOADS:
        if w.name == name:
            return w
    raise KeyError(name)
