// The Linux/x86 32-bit boot protocol (Documentation/arch/x86/boot.rst): reads a bzImage and
// an optional initrd from host files into guest RAM, builds the zero page (boot_params)
// with the e820 map and the command line, and returns the vCPU state at the kernel's
// 32-bit entry point. This is what a boot loader does after the BIOS, so no BIOS code runs.
//
// Guest-physical layout (everything below 1 MiB sits under the EBDA at 0x9FC00):
//   0x05000  GDT (null, null, 0x10 flat code, 0x18 flat data)
//   0x06000  scratch stack, ESP = 0x7000 (the protocol leaves ESP undefined)
//   0x07000  boot_params, the 4 KiB zero page (ESI)
//   0x20000  command line, NUL-terminated
//   load     the protected-mode kernel: its preferred address when relocatable, else 1 MiB
//   high     the initrd, page aligned, as high in RAM as the kernel allows
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"
#include "vmm/loader/boot_params.h"
#include "vmm/loader/e820.h"
#include "vmm/loader/kernel_request.h"

namespace vmm86::linux_boot {

inline constexpr GuestPhys kGdtAddr{0x5000};
inline constexpr uint32_t kBootStackTop = 0x7000;
inline constexpr GuestPhys kBootParamsAddr{0x7000};
inline constexpr GuestPhys kCmdlineAddr{0x20000};
/// The command line may run up to the EBDA.
inline constexpr uint64_t kCmdlineAreaEnd = kEbdaStart;
/// Where bzImages are loaded unless they are relocatable (and where old ones run).
inline constexpr uint64_t kDefaultLoadAddr = kHighMemStart;
/// The selectors the protocol requires at entry (__BOOT_CS, __BOOT_DS).
inline constexpr uint16_t kBootCs = 0x10;
inline constexpr uint16_t kBootDs = 0x18;
/// Oldest protocol accepted: 2.06 brings cmdline_size, so every field used here is present.
inline constexpr uint16_t kMinProtocol = 0x0206;
/// Entries of the boot GDT: null, null, code (kBootCs), data (kBootDs).
inline constexpr size_t kBootGdtEntries = 4;
/// How much of the file parse_bzimage wants to see: all setup sectors of any bzImage.
inline constexpr size_t kHeadBytes = 64 * 1024;

/// What a validated bzImage setup header says about the kernel.
struct KernelImage {
  uint16_t protocol = 0;     ///< boot protocol version, e.g. 0x020F for 2.15
  uint64_t setup_bytes = 0;  ///< real-mode part (boot sector + setup sectors)
  uint64_t code_bytes = 0;   ///< protected-mode part, which follows it in the file
  bool relocatable = false;
  uint32_t alignment = 0;     ///< kernel_alignment: relocated kernels run at a multiple
  uint64_t pref_address = 0;  ///< where the kernel runs (its LOAD_PHYSICAL_ADDR); 1 MiB before 2.10
  /// Bytes the kernel needs from its run address while it decompresses itself. Before
  /// protocol 2.10 the image does not say; code_bytes stands in as a lower bound.
  uint64_t init_size = 0;
  uint32_t cmdline_max = 0;           ///< longest command line, NUL excluded
  uint32_t initrd_addr_max = 0;       ///< highest address the initrd may occupy
  std::string version;                ///< the image's version string, empty if it has none
  SetupHeader header{};               ///< decoded header (fields past the header's end are 0)
  std::vector<uint8_t> header_bytes;  ///< file bytes from 0x1F1 to the header's end, for boot_params

  /// "2.15"
  [[nodiscard]] std::string protocol_string() const;
};

/// Checks that `head` (the first min(file size, kHeadBytes) bytes of a file of `file_size`
/// bytes) is a bzImage that vmm86 can boot, and decodes its setup header. Messages do not
/// name the file; callers prefix that.
[[nodiscard]] Result<KernelImage> parse_bzimage(std::span<const uint8_t> head, uint64_t file_size);

/// Where the kernel image goes and which memory it claims before it can read the e820 map.
struct KernelPlacement {
  uint64_t load_addr = 0;    ///< the protected-mode code is copied here; also the entry point
  uint64_t run_addr = 0;     ///< where it decompresses itself (KASLR may move it higher)
  uint64_t claim_start = 0;  ///< [claim_start, claim_end) covers the loaded image and
  uint64_t claim_end = 0;    ///< [run_addr, run_addr + init_size): nothing else may go there
};

/// Loads relocatable kernels at their preferred address when it is sane (aligned, above
/// 1 MiB), so the decompressor does not move them; everything else at 1 MiB.
[[nodiscard]] KernelPlacement place_kernel(const KernelImage& kernel);

/// The highest page-aligned address at which `size` bytes lie in one RAM range of `map`,
/// above 1 MiB, at or below `last_byte` and outside [avoid_start, avoid_end); 0 if none.
[[nodiscard]] uint64_t place_initrd(std::span<const E820Range> map, uint64_t size, uint64_t last_byte,
                                    uint64_t avoid_start, uint64_t avoid_end);

/// The flat GDT of the 32-bit entry: null, null, code at kBootCs, data at kBootDs.
[[nodiscard]] std::array<uint64_t, kBootGdtEntries> boot_gdt();

/// vCPU state at the 32-bit entry: protected mode without paging, CS = kBootCs and
/// DS/ES/SS/FS/GS = kBootDs (4 GiB flat, base 0), GDTR = boot_gdt() at kGdtAddr, IF = 0,
/// ESI = boot_params, EBX/EBP/EDI = 0, EIP = entry.
[[nodiscard]] CpuState boot_cpu_state(GuestPhys boot_params, uint32_t entry);

/// What to boot: `initrd` is the initrd's path (empty: none).
using BootRequest = KernelRequest;

/// Where load_linux put things (for logs, tests and the machine).
struct BootLayout {
  KernelPlacement kernel;
  GuestPhys initrd{};  ///< 0 without an initrd
  uint64_t initrd_size = 0;
  GuestPhys boot_params = kBootParamsAddr;
  GuestPhys cmdline = kCmdlineAddr;
  GuestPhys gdt = kGdtAddr;
  std::vector<E820Range> e820;
};

/// The result of loading: the entry state plus what went where.
struct LinuxBoot {
  CpuState cpu;
  BootLayout layout;
  KernelImage kernel;
};

/// Smallest guest RAM in which `request` can boot: the kernel's claim plus the initrd,
/// rounded up to a whole MiB. Opens the files to find out; fails as load_linux would.
[[nodiscard]] Result<uint64_t> required_ram_bytes(const BootRequest& request);

/// Loads kernel, initrd and command line into `memory` and builds boot_params and the GDT.
/// On failure `memory` may hold part of the image; discard it.
[[nodiscard]] Result<LinuxBoot> load_linux(GuestMemory& memory, const BootRequest& request);

/// A guest ready to run: its RAM with everything in place, and the vCPU at the entry point.
struct LoadedGuest {
  GuestMemory memory;
  CpuState cpu;
  BootLayout layout;
  KernelImage kernel;
};

/// Creates `ram_bytes` of guest RAM and runs load_linux into it.
[[nodiscard]] Result<LoadedGuest> load_guest(uint64_t ram_bytes, const BootRequest& request);

}  // namespace vmm86::linux_boot
