#!/usr/bin/env python3
"""Debian's memtest86+ started from a disk's boot loader, as a PC starts it: SeaBIOS -> MBR ->
SYSLINUX -> memtest86+ia32.bin (Linux boot protocol) with its console on COM1 (--medium
floppy: from a 1.44 MB FAT12 floppy in drive A:, SeaBIOS -> boot sector -> SYSLINUX, every
sector read through the floppy controller and ISA DMA channel 2). It runs its
first pass over the guest's RAM, test #0 to the last, #10 (bit fade, which then waits 2 x
80 s: the test stops there), and must find no errors: a translator that loses or misplaces
a store shows up as a memory error. The lines checked come from QEMU on the same image
(tests/guest/memtest_expected.txt). Not compared: the memory size line (QEMU's SeaBIOS
reserves 128 KiB at the top of RAM for QEMU's ACPI tables, vmm86's board 8 KiB) and the
CPU and cache lines (different CPUID).

--medium kernel starts it directly (QEMU's -kernel, vmm86's --kernel) through its Linux
boot protocol header. --full-pass waits through the bit fade test to the end of the first
pass ("Pass: 1" on the status line) and prints how long the pass took.

  memtest_test.py ENGINE [--medium disk|floppy|kernel] [--full-pass]   # ENGINE: qemu or vmm86
"""
import os
import pathlib
import re
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import boot_media  # noqa: E402
import guestrun  # noqa: E402

EXPECTED = pathlib.Path(__file__).with_name("memtest_expected.txt").read_text().splitlines()
LAST_TEST = b"#10 [Bit fade test, 2 patterns]"
# The status line after the first pass: "Pass: 1" (then the tests start over at #0).
PASS_DONE = re.compile(rb"Pass:\s*(\x1b\[[0-9;]*[A-Za-z])*\s*1\b")
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")


def watch_for_pass(cmd: list[str]) -> tuple[str, str, float]:
    """Runs memtest86+ until its status line shows the first pass done (at most 15 minutes:
    the bit fade test alone waits 2 x 80 s)."""
    out, _, err, elapsed = guestrun.run_console(cmd, 900, until_re=PASS_DONE)
    return out.decode("utf-8", "replace"), err, elapsed


def main() -> int:
    engine = sys.argv[1] if len(sys.argv) > 1 else "vmm86"
    medium = sys.argv[sys.argv.index("--medium") + 1] if "--medium" in sys.argv else "disk"
    full_pass = "--full-pass" in sys.argv
    if not boot_media.MEMTEST.exists() or boot_media.missing_tools():
        print(f"memtest_test: needs {boot_media.MEMTEST} (package memtest86+) and "
              f"{boot_media.missing_tools()}", file=sys.stderr)
        return 77 if os.environ.get("VMM86_REQUIRE_GUEST") != "1" else 1
    with tempfile.TemporaryDirectory(prefix="vmm86-memtest-") as tmp:
        image = pathlib.Path(tmp) / "memtest.img"
        if medium == "kernel":
            cmd = guestrun.kernel_command(engine, boot_media.MEMTEST, boot_media.MEMTEST_APPEND, mem_mb=32)
        elif medium == "floppy":
            boot_media.floppy_image(boot_media.MEMTEST, None, boot_media.MEMTEST_APPEND, image)
            cmd = guestrun.floppy_command(engine, image, mem_mb=32)
        else:
            boot_media.disk_image(boot_media.MEMTEST, None, boot_media.MEMTEST_APPEND, image, size_mib=32)
            cmd = guestrun.disk_command(engine, image, mem_mb=32)
        if full_pass:
            out, err, elapsed = watch_for_pass(cmd)
        else:
            out, err, elapsed = guestrun.watch_console(cmd, LAST_TEST, 300)
    # The console is a VT100 screen: cut at every escape sequence and compare the pieces.
    pieces = [p.strip() for p in ANSI.split(out.replace("\r", "\n")) for p in p.split("\n") if p and p.strip()]
    missing = [e for e in EXPECTED if not any(e in p for p in pieces)]
    errors = sorted({m for p in pieces for m in re.findall(r"Errors: *([0-9]+)", p) if m != "0"})
    if missing or errors:
        print(f"memtest_test ({engine}, {medium}): missing {missing!r}, error counts {errors} after {elapsed:.1f} s\n"
              f"--- console (end):\n{ANSI.sub(' ', out)[-3000:]}\n--- stderr:\n{err}")
        return 1
    if full_pass and not PASS_DONE.search(out.encode()):
        print(f"memtest_test ({engine}, {medium}): the first pass did not end within {elapsed:.0f} s\n"
              f"--- console (end):\n{ANSI.sub(' ', out)[-2000:]}")
        return 1
    what = "the whole first pass" if full_pass else "tests #0..#10 of the first pass"
    print(f"memtest_test ({engine}, {medium}): {what} with no errors in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
