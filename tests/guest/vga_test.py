#!/usr/bin/python3
"""The std VGA (--vga std) against QEMU's -vga std, with Debian's SeaBIOS and its VGA BIOS
(vgabios-stdvga.bin in the VGA's PCI ROM BAR) on both.

  vga_test.py text ENGINE [--record]   ENGINE: vmm86 | vmm86-interp | qemu
  vga_test.py graphics ENGINE          modes 13h, 12h, VBE 101h, 80x50 text against QEMU's screendumps
  vga_test.py vnc                      vmm86 with --display vnc on loopback, a real RFB client
  vga_test.py linux ENGINE [--record]  Debian's kernel on the VGA text console (vgacon)

text: a floppy boot sector (tests/guest/vga/textmode.asm, built with nasm) prints through
int 10h and writes coloured cells straight into B800:0000, then says '!' on port 0xE9. The
screen's text (vmm86: --screen-text; QEMU: its monitor's pmemsave of B8000) must equal
QEMU's, recorded in vga_expected.txt (`vga_test.py text qemu --record`); the banner line is
"SeaBIOS (version ...)". When QEMU is installed, vmm86's --screenshot must also equal
QEMU's screendump pixel for pixel (720x400: the font from plane 2, the attribute palette
and the DAC), except the cursor's cell (QEMU blinks it).

graphics: tests/guest/vga/graphics.asm sets mode 13h (chain-4, a DAC entry changed), 12h
(planar: write mode 2 bars and the BIOS's own pixel writes), VESA mode 101h (640x480x256,
two banks of the window) or 80x50 text (the 8x8 font loaded into plane 2) and draws; vmm86's --screenshot must equal QEMU's screendump pixel
for pixel (QEMU's doubled 640x400 for mode 13h taken at every second pixel and row).

vnc: the same boot with --display vnc=127.0.0.1:N; a minimal RFB 3.8 client (below, from
the published protocol, RFC 6143) connects, asks for the whole framebuffer in raw
encoding and must get QEMU's picture (the screendump above, when QEMU is installed) or,
without QEMU, a 720x400 frame whose first text row has lit pixels. Then it types
"Hi vmm86!" and Return as key events; the boot sector echoes them through int 16h (the
BIOS's keyboard driver on the i8042, IRQ 1, set 2 translated to set 1), and the screen
must be QEMU's after the same keys through its monitor's sendkey (vga_expected.txt,
[keys]). Exit 0 when all match.

linux: the default guest from a disk (SeaBIOS -> SYSLINUX -> Linux) with console=tty0 as
well as ttyS0: the kernel's VGA console (vgacon, on the mode SeaVGABIOS set) shows its
messages after the BIOS's and SYSLINUX's lines, and the script writes `uname -sr` and
`ls /` to /dev/tty0, and starts a shell on tty1. The test types a command into it (vmm86:
key events from the RFB client through --display vnc; QEMU: sendkey), which prints 42 on
the screen. The screen, printk times cut and the lines in LINUX_MASKS dropped, must be
QEMU's (vga_expected.txt, [linux]): Linux's atkbd reads the i8042, vgacon draws.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import guestrun  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
EXPECTED = HERE / "vga_expected.txt"
BOOT_ASM = HERE / "vga" / "textmode.asm"
GRAPHICS_ASM = HERE / "vga" / "graphics.asm"
GRAPHICS_MODES = {"13h": "MODE=0x13", "12h": "MODE=0x12", "vbe": "MODE=0x100", "80x50": "MODE=50"}
# The text cell the cursor blinks in (row, column, cell height), left out of a comparison.
CURSOR_CELLS = {"80x50": (49, 0, 8)}
TIMEOUT_S = 60
FLOPPY_BYTES = 1474560
CELL_W, CELL_H = 9, 16


def build_floppy(work: pathlib.Path, source: pathlib.Path = BOOT_ASM, defines: tuple[str, ...] = ()) -> pathlib.Path:
    sector = work / "boot.bin"
    subprocess.run(["nasm", "-f", "bin", f"-I{source.parent}/", *[f"-D{d}" for d in defines], str(source), "-o",
                    str(sector)], check=True)
    image = work / "floppy.img"
    data = sector.read_bytes()
    image.write_bytes(data + bytes(FLOPPY_BYTES - len(data)))
    return image


def text_of_cells(raw: bytes, rows: int = 25, cols: int = 80) -> list[str]:
    """Text-mode memory (character, attribute pairs) as vmm86's --screen-text writes it."""
    out = []
    for r in range(rows):
        chars = raw[r * cols * 2:(r + 1) * cols * 2:2]
        out.append("".join(" " if c == 0 else chr(c) if 0x20 <= c < 0x7F else "." for c in chars).rstrip())
    return out


