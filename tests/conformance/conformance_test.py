#!/usr/bin/python3
"""Conformance kernels (tests/conformance/README.md) on vmm86 and on QEMU, serial consoles
and exit statuses compared. The expected answers are QEMU's (expected.txt beside this file,
written by `conformance_test.py qemu --record`), never vmm86's.

  conformance_test.py ENGINE --kernels DIR [--only NAME] [--record]
  ENGINE: qemu | vmm86 | vmm86-interp; DIR holds the built NAME.elf files.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).with_name("expected.txt")


@dataclasses.dataclass
class Kernel:
    name: str
    mem_mb: int = 32
    timeout_s: float = 60
    qemu_args: tuple[str, ...] = ()   # extra QEMU flags (-cpu, -smp, ...)
    vmm86_args: tuple[str, ...] = ()  # the same machine on vmm86
    # Lines left out of the comparison on both sides: (regex, why), each with its reason.
    ignore: tuple[tuple[str, str], ...] = ()
    # Where QEMU gets a rule wrong, the SDM decides: (the line the SDM requires, the SDM
    # section and what QEMU does). The line with the same text before ': ' is left out of
    # the comparison on both sides, and vmm86 must print exactly the SDM's line.
    sdm: tuple[tuple[str, str], ...] = ()
    # vmm86's exit status where it differs from QEMU's by design: (status, why).
    vmm86_status: tuple[int, str] | None = None


def sdm_key(line: str) -> str:
    return line.split(": ", 1)[0]


MSR_RULE = ("SDM Vol. 2 RDMSR/WRMSR: #GP(0) for an MSR the CPU does not have and for a value that sets reserved "
            "bits or names an undefined memory type (Vol. 3 §11.11.2, §11.12.2); QEMU 7.2's TCG reads unknown "
            "MSRs as 0, drops writes to them and stores any PAT/MTRR value")

PAE_RSVD_RULE = ("SDM Vol. 3 §4.7: a reserved-bit fault sets P with RSVD (bit 3 of the error code \"can be set "
                 "only if bit 0 is also set\"); QEMU 7.2 leaves P clear")

KERNELS = [
    Kernel("basics"),
    Kernel("tasks", sdm=(
        ("conforming task: ran with cs 0x43 ss 0x23",
         "SDM Vol. 3 §5.8.1.2: a conforming code segment's RPL is not checked against its DPL, so a task may "
         "start on one with DPL 0 and RPL 3 (kvm-unit-tests' taskswitch2 passes on hardware); QEMU 7.2 asks "
         "DPL == RPL of every CS in a task switch and raises #TS"),
        ("T bit: #DB at the task's next instruction in task 0x30, DR6.BT 1",
         "SDM Vol. 3 §7.2.1, §17.3.1.5: the TSS's T flag raises a debug exception after the switch, before "
         "the new task's first instruction; QEMU 7.2 ignores the T flag"),
    )),
    Kernel("shadows", sdm=(
        ("single-step trap offsets: 1 3 6 7 9 a b c d e f 16 17",
         "SDM Vol. 3 §6.8.3: MOV SS/POP SS hold the single-step trap back to the end of the next "
         "instruction (no trap at 5 or 8); STI inhibits maskable interrupts only (Vol. 2 STI), so the trap "
         "after sti (c) comes; QEMU 7.2 drops that one too"),
    )),
    Kernel("msrs", sdm=tuple((line, MSR_RULE) for line in (
        "rdmsr 0xc0000081 (STAR, an AMD MSR): vector 13 error 0x0",
        "wrmsr 0xc0000081 (STAR, an AMD MSR): vector 13 error 0x0",
        "rdmsr 0x12345678 (no MSR): vector 13 error 0x0",
        "wrmsr 0x12345678 (no MSR): vector 13 error 0x0",
        "wrmsr 0x277 <- 0x7040600070402 (PAT entry 0 type 2 is reserved): vector 13 error 0x0",
        "wrmsr 0x2ff <- 0x100 (MTRRdefType bit 8 is reserved): vector 13 error 0x0",
    ))),
    Kernel("triplefault", vmm86_status=(
        1, "QEMU's -no-reboot ends with status 0 at a triple fault; vmm86 reports one as a failed guest "
           "(status 1, docs/usage.md)")),
    Kernel("pae", sdm=(
        *((f"{name}, full error code: {code}", PAE_RSVD_RULE) for name, code in (
            ("PTE bit 40 (reserved) read", "0x9"),
            ("PTE bit 40 (reserved) write", "0xb"),
            ("PTE bit 63 (XD, reserved without NX) read", "0x9"),
            ("PDE bit 36 (reserved) read", "0x9"),
            ("2 MiB PDE bit 13 (reserved) read", "0x9"))),
        ("PDPTE register after the PDPT changed, without a CR3 write: reads 0x16161616",
         "SDM Vol. 3 §4.4.1: the PDPTEs are loaded by MOV to CR3 (and CR0/CR4 writes that enable PAE paging) "
         "and not re-read by walks; QEMU 7.2 reads them from memory at each walk"),
        ("MOV to CR3 of a PDPT with a reserved bit: vector 13 error 0x0, CR3 unchanged",
         "SDM Vol. 3 §4.4.1: a present PDPTE with a reserved bit makes the MOV to CR3 raise #GP(0); QEMU 7.2 "
         "loads no PDPTEs at the MOV"),
    )),
    Kernel("apic"),  # QEMU's pc has the APICs; so has vmm86 by default
    Kernel("smp", qemu_args=("-smp", "2"), vmm86_args=("--smp", "2")),
]


def command(engine: str, k: Kernel, path: pathlib.Path) -> list[str]:
    if engine == "qemu":
        return ["qemu-system-i386", "-accel", "tcg", "-m", str(k.mem_mb), "-kernel", str(path), "-display", "none",
                "-serial", "stdio", "-monitor", "none", "-nodefaults", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", *k.qemu_args]
    cmd = [guestrun.vmm86_binary(engine), "run", "--kernel", str(path), "--mem", f"{k.mem_mb}M", "--no-reboot",
           "--debug-exit", "iobase=0xf4,iosize=4", *k.vmm86_args]
    return cmd + (["--engine", "interp"] if engine == "vmm86-interp" else [])


def console(engine: str, k: Kernel, path: pathlib.Path) -> tuple[list[str], list[str], int | None, str]:
    """The lines to compare with QEMU's, the lines `k.sdm` decides, the exit status, stderr."""
    out, status, err, _ = guestrun.run_console(command(engine, k, path), k.timeout_s)
    text = out.decode("utf-8", "replace").replace("\r", "")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not any(re.search(p, line) for p, _ in k.ignore)]
    sdm_keys = {sdm_key(want) for want, _ in k.sdm}
    decided = [line for line in lines if sdm_key(line) in sdm_keys]
    return [line for line in lines if sdm_key(line) not in sdm_keys], decided, status, err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["qemu", "vmm86", "vmm86-interp"])
    ap.add_argument("--kernels", type=pathlib.Path, required=True, help="the build's tests/conformance directory")
    ap.add_argument("--only", help="one kernel by name")
    ap.add_argument("--record", action="store_true", help="write QEMU's answers (qemu only)")
    args = ap.parse_args()
    if args.record and args.engine != "qemu":
        ap.error("--record takes QEMU's answers only")
    expected = {} if args.record else guestrun.read_sections(EXPECTED)
    recorded: list[str] = []
    failures = 0
    for k in KERNELS:
        if args.only and k.name != args.only:
            continue
        lines, decided, status, err = console(args.engine, k, args.kernels / f"{k.name}.elf")
        vmm86 = args.engine != "qemu"
        if args.record:
            recorded += [f"[{k.name}]", f"status={status}", *lines]
            print(f"{k.name}: recorded {len(lines)} lines, status {status}")
            continue
        want = expected.get(k.name)
        if want is None:
            problem = "no answers recorded from QEMU (run with qemu --record)"
        elif lines != want[1:]:
            problem = "console differs from QEMU's:\n" + "\n".join(guestrun.console_diff(want[1:], lines, 20))
        elif vmm86 and k.vmm86_status:
            want_status, why = k.vmm86_status
            problem = "" if status == want_status else f"exit status {status}, want {want_status}: {why}"
        elif want[0] != f"status={status}":
            problem = f"exit status {status}, QEMU's {want[0]}"
        elif vmm86 and any(w not in decided for w, _ in k.sdm):
            missing = [f"  want {w!r}: {why}" for w, why in k.sdm if w not in decided]
            problem = "differs from the SDM's answer:\n" + "\n".join(missing) + f"\n  got {decided!r}"
        else:
            problem = ""
        failures += bool(problem)
        print(f"{k.name} ({args.engine}): {'FAIL: ' + problem if problem else 'ok'}")
        if problem:
            print("--- console:\n" + "\n".join(lines[-30:]) + "\n--- stderr:\n" + err)
    if args.record:
        header = ["# QEMU's serial consoles and exit statuses for tests/conformance/conformance_test.py,",
                  "# written by `conformance_test.py qemu --record` (qemu-system-i386, Debian 12); never from vmm86."]
        EXPECTED.write_text("\n".join(header + recorded) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
