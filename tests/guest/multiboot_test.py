#!/usr/bin/python3
"""Multiboot kernels booted with --kernel on vmm86 and with -kernel on QEMU, serial consoles
compared. The expected answers are QEMU's (tests/guest/multiboot_expected.txt, written by
`multiboot_test.py qemu --record`), never vmm86's.

  multiboot_test.py ENGINE [--quick] [--record]     ENGINE: qemu | vmm86 | vmm86-interp

Kernels:
  info-aout, info-elf  tests/guest-programs/multiboot_info.asm, our own: every field of the
                       Multiboot information, the ACPI tables found by scanning for the RSDP
                       (FADT PM registers, the DSDT's \\_S5), then isa-debug-exit (status 85)
  gnumach              GNU Mach 1.8 (Debian's gnumach-image-1.8-486:i386) with two modules:
                       it lists them with their strings and panics on the first (not an ELF)
  tboot                Intel's tboot 1.10 (Debian's tboot): its log, up to its halt
  invaders             grub-invaders (a.out kludge, VGA only): still running after 3 s
The real kernels come from guest/build-multiboot.sh (Debian packages, unmodified). --quick
leaves out GNU Mach (slow on the interpreter). Lines that depend on the platform rather than
on the loader are compared by the rules in PLATFORM_LINES / own_kernel_expectation, each with
its reason. Exit status 0 when every kernel matches.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPECTED = pathlib.Path(__file__).with_name("multiboot_expected.txt")
DEBUG_EXIT_QEMU = "isa-debug-exit,iobase=0xf4,iosize=0x04"
DEBUG_EXIT_VMM86 = "iobase=0xf4,iosize=4"
MODULES = {"modA.bin": bytes((i * 7 + 3) & 0xFF for i in range(5000)), "modB.bin": b"hello"}
MACH_MODULES = "modA.bin one two $(task-create) $(task-resume),modB.bin"


@dataclasses.dataclass
class Kernel:
    name: str
    file: str                 # as the guest sees it (in the work directory)
    modules: str = ""         # -initrd / --initrd
    append: str = ""
    mem_mb: int = 64
    until: str | None = None  # stop once the console shows this (the kernel would run on)
    timeout_s: float = 120
    quick: bool = True
    smoke_s: float = 0        # no console: pass if still running after this long


KERNELS = [
    Kernel("info-aout", "multiboot_info.bin", "modA.bin arg1 arg2,modB.bin", "hello world"),
    Kernel("info-elf", "multiboot_info_elf.bin", "modA.bin arg1 arg2,modB.bin", "hello world"),
    Kernel("gnumach", "gnumach.elf", MACH_MODULES, "console=com0", 128, quick=False),
    Kernel("tboot", "tboot.elf", "", "logging=serial", 128, until="TB_SHUTDOWN_HALT"),
    Kernel("invaders", "invaders.exec", smoke_s=3),
]

# Lines of the real kernels that describe the machine rather than what the boot loader
# handed over: left out of the comparison on both sides, each with its reason.
PLATFORM_LINES = [
    (r"^RTC time is ", "the wall clock"),
    (r"^biosmem: [0-9a-f]+:", "the memory map is vmm86's e820 (docs/usage.md); QEMU's comes from SeaBIOS, "
                               "which also reserves the top 128 KiB of RAM and the BIOS ROM at 0xfffc0000"),
    (r"^vm_page: ", "page counts follow from that memory map"),
    (r"^(pcibios_init|pci_init|Probing PCI hardware|ide:|\s+ide\d|\s+Controller on PCI|FDC |floppy0:)",
     "--kernel's machine has no BIOS (no BIOS32 service), no PCI chipset, IDE or floppy controller"),
    (r"probing scsi|qlogicisp", "the SCSI probes print differently without PCI (one line, split on vmm86)"),
    (r"^TBOOT: \t[0-9a-f]{16} - [0-9a-f]{16}", "the memory map (see biosmem above)"),
    (r"^TBOOT: (TXT\.SINIT\.|TPM: |Request TPM )",
     "reads of the absent TXT and TPM registers: QEMU returns 0 for unassigned addresses, vmm86 "
     "all-ones as a PC's undriven bus does, so tboot takes other error paths"),
]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def platform_line(line: str) -> bool:
    return any(re.search(pattern, line) for pattern, _ in PLATFORM_LINES)


def own_kernel_expectation(qemu_lines: list[str], mem_mb: int) -> list[str]:
    """What vmm86 must print for our multiboot_info kernel, from QEMU's lines: the same,
    except where docs/usage.md says vmm86 differs by design."""
    # vmm86's ACPI tables lie at 0xE0000-0xEFFFF (ACPI data); SeaBIOS puts QEMU's near the top of RAM.
    e820 = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xE0000, 0x10000, 3), (0xF0000, 0x10000, 2),
            (0x100000, (mem_mb << 20) - 0x100000, 1)]
    out: list[str] = []
    for line in qemu_lines:
        key, _, value = line.partition("=")
        if key == "flags":  # bit 1 clear: --kernel has no BIOS disk to name in boot_device
            out.append(f"flags={int(value, 16) & ~0x2:08x}")
        elif key == "boot_device":
            out.append("boot_device=ffffffff")
        elif key == "mem_upper":  # RAM from 1 MiB to the end of --mem, no SeaBIOS reservation
            out.append(f"mem_upper={((mem_mb << 20) - 0x100000) >> 10:08x}")
        elif key == "mmap_length":
            out.append(f"mmap_length={24 * len(e820):08x}")
        elif key == "mmap":
            if not out[-1].startswith("mmap="):
                out += [f"mmap={b:016x} {n:016x} {t:08x}" for b, n, t in e820]
        elif key == "boot_loader_name":  # same address, vmm86's name
            out.append(line.replace("'qemu'", "'vmm86'"))
        else:
            out.append(line)
    return out


def kernel_paths() -> dict[str, pathlib.Path]:
    own = {f: pathlib.Path(os.environ.get(env, REPO / "build" / "tests" / "guest-programs" / f))
           for f, env in (("multiboot_info.bin", "VMM86_MULTIBOOT_INFO_BIN"),
                          ("multiboot_info_elf.bin", "VMM86_MULTIBOOT_INFO_ELF_BIN"))}
    real = pathlib.Path(subprocess.run([str(REPO / "guest" / "build-multiboot.sh")], check=True,
                                       stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1])
    return {**own, **{f: real / f for f in ("gnumach.elf", "tboot.elf", "invaders.exec")}}


def command(engine: str, k: Kernel) -> list[str]:
    if engine == "qemu":
        cmd = ["qemu-system-i386", "-accel", "tcg", "-m", str(k.mem_mb), "-kernel", k.file, "-append", k.append,
               "-display", "none", "-serial", "stdio", "-monitor", "none", "-nodefaults", "-no-reboot",
               "-device", DEBUG_EXIT_QEMU]
        return cmd + (["-initrd", k.modules] if k.modules else [])
    cmd = [guestrun.vmm86_binary(engine), "run", "--kernel", k.file, "--append", k.append, "--mem", f"{k.mem_mb}M",
           "--debug-exit", DEBUG_EXIT_VMM86] + (["--initrd", k.modules] if k.modules else [])
    return cmd + (["--engine", "interp"] if engine.startswith("vmm86-interp") else [])


def run(engine: str, k: Kernel, workdir: pathlib.Path) -> tuple[list[str], int | None, str]:
    """Console lines, exit status (None when stopped by us) and the end of stderr."""
    out, status, err, _ = guestrun.run_console(command(engine, k), k.smoke_s or k.timeout_s,
                                               k.until.encode() if k.until else None, workdir)
    text = ANSI.sub("", out.decode("utf-8", "replace").replace("\r", ""))
    return [line.rstrip() for line in text.splitlines() if line.strip()], status, err[-1500:]


def check(engine: str, k: Kernel, lines: list[str], status: int | None, expected: list[str]) -> str:
    """'' when `lines` and `status` are what `expected` (QEMU's record) asks for."""
    if k.smoke_s:
        return "" if status is None else f"ended with status {status} within {k.smoke_s} s"
    want_status = [int(l.split("=")[1]) for l in expected if l.startswith("status=")]
    expected = [l for l in expected if not l.startswith("status=")]
    if k.name.startswith("info-") and engine != "qemu":
        expected, got = own_kernel_expectation(expected, k.mem_mb), lines
    else:
        expected, got = [l for l in expected if not platform_line(l)], [l for l in lines if not platform_line(l)]
    if got != expected:
        return "console differs:\n" + "\n".join(guestrun.console_diff(expected, got, 10))
    if want_status and status != want_status[0]:
        return f"exit status {status}, QEMU's was {want_status[0]}"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--record", action="store_true", help="write QEMU's answers (qemu only)")
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")
    paths = kernel_paths()
    expected = {} if args.record else guestrun.read_sections(EXPECTED)
    recorded: list[str] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="vmm86-multiboot-") as tmp:
        workdir = pathlib.Path(tmp)
        for name, data in MODULES.items():
            (workdir / name).write_bytes(data)
        for f, path in paths.items():
            (workdir / f).symlink_to(path)
        for k in KERNELS:
            if args.quick and not k.quick:
                continue
            start = time.monotonic()
            lines, status, err = run(args.engine, k, workdir)
            elapsed = time.monotonic() - start
            if args.record:
                if not k.smoke_s:
                    kept = [l for l in lines if not re.search(PLATFORM_LINES[0][0], l)]  # the wall clock
                    recorded += [f"[{k.name}]"] + ([f"status={status}"] if k.name.startswith("info-") else []) + kept
                print(f"{k.name}: recorded {len(lines)} lines in {elapsed:.1f} s")
                continue
            problem = check(args.engine, k, lines, status, expected.get(k.name, []))
            failures += bool(problem)
            print(f"{k.name} ({args.engine}): {'FAIL: ' + problem if problem else 'ok'} ({elapsed:.1f} s)")
            if problem:
                print("--- console:\n" + "\n".join(lines[-40:]) + "\n--- stderr:\n" + err)
    if args.record:
        header = ["# QEMU's serial consoles for tests/guest/multiboot_test.py, written by",
                  "# `multiboot_test.py qemu --record` (qemu-system-i386, Debian 12); never from vmm86."]
        EXPECTED.write_text("\n".join(header + recorded) + "\n")
        return 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
