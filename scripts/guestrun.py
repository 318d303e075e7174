"""Run a shell script inside the default guest on one engine and capture its output.

Shared by the guest integration tests (tests/guest/) and the anchor benchmark (bench/).
Engines:
  qemu    qemu-system-i386 -accel tcg with the same kernel and initramfs
  vmm86   build/vmm86 run (the binary translator unless told otherwise)
  native  the host's x86-64 busybox running the same script (our physical limit)

The guest side is guest/init-scripted (or the init of another image, see Image and
userland_image()): the script travels in a small cpio appended to the initramfs, output is framed by markers, and `reboot -f` ends the machine. Lines "@@T0" and
"@@T1" printed by the script are timestamped on the host as they arrive, so timings are
measured by the host clock, not by the guest's.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import os
import pathlib
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Callable

import boot_media  # noqa: E402  (scripts/, beside this module)

REPO = pathlib.Path(__file__).resolve().parent.parent
BEGIN = "=== vmm86-script-begin ==="
END_PREFIX = "=== vmm86-script-end status="
MARK_START = "@@T0"
MARK_STOP = "@@T1"


def guest_dir() -> pathlib.Path:
    env = os.environ.get("VMM86_GUEST_DIR")
    if env:
        return pathlib.Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "vmm86" / "guest"


def build_guest() -> pathlib.Path:
    """Builds (or finds up to date) the default guest; returns its directory."""
    out = subprocess.run([str(REPO / "guest" / "build-image.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    return pathlib.Path(out[-1])


@dataclasses.dataclass
class Image:
    """What a machine boots: a kernel, initramfs archives concatenated in order, its init."""
    kernel: pathlib.Path
    initrds: list[pathlib.Path]
    rdinit: str = "/init-scripted"


def default_image() -> Image:
    gdir = guest_dir()
    return Image(gdir / "vmlinuz", [gdir / "initrd.cpio.gz"])


def userland_image(with_testsuite: bool = False, build: bool = True, small: bool = False) -> Image:
    """The real userland guest of guest/build-userland.sh (built first unless build=False),
    optionally with Python's test suite appended, or its small variant (bash, a few
    coreutils and the C programs) for the interpreter."""
    if build:
        args = [str(REPO / "guest" / "build-userland.sh")] + (["--with-testsuite"] if with_testsuite else [])
        out = pathlib.Path(subprocess.run(args, check=True, stdout=subprocess.PIPE,
                                          text=True).stdout.strip().splitlines()[-1])
    else:
        out = guest_dir() / "userland"
    initrds = [out / ("initrd-small.cpio" if small else "initrd.cpio.gz")] + ([out / "testsuite.cpio.gz"] if with_testsuite else [])
    return Image(guest_dir() / "vmlinuz", initrds, "/init-userland")


def _cpio_newc(files: dict[str, bytes]) -> bytes:
    """A minimal newc cpio archive holding regular files (mode 0755)."""
    buf = io.BytesIO()
    ino = 1000

    def entry(name: str, data: bytes, mode: int) -> None:
        nonlocal ino
        ino += 1
        namez = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(namez), 0]
        buf.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        buf.write(namez)
        buf.write(b"\0" * ((-(110 + len(namez))) % 4))
        buf.write(data)
        buf.write(b"\0" * ((-len(data)) % 4))

    for name, data in files.items():
        entry(name, data, 0o100755)
    entry("TRAILER!!!", b"", 0)
    return buf.getvalue()


@dataclasses.dataclass
class GuestRun:
    engine: str
    ok: bool                 # the script ran to its end marker with status 0
    status: int | None       # the script's exit status
    output: str              # the script's output (between the markers)
    console: str             # everything the machine printed
    total_s: float           # wall time of the whole run
    timed_s: float | None    # host time between @@T0 and @@T1, if printed
    error: str = ""
    peak_rss_kib: int | None = None  # the engine process's peak resident memory (natively: the script's)


def _initrd_with_script(image: Image, script: str, workdir: pathlib.Path,
                        extra_files: dict[str, bytes] | None = None) -> pathlib.Path:
    extra = gzip.compress(_cpio_newc({"script.sh": script.encode(), **(extra_files or {})}), compresslevel=1)
    path = workdir / "initrd-script.cpio.gz"
    with open(path, "wb") as f:  # the kernel unpacks concatenated archives in order
        for part in image.initrds:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
        f.write(extra)
    return path


def _boot_args(engine: str, image: Image, initrd: pathlib.Path, append: str, medium: str,
               workdir: pathlib.Path) -> list[str]:
    """How the machine gets the kernel: directly (-kernel), or through the BIOS from a disk
    (MBR + SYSLINUX) or a CD (El Torito + ISOLINUX) made of the same kernel and initrd, or
    (disk-root) from a disk whose second partition is the guest's root file system."""
    qemu = engine == "qemu"
    if medium == "kernel":
        return (["-kernel", str(image.kernel), "-initrd", str(initrd), "-append", append] if qemu else
                ["--kernel", str(image.kernel), "--initrd", str(initrd), "--append", append])
    if medium == "disk":
        return _disk_args(engine, boot_media.disk_image(image.kernel, initrd, append, workdir / "disk.img"))
    if medium == "disk-root":
        # The guest's files (and the script) as an ext4 root on /dev/sda2; a small initramfs
        # loads the disk modules, mounts it and starts the image's init there.
        disk_append = append.replace(f"rdinit={image.rdinit}", f"rdinit=/init root_init={image.rdinit}")
        return _disk_args(engine, boot_media.disk_image(image.kernel, guest_dir() / "initrd-disk.cpio.gz",
                                                        disk_append, workdir / "disk.img", root_dir=workdir / "root"))
    if medium == "cdrom":
        iso = boot_media.iso_image(image.kernel, initrd, append, workdir / "cd.iso")
        return ["-cdrom", str(iso), "-boot", "d"] if qemu else ["--cdrom", str(iso), "--boot", "d"]
    raise ValueError(f"unknown boot medium {medium}")


