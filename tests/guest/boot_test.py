#!/usr/bin/python3
"""Guest integration test: boot the default guest (Debian linux-image-686 + busybox) on one
engine, run commands through the scripted init and compare with known answers.

  boot_test.py ENGINE [--quick] [--medium kernel|disk|cdrom|disk-root] [--pae]
                                                      ENGINE: qemu | vmm86 | vmm86-interp
--medium disk boots through the BIOS from a raw MBR disk with SYSLINUX, cdrom from an El
Torito CD with ISOLINUX (scripts/boot_media.py), holding the same kernel and initrd;
disk-root puts the guest's files on an ext4 root partition (/dev/sda2) instead.
--pae boots Debian's linux-image-686-pae kernel (guest/build-pae-kernel.sh) with the same
initramfs instead: the same answers (uname says -686-pae), and the kernel's own view of
PAE paging, recorded from QEMU on that kernel.
Exit status 0 when every check passes; prints one line per check.
"""
from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

# (name, command, check) — check is a regex the command's output must match in full.
CHECKS = [
    ("uname", "uname -a",
     r"Linux \S+ 6\.1\.0-\d+-686 #1 SMP PREEMPT_DYNAMIC Debian 6\.1\.\d+-\d+ \(\d{4}-\d\d-\d\d\) i686 GNU/Linux"),
    ("cpuinfo", "grep -E '^(vendor_id|cpu family|fpu)\\s' /proc/cpuinfo | tr -s '\\t ' ' '",
     r"vendor_id : \w+\ncpu family : 6\nfpu : yes"),
    ("md5sum", "head -c 1048576 /dev/zero | md5sum", r"b6d81b360a5672d80c27430f39153e2c  -"),
    ("sha256sum", "printf 'vmm86' | sha256sum",
     r"783988a301d93a821a0d2ac12fbbe763be4ef162b0d6cd16686053ee3c56d9e2  -"),
    ("fork-exec", "i=0; while [ $i -lt 20 ]; do /bin/true; i=$((i+1)); done; echo forks=$i", r"forks=20"),
    ("awk-fp", "awk 'BEGIN{s=0;for(i=1;i<=1000;i++)s+=i/8;printf \"%.3f %.4f\\n\",s,1/3}'",
     r"62562\.500 0\.3333"),
    ("ls", "ls /", r"(?s)(?=.*\bbin\b)(?=.*\bproc\b)(?=.*\bsys\b).*"),
]
QUICK = ("uname", "md5sum", "ls", "pci", "pae")
# The PAE kernel runs on PAE paging (it stops at boot on a CPU without the PAE flag): it
# maps low memory with 2 MiB pages (DirectMap2M; a 32-bit-paging kernel has DirectMap4M),
# and finds no NX, as on QEMU's default CPU.
PAE_CHECK = ("pae", "grep -o -w -m1 pae /proc/cpuinfo; grep -o '^DirectMap2M:' /proc/meminfo; "
             "dmesg | grep -o 'NX (Execute Disable) protection.*'",
             r"pae\nDirectMap2M:\nNX \(Execute Disable\) protection missing in CPU!")
# Booted through the BIOS, the guest sees the PC's PCI functions (busybox has no lspci):
# the i440FX host bridge, the PIIX3 ISA bridge and IDE function, the PIIX4 ACPI function,
# as on QEMU's `pc` machine.
PCI_CHECK = ("pci", "for d in /sys/bus/pci/devices/*; do echo ${d##*/} $(cat $d/vendor $d/device); done",
             r"0000:00:00\.0 0x8086 0x1237\n0000:00:01\.0 0x8086 0x7000\n0000:00:01\.1 0x8086 0x7010\n"
             r"0000:00:01\.3 0x8086 0x7113")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    engine = sys.argv[1]
    medium = sys.argv[sys.argv.index("--medium") + 1] if "--medium" in sys.argv else "kernel"
    pae = "--pae" in sys.argv
    checks = CHECKS + [PCI_CHECK] if medium != "kernel" else CHECKS
    image = None
    if pae:
        flavour = guestrun.guest_dir() / "pae" / "vmlinuz"
        image = guestrun.Image(flavour, guestrun.default_image().initrds)
        checks = [(n, c, p.replace(r"-686 #1", r"-686-pae #1")) for n, c, p in checks] + [PAE_CHECK]
    checks = [c for c in checks if "--quick" not in sys.argv or c[0] in QUICK]
    # One boot runs every command; each command's output is framed so it can be told apart.
    script = "".join(f"echo '@@<{name}>'\n{cmd}\necho '@@</{name}>'\n" for name, cmd, _ in checks)
    run = guestrun.run(engine, script, timeout_s=1200, medium=medium, image=image)
    if not run.ok:
        print(f"FAIL boot on {engine}: {run.error or f'status {run.status}'}")
        print("--- last console lines ---")
        print("\n".join(run.console.splitlines()[-40:]))
        return 1
    print(f"ok   boot on {engine} from {medium}{' (686-pae)' if pae else ''} ({run.total_s:.1f} s)")
    failed = 0
    for name, _, pattern in checks:
        m = re.search(rf"@@<{name}>\n(.*?)\n?@@</{name}>", run.output, re.S)
        got = m.group(1) if m else "<no output>"
        if re.fullmatch(pattern, got):
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: expected /{pattern}/, got {got!r}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
