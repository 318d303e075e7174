#!/usr/bin/python3
"""Boots the default guest in QEMU from the state vmm86's Linux loader builds (no engine of
ours involved): handoff_dump writes the loaded guest RAM and entry registers, trampoline.s
(a Multiboot kernel) puts them in place in QEMU's RAM and jumps to the kernel. Passing means
the loader's boot_params, e820 map, command line, initrd placement and entry state are what
a real kernel needs.

  qemu_handoff_test.py HANDOFF_DUMP_BINARY
Exit 0 on success, 77 (skipped) without qemu-system-i386 or the guest (but 1 when
VMM86_REQUIRE_GUEST=1 and the guest is missing).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
SKIP = 77
MEM_MIB = 256
CMDLINE = 'console=ttyS0 acpi=off rdinit=/init-scripted vmm86.cmd="uname -m; cat /proc/cmdline"'


def guest_dir() -> pathlib.Path:
    if os.environ.get("VMM86_GUEST_DIR"):
        return pathlib.Path(os.environ["VMM86_GUEST_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "vmm86" / "guest"


def main() -> int:
    dump = sys.argv[1]
    guest = guest_dir()
    kernel, initrd = guest / "vmlinuz", guest / "initrd.cpio.gz"
    if not kernel.is_file() or not initrd.is_file():
        print(f"no guest in {guest} (run guest/build-image.sh)")
        return 1 if os.environ.get("VMM86_REQUIRE_GUEST") == "1" else SKIP
    qemu = shutil.which("qemu-system-i386")
    if not qemu:
        print("qemu-system-i386 not found")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="vmm86-handoff-") as tmp:
        subprocess.run(["as", "--32", "-o", f"{tmp}/trampoline.o", str(HERE / "trampoline.s")], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-z", "noexecstack", "-z", "max-page-size=0x1000",
                        "-Ttext=0x200000", "-o", f"{tmp}/trampoline.elf", f"{tmp}/trampoline.o"], check=True)
        modules = subprocess.run([dump, tmp, str(MEM_MIB), str(kernel), str(initrd), CMDLINE],
                                 check=True, capture_output=True, text=True).stdout.strip()
        try:
            run = subprocess.run([qemu, "-m", f"{MEM_MIB}M", "-display", "none", "-no-reboot", "-serial", "stdio",
                                  "-monitor", "none", "-kernel", f"{tmp}/trampoline.elf", "-initrd", modules],
                                 capture_output=True, text=True, errors="replace", timeout=300,
                                 stdin=subprocess.DEVNULL)
            console = run.stdout
        except subprocess.TimeoutExpired as e:
            console = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            console += "\n<timeout>"
    checks = [
        ("e820 high RAM", rf"BIOS-e820: \[mem 0x0000000000100000-0x{MEM_MIB * 2**20 - 1:016x}\] usable"),
        ("initrd", r"RAMDISK: \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]"),
        ("command line", re.escape(f"Kernel command line: {CMDLINE}")),
        ("user space", r"=== vmm86-script-begin ===\s+i686\s+" + re.escape(CMDLINE)),
        ("script end", r"=== vmm86-script-end status=0 ==="),
    ]
    failed = [name for name, pattern in checks if not re.search(pattern, console)]
    for name, _ in checks:
        print(("FAIL " if name in failed else "ok   ") + name)
    if failed:
        print("--- last console lines ---")
        print("\n".join(console.splitlines()[-40:]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