def wait_for_file(path: pathlib.Path, marker: bytes, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_bytes():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the machine ended early (status {proc.returncode})")
        time.sleep(0.1)
    raise RuntimeError(f"no {marker!r} on the debug console within {timeout_s} s")


def read_ppm(path: pathlib.Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    fields = []
    pos = 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", "not an 8-bit PPM"
    return int(fields[1]), int(fields[2]), data[pos + 1:]


def read_png(path: pathlib.Path) -> tuple[int, int, bytes]:
    """8-bit RGB PNGs with filter 0 on every row (what vmm86 writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2), "not 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * 3
    rows = [raw[y * stride:(y + 1) * stride] for y in range(height)]
    assert all(r[0] == 0 for r in rows), "a filtered row"
    return width, height, b"".join(r[1:] for r in rows)


def downscaled(picture: tuple[int, int, bytes], fx: int, fy: int) -> tuple[int, int, bytes]:
    """Every fx-th pixel of every fy-th row: QEMU draws mode 13h's 320x200 doubled (640x400)."""
    width, height, pixels = picture
    out = bytearray()
    for y in range(0, height, fy):
        for x in range(0, width, fx):
            at = (y * width + x) * 3
            out += pixels[at:at + 3]
    return width // fx, height // fy, bytes(out)


def picture_diff(want: tuple[int, int, bytes], got: tuple[int, int, bytes], skip_cell: tuple[int, int],
                 cell_h: int = CELL_H) -> str:
    """'' when equal outside the text cell `skip_cell` (row, column); else what differs."""
    (ww, wh, wp), (gw, gh, gp) = want, got
    if (ww, wh) != (gw, gh):
        return f"size {gw}x{gh}, QEMU's is {ww}x{wh}"
    bad = 0
    first = None
    for y in range(wh):
        for x in range(ww):
            if (y // cell_h, x // CELL_W) == skip_cell:
                continue
            i = (y * ww + x) * 3
            if wp[i:i + 3] != gp[i:i + 3]:
                bad += 1
                first = first or (x, y, wp[i:i + 3].hex(), gp[i:i + 3].hex())
    return f"{bad} pixels differ, first at {first[:2]}: QEMU {first[2]}, vmm86 {first[3]}" if bad else ""


# What the key test types: QEMU's sendkey names, and the same keys as X11 keysyms for RFB.
QEMU_KEYS = ["shift-h", "i", "spc", "v", "m", "m", "8", "6", "shift-1", "ret"]
SHIFT_L, RETURN = 0xFFE1, 0xFF0D
RFB_KEYS = [(SHIFT_L, "H"), (None, "i"), (None, " "), (None, "v"), (None, "m"), (None, "m"), (None, "8"),
            (None, "6"), (SHIFT_L, "!"), (None, RETURN)]


class Monitor:
    """QEMU's human monitor on a Unix socket."""

    def __init__(self, path: pathlib.Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))

    def command(self, text: str, settle_s: float = 0.3) -> None:
        self.sock.sendall(text.encode() + b"\n")
        time.sleep(settle_s)


def run_qemu(floppy: pathlib.Path, work: pathlib.Path, type_keys: bool = False) -> dict:
    """QEMU's screen when the boot sector has drawn ('drawn': text and screendump) and, with
    `type_keys`, after the keys were typed through its monitor ('typed': text)."""
    console = work / "qemu-e9.txt"
    monitor = work / "qemu-monitor.sock"
    cmd = ["qemu-system-i386", "-accel", "tcg", "-nodefaults", "-vga", "std", "-display", "none", "-m", "256",
           "-fda", str(floppy), "-boot", "a", "-debugcon", f"file:{console}",
           "-monitor", f"unix:{monitor},server,nowait"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = {}
    try:
        wait_for_file(console, b"!", proc, TIMEOUT_S)
        mon = Monitor(monitor)
        cells, shot = work / "qemu-b8000.bin", work / "qemu.ppm"
        mon.command(f'pmemsave 0xb8000 4000 "{cells}"', 0.5)
        mon.command(f'screendump "{shot}"', 0.5)
        result["drawn"] = (text_of_cells(cells.read_bytes()), read_ppm(shot))
        if type_keys:
            for key in QEMU_KEYS:
                mon.command(f"sendkey {key}", 0.1)
            wait_for_file(console, b"#", proc, TIMEOUT_S)
            mon.command(f'pmemsave 0xb8000 4000 "{cells}"', 0.5)
            result["typed"] = text_of_cells(cells.read_bytes())
        mon.command("quit")
        proc.wait(timeout=10)
        return result
    finally:
        if proc.poll() is None:
            proc.kill()


def vmm86_command(engine: str, floppy: pathlib.Path, work: pathlib.Path, extra: list[str]) -> list[str]:
    cmd = [guestrun.vmm86_binary(engine), "run", "--vga", "std", "--fda", str(floppy), "--boot", "a",
           "--debugcon", str(work / "vmm86-e9.txt"), "--screen-text", str(work / "screen.txt"),
           "--screenshot", str(work / "screen.png")] + extra
    if engine.startswith("vmm86-interp"):
        cmd += ["--engine", "interp"]
    return cmd


def stop(proc: subprocess.Popen) -> None:
    """Ends vmm86 as a user would (SIGTERM): it writes --screen-text and --screenshot first."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError("vmm86 did not end within 20 s of SIGTERM")


def run_vmm86(engine: str, floppy: pathlib.Path, work: pathlib.Path, extra: list[str] | None = None,
              while_running=None) -> tuple[list[str], tuple[int, int, bytes], object]:
    proc = subprocess.Popen(vmm86_command(engine, floppy, work, extra or []), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_file(work / "vmm86-e9.txt", b"!", proc, TIMEOUT_S)
        extra_result = while_running() if while_running else None
    finally:
        if proc.poll() is None:
            stop(proc)
    return (work / "screen.txt").read_text().splitlines(), read_png(work / "screen.png"), extra_result


LINUX_SCRIPT = """
echo "vmm86 VGA console: $(uname -sr)" > /dev/tty0
ls / > /dev/tty0
sh </dev/tty1 >/dev/tty1 2>&1 &
sleep 1
echo @@vga-ready
sleep 120
"""
# Typed into the shell on tty1 (VNC key events on vmm86, sendkey on QEMU): its answer is
# read back from the screen, and the marker on COM1 says the command ran.
LINUX_COMMAND = "echo $((6*7)); echo @@typed >/dev/ttyS0"
SHIFTED = {"$": "4", "(": "9", ")": "0", "*": "8", "@": "2", ">": "."}
QEMU_KEY_NAMES = {" ": "spc", ";": "semicolon", "/": "slash", ".": "dot", "\n": "ret"}


def shifted(c: str) -> bool:
    return c in SHIFTED or c.isupper()


def qemu_sendkeys(text: str) -> list[str]:
    keys = []
    for c in text:
        base = SHIFTED.get(c, c.lower())
        name = QEMU_KEY_NAMES.get(base, base)
        keys.append(f"shift-{name}" if shifted(c) else name)
    return keys


def rfb_type(sock: socket.socket, text: str) -> None:
    for c in text:
        keysym = RETURN if c == "\n" else ord(c)
        if shifted(c):
            sock.sendall(struct.pack(">BBxxI", 4, 1, SHIFT_L))
        sock.sendall(struct.pack(">BBxxI", 4, 1, keysym) + struct.pack(">BBxxI", 4, 0, keysym))
        if shifted(c):
            sock.sendall(struct.pack(">BBxxI", 4, 0, SHIFT_L))
# Kernel lines that legitimately differ between the machines, dropped on both sides.
LINUX_MASKS = {
    "Failed to access perfctr msr": "vmm86's CPU model has no performance counters behind CPUID's "
                                    "architectural perfmon leaf yet (QEMU's TCG answers the MSR)",
}
PRINTK_TIME = re.compile(r"^\[ *\d+\.\d+\] ")


def normalise_linux(rows: list[str]) -> list[str]:
    return trimmed([PRINTK_TIME.sub("", r) for r in rows if not any(m in r for m in LINUX_MASKS)])


def read_until(proc: subprocess.Popen, marker: bytes, out: bytes) -> bytes:
    """The machine's console (COM1) until it shows `marker`."""
    deadline = time.monotonic() + 4 * TIMEOUT_S
    while marker not in out:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {marker!r} on the console")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise RuntimeError(f"the machine ended before {marker!r}:\n" + out.decode(errors="replace")[-2000:])
        out += chunk
    return out


def linux_screen(engine: str, work: pathlib.Path) -> list[str]:
    """Boots the disk guest with console=tty0 on `engine`, types LINUX_COMMAND into the shell
    on tty1; the text screen once it ran."""
    cmd = guestrun.script_command(engine, LINUX_SCRIPT, work, medium="disk",
                                  append_extra="console=tty0 console=ttyS0")
    display = 40 + os.getpid() % 50
    if engine == "qemu":
        cmd[cmd.index("-monitor") + 1] = f"unix:{work / 'monitor.sock'},server,nowait"
        cmd += ["-vga", "std"]
    else:
        cmd += ["--vga", "std", "--screen-text", str(work / "screen.txt"), "--display", f"vnc=127.0.0.1:{display}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out = read_until(proc, b"@@vga-ready", b"")
        if engine == "qemu":
            mon = Monitor(work / "monitor.sock")
            for key in qemu_sendkeys(LINUX_COMMAND + "\n"):
                mon.command(f"sendkey {key}", 0.05)
            read_until(proc, b"@@typed", out)
            time.sleep(0.5)
            cells = work / "qemu-b8000.bin"
            mon.command(f'pmemsave 0xb8000 4000 "{cells}"', 0.5)
            mon.command("quit")
            return text_of_cells(cells.read_bytes())
        sock = socket.create_connection(("127.0.0.1", 5900 + display), timeout=20)
        rfb_framebuffer(sock)
        rfb_type(sock, LINUX_COMMAND + "\n")
        read_until(proc, b"@@typed", out)
        time.sleep(0.5)
        sock.close()
        stop(proc)
        return (work / "screen.txt").read_text().splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()


def check_linux(engine: str, record: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="vmm86-vga-linux-") as tmp:
        got = normalise_linux(linux_screen(engine, pathlib.Path(tmp)))
    if record:
        before = EXPECTED.read_text().split("\n[linux]\n")[0].rstrip("\n")
        EXPECTED.write_text(before + "\n[linux]\n" + "\n".join(got) + "\n")
        print(f"recorded [linux] in {EXPECTED}")
        return 0
    want = expected_text("linux")
    diff = guestrun.console_diff(want, got, 10)
    if diff:
        print("FAIL: the VGA console differs from QEMU's:\n" + "\n".join(diff))
        return 1
    print(f"PASS: {engine}'s VGA console shows what QEMU's does ({len(want)} lines, ending {want[-3:]!r})")
    return 0


def trimmed(rows: list[str]) -> list[str]:
    """Rows without the empty ones at the bottom (the recording does not keep them)."""
    rows = list(rows)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def expected_text(section: str = "textmode") -> list[str]:
    return trimmed(guestrun.read_sections(EXPECTED)[section])


def check_graphics(engine: str) -> int:
    """Each graphics mode's picture on `engine` against QEMU's screendump."""
    if not shutil.which("qemu-system-i386"):
        print("SKIP: the graphics check compares with QEMU, which is not installed")
        return 77
    failed = 0
    for name, define in GRAPHICS_MODES.items():
        with tempfile.TemporaryDirectory(prefix="vmm86-vga-gfx-") as tmp:
            work = pathlib.Path(tmp)
            floppy = build_floppy(work, GRAPHICS_ASM, (define,))
            _, picture, _ = run_vmm86(engine, floppy, work)
            qemu = run_qemu(floppy, work)["drawn"][1]
            if qemu[:2] != picture[:2] and picture[0] and qemu[0] % picture[0] == 0 and qemu[1] % picture[1] == 0:
                qemu = downscaled(qemu, qemu[0] // picture[0], qemu[1] // picture[1])
            row, column, cell_h = CURSOR_CELLS.get(name, (-1, -1, CELL_H))
            problem = picture_diff(qemu, picture, (row, column), cell_h)
            if problem:
                print(f"FAIL: mode {name}: the screenshot differs from QEMU's screendump: {problem}")
                failed += 1
            else:
                print(f"PASS: mode {name}: the screenshot is QEMU's screendump ({picture[0]}x{picture[1]})")
    return 1 if failed else 0


def check_text(engine: str, record: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="vmm86-vga-") as tmp:
        work = pathlib.Path(tmp)
        floppy = build_floppy(work)
        if engine == "qemu":
            qemu = run_qemu(floppy, work, type_keys=record)
            if record:
                linux = guestrun.read_sections(EXPECTED).get("linux", []) if EXPECTED.exists() else []
                EXPECTED.write_text("# QEMU 7.2's -vga std screens (vga_test.py text|linux qemu --record): drawn,\n"
                                    "# after typing " + " ".join(QEMU_KEYS) + " (sendkey), and the Linux console\n"
                                    "[textmode]\n" + "\n".join(qemu["drawn"][0]) + "\n[keys]\n" +
                                    "\n".join(qemu["typed"]) + "\n[linux]\n" + "\n".join(linux) + "\n")
                print(f"recorded {EXPECTED}")
                return 0
            got = qemu["drawn"][0]
        else:
            got, picture, _ = run_vmm86(engine, floppy, work)
        want = expected_text()
        # The recording keeps trailing empty rows; --screen-text writes every row too.
        diff = guestrun.console_diff(want, trimmed(got), 10)
        if diff:
            print("FAIL: the text-mode screen differs from QEMU's:\n" + "\n".join(diff))
            return 1
        print(f"PASS: {engine}'s text screen is QEMU's ({want[0]!r} ...)")
        if engine != "qemu" and shutil.which("qemu-system-i386"):
            qemu_picture = run_qemu(floppy, work)["drawn"][1]
            problem = picture_diff(qemu_picture, picture, (20, 10))
            if problem:
                print(f"FAIL: the screenshot differs from QEMU's screendump: {problem}")
                return 1
            print("PASS: the screenshot is QEMU's screendump, pixel for pixel (cursor cell aside)")
        return 0


# ---- A minimal RFB 3.8 client (RFC 6143) --------------------------------------------------

def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("the VNC server closed the connection")
        data += chunk
    return data


def rfb_framebuffer(sock: socket.socket) -> tuple[int, int, bytes]:
    """The handshake, then the whole screen in raw encoding as 32-bit pixels, as RGB bytes."""
    version = recv_exact(sock, 12)
    if not version.startswith(b"RFB 003."):
        raise RuntimeError(f"not an RFB server: {version!r}")
    sock.sendall(b"RFB 003.008\n")
    count = recv_exact(sock, 1)[0]
    types = recv_exact(sock, count)
    if 1 not in types:  # None
        raise RuntimeError(f"no 'None' security type offered: {list(types)}")
    sock.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(sock, 4))[0] != 0:
        raise RuntimeError("security handshake failed")
    sock.sendall(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", recv_exact(sock, 4))
    recv_exact(sock, 16)  # the server's pixel format
    recv_exact(sock, struct.unpack(">I", recv_exact(sock, 4))[0])  # name
    # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, red at 16, green 8, blue 0.
    sock.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    sock.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw only
    sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest, full
    pixels = bytearray(width * height * 3)
    while True:
        kind = recv_exact(sock, 1)[0]
        if kind == 0:
            break
        if kind == 2:  # Bell
            continue
        raise RuntimeError(f"unexpected server message {kind}")
    recv_exact(sock, 1)
    (rects,) = struct.unpack(">H", recv_exact(sock, 2))
    for _ in range(rects):
        x, y, w, h, encoding = struct.unpack(">HHHHi", recv_exact(sock, 12))
        if encoding != 0:
            raise RuntimeError(f"encoding {encoding}, raw was asked for")
        data = recv_exact(sock, w * h * 4)
        for row in range(h):
            for col in range(w):
                b, g, r = data[(row * w + col) * 4:(row * w + col) * 4 + 3]
                at = ((y + row) * width + x + col) * 3
                pixels[at:at + 3] = bytes((r, g, b))
    return width, height, bytes(pixels)


def rfb_session(port: int, console: pathlib.Path) -> tuple[int, int, bytes]:
    """The whole screen once drawn, then the test's keys typed as an RFB client types them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    frame = rfb_framebuffer(sock)
    for modifier, key in RFB_KEYS:
        keysym = ord(key) if isinstance(key, str) else key
        if modifier:
            sock.sendall(struct.pack(">BBxxI", 4, 1, modifier))
        sock.sendall(struct.pack(">BBxxI", 4, 1, keysym) + struct.pack(">BBxxI", 4, 0, keysym))
        if modifier:
            sock.sendall(struct.pack(">BBxxI", 4, 0, modifier))
    deadline = time.monotonic() + TIMEOUT_S
    while b"#" not in console.read_bytes():
        if time.monotonic() > deadline:
            raise RuntimeError("the typed Return never reached the guest")
        time.sleep(0.1)
    sock.close()
    return frame


def check_vnc() -> int:
    display = 40 + os.getpid() % 50
    with tempfile.TemporaryDirectory(prefix="vmm86-vnc-") as tmp:
        work = pathlib.Path(tmp)
        floppy = build_floppy(work)
        text, _, frame = run_vmm86("vmm86", floppy, work, ["--display", f"vnc=127.0.0.1:{display}"],
                                   lambda: rfb_session(5900 + display, work / "vmm86-e9.txt"))
        width, height, pixels = frame
        if shutil.which("qemu-system-i386"):
            qemu_picture = run_qemu(floppy, work)["drawn"][1]
            problem = picture_diff(qemu_picture, frame, (20, 10))
            if problem:
                print(f"FAIL: the VNC framebuffer differs from QEMU's screendump: {problem}")
                return 1
            print(f"PASS: the VNC client got QEMU's picture ({width}x{height})")
        elif (width, height) != (720, 400) or not any(pixels[:width * CELL_H * 3]):
            print(f"FAIL: VNC frame {width}x{height} without the banner row")
            return 1
        diff = guestrun.console_diff(expected_text("keys"), trimmed(text), 10)
        if diff:
            print("FAIL: after typing through VNC the screen differs from QEMU's after sendkey:\n" + "\n".join(diff))
            return 1
        print("PASS: keys typed in the VNC client reached the guest's BIOS as on QEMU")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["text", "graphics", "vnc", "linux"])
    parser.add_argument("engine", nargs="?", default="vmm86")
    parser.add_argument("--record", action="store_true", help="text qemu: write vga_expected.txt")
    args = parser.parse_args()
    if shutil.which("nasm") is None:
        print("SKIP: nasm is missing (scripts/setup.sh installs it)")
        return 77
    try:
        if args.check == "linux":
            return check_linux(args.engine, args.record)
        if args.check == "graphics":
            return check_graphics(args.engine)
        return check_text(args.engine, args.record) if args.check == "text" else check_vnc()
    except RuntimeError as e:
        print(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