def _disk_args(engine: str, disk: pathlib.Path) -> list[str]:
    """A raw disk image as the primary master IDE disk."""
    return ["-drive", f"file={disk},format=raw,if=ide"] if engine == "qemu" else ["--hda", str(disk)]


def _floppy_args(engine: str, floppy: pathlib.Path) -> list[str]:
    """A raw floppy image as drive A:."""
    return ["-drive", f"file={floppy},format=raw,if=floppy"] if engine == "qemu" else ["--fda", str(floppy)]


def _root_dir(image: Image, script: str, root: pathlib.Path) -> None:
    """The image's initramfs archives unpacked into `root`, with the script beside its init."""
    root.mkdir()
    for part in image.initrds:
        data = part.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=data, cwd=root, check=True)
    (root / "script.sh").write_text(script)


def _machine_command(engine: str, image: Image, initrd: pathlib.Path, mem_mb: int,
                     append_extra: str, medium: str = "kernel", workdir: pathlib.Path | None = None,
                     floppy: pathlib.Path | None = None, machine_args: list[str] | None = None, cpus: int = 1) -> list[str]:
    append = f"console=ttyS0 rdinit={image.rdinit} quiet nokaslr {append_extra}".strip()
    boot = _boot_args(engine, image, initrd, append, medium, workdir or initrd.parent)
    boot += (_floppy_args(engine, floppy) if floppy else []) + (machine_args or [])
    if cpus > 1:
        boot += ["-smp", str(cpus)] if engine == "qemu" else ["--smp", str(cpus)]
    return _engine_command(engine, boot, mem_mb)


