// What `vmm86 run` was asked to do (MachineConfig) and the process exit statuses: the
// contract between the command line (vmm/cli.h), which fills it in, and the machine, which
// runs it. Header only, so the front end needs no link to the machine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devices/net/host_forward.h"

namespace vmm86 {

/// Which engine executes guest code (DESIGN.md §6).
enum class Engine : uint8_t {
  Bt,      ///< the binary translator (default)
  Interp,  ///< the reference interpreter
};

/// Engine names as spelled on the command line.
inline constexpr std::array<std::pair<std::string_view, Engine>, 2> kEngineNames{
    {{"bt", Engine::Bt}, {"interp", Engine::Interp}}};

/// "bt" / "interp".
[[nodiscard]] constexpr std::string_view engine_name(Engine engine) {
  for (const auto& [name, e] : kEngineNames) {
    if (e == engine) return name;
  }
  return "?";
}

inline constexpr uint64_t kDefaultRamBytes = 256ull << 20;
/// The firmware `vmm86 run` starts without --kernel or --bios (Debian's `seabios` package).
inline constexpr std::string_view kDefaultBiosPath = "/usr/share/seabios/bios.bin";

/// A debug console port (QEMU's isa-debugcon): bytes written to `port` go to `path`.
struct DebugconConfig {
  uint16_t port = 0xE9;
  std::string path;
};

/// QEMU's isa-debug-exit (--debug-exit): a guest write of V to [iobase, iobase + iosize)
/// ends vmm86 with exit status (V << 1) | 1. The defaults are the usual test setup
/// (iobase=0xf4,iosize=0x04); QEMU's own device defaults to 0x501 and 2.
struct DebugExitConfig {
  uint16_t iobase = 0xF4;
  uint16_t iosize = 4;
};

/// What a drive holds: a hard disk or a CD-ROM (read-only, 2048-byte sectors).
enum class DriveMedia : uint8_t { Disk, Cdrom };

/// Which controller a drive hangs on (QEMU's if=).
enum class DriveInterface : uint8_t { Ide, Floppy };

/// IDE positions as QEMU numbers them: 0 primary master (--hda), 1 primary slave (--hdb),
/// 2 secondary master (--hdc, --cdrom), 3 secondary slave (--hdd).
inline constexpr unsigned kIdeDrives = 4;
/// Floppy drives: 0 A: (--fda), 1 B: (--fdb).
inline constexpr unsigned kFloppyDrives = 2;

/// A drive on the IDE controller (--hda..--hdd, --cdrom, --drive) or the floppy controller
/// (--fda, --fdb, --drive if=floppy).
struct DriveConfig {
  std::string path;
  DriveMedia media = DriveMedia::Disk;
  bool read_only = false;
  unsigned index = 0;  ///< position on its interface: below kIdeDrives or kFloppyDrives
  /// format= of --drive: "raw" or "qcow2"; empty: probed from the file (QEMU's way).
  std::string format;
  DriveInterface interface = DriveInterface::Ide;
};

/// The display adapter (--vga).
enum class VgaKind : uint8_t {
  None,  ///< no display adapter (the serial console only)
  Std,   ///< QEMU's -vga std: a VGA with the Bochs VBE extension, a PCI function on BIOS boots
};

/// The VGA BIOS the std VGA's ROM BAR holds (Debian's `seabios` package).
inline constexpr std::string_view kStdVgaBiosPath = "/usr/share/seabios/vgabios-stdvga.bin";

/// --display vnc=[HOST]:N: an RFB server on HOST (default all interfaces) port 5900 + N.
struct VncConfig {
  std::string host;
  unsigned display = 0;
};

/// A host side of a network (QEMU's -netdev): `user` networking (libslirp) is the one kind.
struct NetdevConfig {
  std::string id;
  std::vector<HostForward> forwards;  ///< hostfwd= rules
};

/// NIC models (QEMU's -device names).
enum class NicModel : uint8_t { Ne2kPci };
inline constexpr std::array<std::pair<std::string_view, NicModel>, 1> kNicModels{{{"ne2k_pci", NicModel::Ne2kPci}}};

/// A NIC on the PCI bus (QEMU's -device MODEL,netdev=ID[,mac=..]), wired to a netdev.
struct NicConfig {
  NicModel model = NicModel::Ne2kPci;
  std::string netdev;                         ///< the NetdevConfig::id it is connected to
  std::optional<std::array<uint8_t, 6>> mac;  ///< default: QEMU's 52:54:00:12:34:56 (+1 per NIC)
};

/// Everything `vmm86 run` was asked to do, checked for form (not yet against the files).
struct MachineConfig {
  std::string kernel_path;                ///< bzImage; empty: boot the BIOS
  std::string bios_path;                  ///< firmware image; empty with a kernel: direct Linux boot
  std::string initrd_path;                ///< empty: no initrd
  std::string cmdline;                    ///< kernel command line (QEMU's -append); empty by default
  uint64_t ram_bytes = kDefaultRamBytes;  ///< a multiple of 4 KiB, at most 3 GiB
  Engine engine = Engine::Bt;
  bool stats = false;                     ///< print execution statistics when the guest stops
  bool verify = false;                    ///< re-run sampled translated blocks in the interpreter and compare (bt)
  uint32_t verify_period = 64;            ///< with `verify`: one block entry in this many
  bool perf_map = false;                  ///< name translated blocks in /tmp/perf-PID.map (Linux perf)
  std::string trace_path;                 ///< empty: no instruction trace
  uint64_t trace_limit = 0;               ///< stop tracing after this many instructions; 0: no limit
  std::vector<DebugconConfig> debugcons;  ///< --debugcon, in command-line order
  std::vector<DriveConfig> drives;        ///< at distinct positions of their interfaces
  std::string boot_order = "cad";         ///< QEMU's -boot: a floppy, c hard disk, d CD-ROM
  bool snapshot = false;                  ///< writes go to a temporary overlay, never the images
  bool no_reboot = false;                 ///< a guest reset ends the run (QEMU's -no-reboot)
  bool apic = true;                       ///< a local APIC and an IOAPIC (--no-apic: without)
  unsigned smp = 1;                       ///< vCPUs (--smp), each on its own host thread
  /// --debug-exit, if given
  std::optional<DebugExitConfig> debug_exit;
  /// ACPI (tables, the PIIX4 PM hardware); --no-acpi turns it off (QEMU's -machine acpi=off)
  bool acpi = true;
  VgaKind vga = VgaKind::None;        ///< --vga
  std::optional<VncConfig> vnc;       ///< --display vnc=...; nullopt: no display window
  std::string screenshot_path;        ///< --screenshot: a PNG of the screen when the run ends
  std::string screen_text_path;       ///< --screen-text: the text-mode screen as text at the end
  std::vector<NetdevConfig> netdevs;  ///< --netdev, --nic
  std::vector<NicConfig> nics;        ///< --device, --nic; each on its own netdev
};

/// Process exit statuses of vmm86.
enum ExitStatus : int {
  kExitOk = 0,       ///< guest powered off (or --help / --version)
  kExitFailure = 1,  ///< the guest could not be loaded or failed at run time
  kExitUsage = 2,    ///< the command line is wrong
  // The guest's own statuses through --debug-exit are odd: (V << 1) | 1 for a value V.
  /// SIGINT/SIGTERM/SIGHUP: vmm86 ends by re-raising the signal, so its status is the
  /// signal's (a shell shows 128+N); this is what it returns should the signal not end it.
  kExitSignalBase = 128,
};

}  // namespace vmm86
