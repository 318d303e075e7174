// The vmm86 command line: `vmm86 run --kernel FILE [options]` with QEMU-like meanings,
// parsed (CLI11) into a MachineConfig. Every option of `run` is described once, in
// VMM86_RUN_OPTIONS: the parser, --help, the docs test and the CLI tests all read it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "vmm/machine/config.h"

namespace vmm86 {

/// Whether an option has an effect yet (--help says so for the ones that do not).
enum class OptionState : uint8_t {
  Active,
  NotActiveYet,  ///< accepted and checked, but nothing uses it until an engine is wired in
};

// clang-format off
// The options of `vmm86 run`: X(id, flag, value name ("" for a switch), state, help).
#define VMM86_RUN_OPTIONS(X)                                                                   \
  X(Kernel, "--kernel", "FILE", Active,                                                         \
    "Linux bzImage or Multiboot kernel to boot directly (no BIOS)")                             \
  X(Bios, "--bios", "FILE", Active,                                                             \
    "firmware image to start at the reset vector (default without --kernel: "                   \
    "/usr/share/seabios/bios.bin, Debian's SeaBIOS)")                                           \
  X(Initrd, "--initrd", "FILE", Active,                                                         \
    "initial ramdisk (initramfs) for a Linux kernel; for a Multiboot kernel its modules, "      \
    "\"FILE ARGS,FILE ARGS\" as QEMU takes them")                                               \
  X(Append, "--append", "STRING", Active,                                                       \
    "kernel command line (default: empty; use console=ttyS0 to see the kernel)")                \
  X(Mem, "--mem", "SIZE", Active,                                                               \
    "guest RAM: 256M, 1G, 1024K or a plain number of MiB; default 256M, at most 3G, "           \
    "at least what the kernel and initrd need")                                                 \
  X(Engine, "--engine", "bt|interp", Active,                                                    \
    "execution engine: bt (binary translator, default) or interp (interpreter)")                \
  X(Stats, "--stats", "", Active, "print execution statistics when the guest stops")      \
  X(Verify, "--verify", "", Active,                                                             \
    "self-check (bt): run sampled translated blocks again in the interpreter, from the same "   \
    "state, and stop at the first difference with both states")                                \
  X(VerifyPeriod, "--verify-period", "N", Active,                                               \
    "with --verify, check one block entry in N (default 64; 1 checks every one)")              \
  X(PerfMap, "--perf-map", "", Active,                                                          \
    "write /tmp/perf-PID.map naming each translated block by its guest EIP, for perf report") \
  X(Trace, "--trace", "FILE", Active,                                                           \
    "write a trace to FILE: translated blocks (bt) or every instruction (interp), and every "   \
    "exception and interrupt, in the shape of QEMU's -d in_asm,int")                           \
  X(TraceLimit, "--trace-limit", "N", Active,                                                   \
    "stop tracing after N records (default 0: no limit)")                                       \
  X(Hda, "--hda", "FILE", Active, "disk image (raw or qcow2) as IDE primary master (QEMU's -hda)") \
  X(Hdb, "--hdb", "FILE", Active, "disk image as IDE primary slave")                            \
  X(Hdc, "--hdc", "FILE", Active, "disk image as IDE secondary master")                         \
  X(Hdd, "--hdd", "FILE", Active, "disk image as IDE secondary slave")                          \
  X(Cdrom, "--cdrom", "FILE", Active, "CD image (ISO 9660, read-only) as IDE secondary master") \
  X(Fda, "--fda", "FILE", Active,                                                               \
    "floppy image as drive A: (QEMU's -fda): 360 KB, 720 KB, 1.2 MB, 1.44 MB or 2.88 MB, "       \
    "the drive type from the size")                                                             \
  X(Fdb, "--fdb", "FILE", Active, "floppy image as drive B:")                                   \
  X(Drive, "--drive", "SPEC", Active,                                                           \
    "a drive, QEMU's way: file=FILE[,format=raw|qcow2][,if=ide|floppy][,media=disk|cdrom]"      \
    "[,readonly=on][,index=N] (0-3 on ide, 0-1 on floppy); repeatable; without format= a qcow2 " \
    "file is recognised by its header")                                                         \
  X(Boot, "--boot", "ORDER", Active,                                                            \
    "boot order for the BIOS: letters c (hard disk), d (CD-ROM), a (floppy); default cad")      \
  X(Snapshot, "--snapshot", "", Active,                                                         \
    "write to temporary overlays: the disk images stay unchanged (QEMU's -snapshot)")           \
  X(NoReboot, "--no-reboot", "", Active,                                                        \
    "end the run when the guest resets the machine (QEMU's -no-reboot); without it a BIOS-"     \
    "booted guest reboots, a --kernel guest ends")                                              \
  X(NoAcpi, "--no-acpi", "", Active,                                                           \
    "a PC without ACPI (QEMU's -machine acpi=off): no ACPI tables and no ACPI power "          \
    "management hardware, so the guest cannot power off through ACPI")                         \
  X(NoApic, "--no-apic", "", Active,                                                            \
    "a PC without the local APIC and the IOAPIC: the 8259 pair is the only interrupt "          \
    "controller and CPUID has no APIC flag (QEMU: -cpu ...,-apic)")                             \
  X(Vga, "--vga", "std|none", Active,                                                           \
    "display adapter: std (QEMU's -vga std: VGA with the Bochs VBE extension and its VGA BIOS) " \
    "or none (default: the serial console only)")                                               \
  X(Display, "--display", "none|vnc=[HOST]:N", Active,                                          \
    "where the VGA's screen goes: none (default) or a VNC server on HOST (default: every "      \
    "interface) port 5900+N; keys typed there reach the PS/2 keyboard")                         \
  X(Screenshot, "--screenshot", "FILE", Active, "write the VGA's screen to FILE (PNG) when the run ends") \
  X(ScreenText, "--screen-text", "FILE", Active,                                                \
    "write a VGA text-mode screen to FILE as text when the run ends (one line per row)")        \
  X(Smp, "--smp", "N", Active,                                                                  \
    "virtual CPUs, 1 to 8 (QEMU's -smp N): each runs on its own host thread; the guest starts "  \
    "the others with INIT/SIPI as on a PC (ACPI MADT and MP table list them)")                    \
  X(Debugcon, "--debugcon", "[IOBASE:]FILE", Active,                                            \
    "write the bytes the guest sends to I/O port IOBASE (default 0xE9, QEMU's isa-debugcon) "   \
    "to FILE; repeatable (SeaBIOS's debug log is port 0x402)")                                  \
  X(DebugExit, "--debug-exit", "[iobase=A][,iosize=N]", Active,                                 \
    "QEMU's isa-debug-exit: a guest write of V to ports A..A+N-1 (default "                     \
    "iobase=0xf4,iosize=4) ends vmm86 with exit status (V << 1) | 1")                            \
  X(Netdev, "--netdev", "user,id=ID[,hostfwd=tcp:ADDR:HP-:GP]...", Active,                      \
    "user-mode networking (libslirp, QEMU's -netdev user): network 10.0.2.0/24 with DHCP and "  \
    "DNS, the host's loopback at 10.0.2.2; hostfwd forwards a host port to a guest port; "      \
    "repeatable")                                                                               \
  X(Device, "--device", "ne2k_pci,netdev=ID[,mac=MAC]", Active,                                 \
    "a NIC on the PCI bus wired to --netdev ID (QEMU's -device): ne2k_pci (RTL8029 NE2000); "   \
    "needs the BIOS boot; repeatable")                                                          \
  X(Nic, "--nic", "user[,model=ne2k_pci][,mac=MAC][,hostfwd=...]", Active,                      \
    "QEMU's -nic shorthand: a user netdev and a NIC on it in one option")
// clang-format on

/// Names the options of `vmm86 run`.
enum class RunOption : uint8_t {
#define VMM86_X(id, ...) id,
  VMM86_RUN_OPTIONS(VMM86_X)
#undef VMM86_X
};

/// One option of `vmm86 run`.
struct RunOptionSpec {
  RunOption id;
  std::string_view flag;        ///< "--mem"
  std::string_view value_name;  ///< "SIZE"; empty for a switch
  OptionState state;
  std::string_view help;
};

inline constexpr RunOptionSpec kRunOptions[] = {
#define VMM86_X(id, flag, value_name, state, help) {RunOption::id, flag, value_name, OptionState::state, help},
    VMM86_RUN_OPTIONS(VMM86_X)
#undef VMM86_X
};

/// The spec of one option.
[[nodiscard]] const RunOptionSpec& run_option(RunOption id);

/// The most vCPUs --smp takes (the code-page set keeps one bit per vCPU in a byte).
inline constexpr uint64_t kMaxSmpCpus = 8;

/// The marker --help appends to options that have no effect yet.
inline constexpr std::string_view kNotActiveYetMark = "[not active yet]";

/// What the command line asks for.
struct CommandLine {
  /// Set when the command is `run` and its options are well-formed: the machine to start.
  std::optional<MachineConfig> run;
  /// The exit status when there is nothing to run: help and version give kExitOk, errors
  /// (already printed) kExitUsage.
  int exit_status = kExitOk;
};

/// Parses argv. Help and version go to `out`. An error goes to `err` as one line,
/// "vmm86: error: ...", and gives exit_status kExitUsage.
[[nodiscard]] CommandLine parse_command_line(int argc, const char* const* argv, std::FILE* out, std::FILE* err);

/// A --mem value as QEMU's -m reads it: a whole number with an optional K, M or G suffix
/// (either case), MiB without one. Must be more than 0, at most 3G and a multiple of 4K.
[[nodiscard]] Result<uint64_t> parse_mem_size(std::string_view text);

/// A size in the largest unit that divides it exactly: "256M", "3G", "1028K", "4095".
[[nodiscard]] std::string mem_size_string(uint64_t bytes);

/// A non-negative decimal count (--trace-limit).
[[nodiscard]] Result<uint64_t> parse_count(std::string_view text);

}  // namespace vmm86
