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
    guest_only: bool = False  # no native equivalent (booting)
    medium: str = "kernel"  # how the machine boots: kernel (direct), disk or cdrom (through the BIOS)


WORKLOADS = [
    Workload("boot", "boot to the shell prompt and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True),
    # The same boot through SeaBIOS and a boot loader: MBR + SYSLINUX on an IDE disk, El
    # Torito + ISOLINUX on an ATAPI CD (scripts/boot_media.py); the whole run is timed.
    Workload("boot-disk", "BIOS -> MBR -> SYSLINUX -> Linux from an IDE disk, to the shell and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True, medium="disk"),
    Workload("boot-cdrom", "BIOS -> El Torito -> ISOLINUX -> Linux from an ATAPI CD, to the shell and power off",
             "echo @@T0\necho booted\necho @@T1\n", ("booted",), guest_only=True, medium="cdrom"),
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


def by_name(name: str) -> Workload:
    for w in WORKLOADS:
        if w.name == name:
            return w
    raise KeyError(name)