@functools.cache
def _knows_no_reboot(binary: str) -> bool:
    """Builds older than --no-reboot (bench/anchor.py runs them) ended at every reset."""
    usage = subprocess.run([binary, "run", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return "--no-reboot" in usage.stdout


def _engine_command(engine: str, boot: list[str], mem_mb: int, reboot: bool = False) -> list[str]:
    """The command line that starts `engine` with the boot arguments `boot`. A guest reset
    ends the run (the scripted guests end with `reboot -f`) unless `reboot`."""
    if engine == "qemu":
        return ["qemu-system-i386", "-accel", "tcg", "-m", str(mem_mb), *boot, "-display", "none", "-serial",
                "stdio", "-monitor", "none", "-nodefaults"] + ([] if reboot else ["-no-reboot"])
    if engine.startswith("vmm86"):
        cmd = [vmm86_binary(engine), "run", *boot, "--mem", f"{mem_mb}M"]
        if not reboot and _knows_no_reboot(cmd[0]):
            cmd.append("--no-reboot")
        if engine.split("@")[0] == "vmm86-interp":
            cmd += ["--engine", "interp"]
        # e.g. VMM86_EXTRA_ARGS="--verify --verify-period 1" (a self-checking run)
        cmd += os.environ.get("VMM86_EXTRA_ARGS", "").split()
        return cmd
    raise ValueError(f"unknown engine {engine}")


def _native_userland_command(gdir: pathlib.Path, script: str, workdir: pathlib.Path) -> tuple[list[str], dict]:
    """The userland image's script on the host's own x86-64 tools (bash, coreutils, perl,
    python3, ...) and the benchmark programs built for the host (native-bench/)."""
    script = script.replace("/opt/bench/", f"{gdir / 'userland' / 'native-bench'}/").replace("/tmp/", f"{workdir}/")
    (workdir / "script.sh").write_text(script)
    wrapper = f'echo "{BEGIN}"; bash {workdir}/script.sh; s=$?; echo "{END_PREFIX}$s ==="'
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LC_ALL": "C"}
    return ["/bin/bash", "-c", wrapper], env


def _native_command(gdir: pathlib.Path, script: str, workdir: pathlib.Path) -> tuple[list[str], dict]:
    busybox = gdir / "busybox-native"
    bindir = workdir / "bin"
    bindir.mkdir()
    applets = subprocess.run([str(busybox), "--list"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.split()
    for applet in applets:
        (bindir / applet).symlink_to(busybox)
    (workdir / "script.sh").write_text(script)
    wrapper = (f'echo "{BEGIN}"; sh {workdir}/script.sh; s=$?; echo "{END_PREFIX}$s ==="')
    env = {"PATH": str(bindir), "HOME": str(workdir), "TMPDIR": str(workdir), "LC_ALL": "C"}
    return [str(bindir / "sh"), "-c", wrapper], env


def run(engine: str, script: str, timeout_s: float = 600, mem_mb: int = 256,
        append_extra: str = "", image: Image | None = None, medium: str = "kernel",
        keep_disk: pathlib.Path | None = None, floppy: pathlib.Path | None = None,
        extra_files: dict[str, bytes] | None = None, machine_args: list[str] | None = None,
        on_line: Callable[[str], None] | None = None, cpus: int = 1) -> GuestRun:
    """Runs `script` on `engine` and returns what happened; never raises on guest failure.
    `image` defaults to the default guest; natively, the default guest's scripts run on the
    host's busybox and the userland image's on the host's own tools.
    `keep_disk`: where to keep the disk image of a disk medium after the run (boot_disk
    boots it again). `floppy`: a raw floppy image in drive A:. `extra_files`: more files
    for the initramfs beside the script (name: contents). `cpus`: vCPUs (-smp / --smp)."""
    gdir = guest_dir()
    with tempfile.TemporaryDirectory(prefix="vmm86-run-") as tmp:
        workdir = pathlib.Path(tmp)
        if engine == "native" and image is not None and image.rdinit == "/init-userland":
            cmd, env = _native_userland_command(gdir, script, workdir)
        elif engine == "native":
            # The guest's /tmp and /bin are its own; the native run uses its work directory.
            native_script = script.replace("/tmp/", f"{workdir}/").replace("/bin/", f"{workdir}/bin/")
            cmd, env = _native_command(gdir, native_script, workdir)
        else:
            image = image or default_image()
            initrd = _initrd_with_script(image, script, workdir, extra_files)
            if medium == "disk-root":
                _root_dir(image, script, workdir / "root")
            cmd = _machine_command(engine, image, initrd, mem_mb, append_extra, medium, workdir, floppy,
                                   machine_args, cpus)
            env = None
        result = _drive(engine, cmd, env, timeout_s, on_line)
        if keep_disk is not None and (workdir / "disk.img").exists():
            shutil.move(workdir / "disk.img", keep_disk)
        return result


def script_command(engine: str, script: str, workdir: pathlib.Path, medium: str = "kernel",
                   mem_mb: int = 256, append_extra: str = "") -> list[str]:
    """The command that boots the default guest on `engine` with `script` as its job, its
    files in `workdir`; for tests that watch the machine end by itself (`poweroff -f`) rather
    than through the scripted init's end marker and `reboot -f`."""
    image = default_image()
    initrd = _initrd_with_script(image, script, workdir)
    return _machine_command(engine, image, initrd, mem_mb, append_extra, medium, workdir)


def boot_disk(engine: str, disk: pathlib.Path, timeout_s: float = 600, mem_mb: int = 256) -> GuestRun:
    """Boots an existing disk image (one kept by run(keep_disk=...)) as it is."""
    return _drive(engine, disk_command(engine, disk, mem_mb), None, timeout_s)


def disk_command(engine: str, disk: pathlib.Path, mem_mb: int = 256, reboot: bool = False) -> list[str]:
    """The command that boots `disk` through the BIOS on `engine`."""
    return _engine_command(engine, _disk_args(engine, disk), mem_mb, reboot)


def kernel_command(engine: str, kernel: pathlib.Path, append: str, mem_mb: int = 256) -> list[str]:
    """The command that starts `kernel` directly (QEMU's -kernel, vmm86's --kernel), no initrd."""
    boot = ["-kernel", str(kernel), "-append", append] if engine == "qemu" else ["--kernel", str(kernel),
                                                                                 "--append", append]
    return _engine_command(engine, boot, mem_mb)


def floppy_command(engine: str, floppy: pathlib.Path, mem_mb: int = 256) -> list[str]:
    """The command that boots the floppy image `floppy` (drive A:) through the BIOS on `engine`."""
    boot = ["-boot", "a"] if engine == "qemu" else ["--boot", "a"]
    return _engine_command(engine, _floppy_args(engine, floppy) + boot, mem_mb)


def run_console(cmd: list[str], timeout_s: float, until: bytes | None = None,
                cwd: pathlib.Path | None = None,
                until_re: re.Pattern[bytes] | None = None) -> tuple[bytes, int | None, str, float]:
    """Runs `cmd` and reads its console (stdout) until it shows `until` (or matches
    `until_re`), the machine closes
    it (it is exiting by itself) or `timeout_s` passes; a machine still running then is
    killed. Returns the console, the exit status (None when killed), the end of stderr and
    the seconds it took."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = b""
    ended = False
    deadline = start + timeout_s
    while (not (until and until in out) and not (until_re and until_re.search(out))
           and (remaining := deadline - time.monotonic()) > 0):
        if not sel.select(timeout=min(remaining, 0.5)):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            ended = True
            break
        out += chunk
    elapsed = time.monotonic() - start
    try:
        status = proc.wait(timeout=10) if ended else proc.poll()
    except subprocess.TimeoutExpired:
        status = None
    if status is None:
        proc.kill()
    err = proc.communicate()[1].decode("utf-8", "replace")[-2000:]
    return out, status, err, elapsed


def watch_console(cmd: list[str], until: bytes, timeout_s: float) -> tuple[str, str, float]:
    """Runs `cmd` until its console (stdout) shows `until` or `timeout_s` passes, then kills
    it: for guests that never end on their own (firmware menus, memtest86+). Returns the
    console, the end of stderr and the seconds it took."""
    out, _, err, elapsed = run_console(cmd, timeout_s, until)
    return out.decode("utf-8", "replace"), err, elapsed


def console_diff(expected: list[str], got: list[str], most: int) -> list[str]:
    """Where a console differs from the recorded one: a line per differing line (at most
    `most`), then the counts if they differ. Empty when they are the same."""
    diff = [f"  line {i}: want {w!r}, got {g!r}" for i, (w, g) in enumerate(zip(expected, got)) if w != g][:most]
    if len(got) != len(expected):
        diff.append(f"  {len(expected)} lines wanted, {len(got)} got")
    return diff


def read_sections(path: pathlib.Path) -> dict[str, list[str]]:
    """A file of recorded answers: "[name]" starts a section; "#" lines before the first
    section are comments (inside one they are answers: consoles print such lines)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
    return sections


def _drive(engine: str, cmd: list[str], env: dict | None, timeout_s: float,
           on_line: Callable[[str], None] | None = None) -> GuestRun:
    start = time.monotonic()
    t0 = t1 = None
    console = []
    error = ""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        return GuestRun(engine, False, None, "", "", 0.0, None, f"cannot start {cmd[0]}: {e}")
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    deadline = start + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            error = f"timed out after {timeout_s:.0f} s"
            break
        if not sel.select(timeout=min(remaining, 1.0)):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        now = time.monotonic()
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if line == MARK_START and t0 is None:
                t0 = now
            elif line == MARK_STOP and t1 is None:
                t1 = now
            console.append(line)
            if on_line is not None:
                on_line(line)
    if pending:
        console.append(pending.decode("utf-8", "replace"))
    # wait4: this process's own peak RSS (RUSAGE_CHILDREN would be the largest of all so far).
    _, wait_status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    total = time.monotonic() - start
    text = "\n".join(console)
    status, output = None, ""
    if BEGIN in console:
        body = console[console.index(BEGIN) + 1:]
        for i, line in enumerate(body):
            if line.startswith(END_PREFIX):
                status = int(line[len(END_PREFIX):].split()[0])
                output = "\n".join(l for l in body[:i] if l not in (MARK_START, MARK_STOP))
                break
    if status is None and not error:
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit code {proc.returncode}")
        error = f"the script's end marker never appeared ({how})"
    timed = (t1 - t0) if (t0 is not None and t1 is not None) else None
    return GuestRun(engine, status == 0 and not error, status, output, text, total, timed, error, usage.ru_maxrss)


def vmm86_binary(engine: str) -> str:
    """The vmm86 binary an engine name runs: `vmm86@PATH` (or `vmm86-interp@PATH`) names one,
    e.g. an older build to compare with side by side; otherwise $VMM86_BINARY or build/vmm86."""
    if "@" in engine:
        return engine.split("@", 1)[1]
    return os.environ.get("VMM86_BINARY", str(REPO / "build" / "vmm86"))


def have(engine: str) -> bool:
    if engine == "qemu":
        return shutil.which("qemu-system-i386") is not None
    if engine == "native":
        return (guest_dir() / "busybox-native").exists()
    return os.access(vmm86_binary(engine), os.X_OK)
