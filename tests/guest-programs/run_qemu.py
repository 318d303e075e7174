#!/usr/bin/env python3
"""Runs a guest program (README.md contract) under QEMU as the reference machine.

Builds a disk image from the qemu_boot.asm boot sector plus the program, boots it with
qemu-system-i386 (TCG, 16 MiB, port 0xE9 as the debug console) and checks the outcome:
  --expect pass          the debug console shows exactly "PASS\\n"
  --expect triple-fault  QEMU shuts down by itself (-no-reboot), logs a triple fault and
                         the debug console stays empty
Exit status 0 on success; the reason is printed otherwise.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

MAX_PROGRAM = 64 * 512  # what the boot sector loads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", default="qemu-system-i386")
    ap.add_argument("--boot", required=True, help="boot sector (qemu_boot.bin)")
    ap.add_argument("--program", required=True, help="flat binary loaded at 0x8000")
    ap.add_argument("--expect", required=True, choices=["pass", "triple-fault"])
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    with open(args.boot, "rb") as f:
        boot = f.read()
    with open(args.program, "rb") as f:
        program = f.read()
    if len(boot) != 512 or boot[510:] != b"\x55\xaa":
        print(f"{args.boot}: not a boot sector")
        return 1
    if len(program) > MAX_PROGRAM:
        print(f"{args.program}: {len(program)} bytes, the boot sector loads at most {MAX_PROGRAM}")
        return 1

    with tempfile.TemporaryDirectory(prefix="vmm86-qemu-") as tmp:
        disk = os.path.join(tmp, "disk.img")
        console = os.path.join(tmp, "debugcon.txt")
        log = os.path.join(tmp, "qemu.log")
        with open(disk, "wb") as f:
            f.write(boot + program)
            f.truncate(1 << 20)  # a plausible disk size for the BIOS
        cmd = [args.qemu, "-M", "pc", "-accel", "tcg", "-m", "16", "-display", "none", "-nodefaults",
               "-no-reboot", "-boot", "c", "-drive", f"file={disk},format=raw,if=ide",
               "-debugcon", f"file:{console}", "-d", "cpu_reset", "-D", log]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + args.timeout
        output = b""
        # The program ends with cli; hlt, which QEMU just sits in: stop once a report line
        # is complete. A triple fault ends QEMU by itself.
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(console):
                with open(console, "rb") as f:
                    output = f.read()
                if output.endswith(b"\n"):
                    break
            time.sleep(0.05)
        exited = proc.poll() is not None
        if not exited:
            proc.kill()
        proc.wait()
        if os.path.exists(console):
            with open(console, "rb") as f:
                output = f.read()
        qemu_log = open(log, errors="replace").read() if os.path.exists(log) else ""

    if args.expect == "pass":
        if output == b"PASS\n":
            print("PASS")
            return 0
        print(f"expected PASS, got {output!r}" + ("" if output else " (timeout)"))
        return 1
    if exited and not output and "Triple fault" in qemu_log:
        print("triple fault, as expected")
        return 0
    print(f"expected a triple fault: exited={exited} output={output!r} triple-fault-logged={'Triple fault' in qemu_log}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
