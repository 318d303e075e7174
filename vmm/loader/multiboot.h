// The Multiboot (version 1, specification 0.6.96) boot loader of `vmm86 run --kernel`:
// loads a kernel that multiboot_image.h understands, its modules (--initrd, QEMU's syntax:
// "FILE ARGS,FILE ARGS"), builds the Multiboot information structure and returns the vCPU
// at the kernel's entry. Like QEMU's -kernel, which does the same for such kernels.
//
// Guest-physical layout; the boot area is QEMU's where QEMU has one, so a kernel sees the
// same addresses on both:
//   0x08000  GDT (null, 0x08 flat code, 0x10 flat data: GRUB's and QEMU's selectors)
//   0x09000  the memory map (mmap_addr), one 24-byte entry per e820 range
//   0x09500  the Multiboot information structure (EBX)
//   image    the kernel's segments where its program headers / address fields put them
//   after    from the image's end rounded up to 4 KiB: the module list, the modules'
//            strings, the kernel command line ("KERNEL_PATH APPEND", as QEMU passes it)
//            and the boot loader's name; then each module on a 4 KiB boundary, in order
// The kernel may not be loaded over the IVT and BIOS data area (below 0x500), the boot
// area or the PC's reserved range below 1 MiB (EBDA, VGA memory, BIOS ROM).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"
#include "vmm/loader/e820.h"
#include "vmm/loader/kernel_request.h"
#include "vmm/loader/multiboot_image.h"

namespace vmm86::multiboot {

using linux_boot::E820Range;

inline constexpr GuestPhys kGdtAddr{0x8000};
inline constexpr GuestPhys kMmapAddr{0x9000};
inline constexpr GuestPhys kInfoAddr{0x9500};
/// The range the kernel may not overlap: GDT, memory map and information structure.
inline constexpr uint64_t kBootAreaStart = 0x8000;
inline constexpr uint64_t kBootAreaEnd = 0x9600;
/// Room for the memory map between kMmapAddr and kInfoAddr.
inline constexpr uint64_t kMmapBytes = kInfoAddr.value - kMmapAddr.value;
/// The real-mode IVT and the BIOS data area.
inline constexpr uint64_t kBiosDataEnd = 0x500;
/// The selectors at entry (the specification leaves them open; GRUB and QEMU use these).
inline constexpr uint16_t kBootCs = 0x08;
inline constexpr uint16_t kBootDs = 0x10;
/// ESP at entry (undefined by the specification): a scratch stack below the GDT.
inline constexpr uint32_t kBootStackTop = 0x8000;
/// What the kernel finds in boot_loader_name.
inline constexpr std::string_view kBootLoaderName = "vmm86";
/// Most modules accepted: a sanity bound, so that a mistaken list fails in one line.
inline constexpr size_t kMaxModules = 256;
/// Most guest RAM vmm86 gives (--mem): an image above it can never be loaded.
inline constexpr uint64_t kMaxRamBytes = 3ull << 30;

/// Bits of the information structure's flags field that vmm86 sets.
namespace info_flags {
inline constexpr uint32_t Memory = 1u << 0;  ///< mem_lower, mem_upper
inline constexpr uint32_t BootDevice = 1u << 1;
inline constexpr uint32_t Cmdline = 1u << 2;
inline constexpr uint32_t Modules = 1u << 3;  ///< mods_count, mods_addr (also with no module)
inline constexpr uint32_t Mmap = 1u << 6;
inline constexpr uint32_t BootLoaderName = 1u << 9;
}  // namespace info_flags

/// The information structure (specification 3.3) up to the VBE fields, as QEMU writes it.
struct Info {
  uint32_t flags = 0;
  uint32_t mem_lower = 0;  ///< KiB of RAM from address 0
  uint32_t mem_upper = 0;  ///< KiB of RAM contiguous from 1 MiB
  uint32_t boot_device = 0;
  uint32_t cmdline = 0;
  uint32_t mods_count = 0;
  uint32_t mods_addr = 0;
  uint32_t syms[4] = {};
  uint32_t mmap_length = 0;
  uint32_t mmap_addr = 0;
  uint32_t drives_length = 0;
  uint32_t drives_addr = 0;
  uint32_t config_table = 0;
  uint32_t boot_loader_name = 0;
  uint32_t apm_table = 0;
  uint32_t vbe_control_info = 0;
  uint32_t vbe_mode_info = 0;
  uint16_t vbe_mode = 0;
  uint16_t vbe_interface_seg = 0;
  uint16_t vbe_interface_off = 0;
  uint16_t vbe_interface_len = 0;
};
static_assert(sizeof(Info) == 88);

/// One entry of the module list.
struct ModuleEntry {
  uint32_t mod_start = 0;
  uint32_t mod_end = 0;  ///< one past the module's last byte
  uint32_t string = 0;   ///< "FILE ARGS", NUL-terminated
  uint32_t reserved = 0;
};
static_assert(sizeof(ModuleEntry) == 16);

/// Bytes of one memory map entry: its size field (20, which excludes itself), base,
/// length, type.
inline constexpr uint64_t kMmapEntryBytes = 24;

/// One module as --initrd names it.
struct ModuleSpec {
  std::string path;    ///< the file: the text up to the first space
  std::string string;  ///< the whole entry, "FILE ARGS", which the kernel receives
};

/// QEMU's module list: entries separated by commas (",," is a comma inside an entry),
/// each "FILE [ARGS...]"; a trailing comma ends the list. Fails on an empty file name or
/// more than kMaxModules entries.
[[nodiscard]] Result<std::vector<ModuleSpec>> parse_module_list(std::string_view list);

/// What goes into guest RAM besides the image.
struct BootData {
  std::string cmdline;                      ///< the kernel's: "KERNEL_PATH APPEND"
  std::vector<std::string> module_strings;  ///< one per module
  std::vector<uint64_t> module_sizes;       ///< bytes of each module file
};

/// Where plan_layout put each module.
struct PlacedModule {
  uint64_t start = 0;  ///< 4 KiB aligned
  uint64_t size = 0;
  GuestPhys string{};
};

/// Where everything goes.
struct Layout {
  GuestPhys mods{};  ///< the module list, at the image's end rounded up to 4 KiB
  std::vector<PlacedModule> modules;
  GuestPhys cmdline{};
  GuestPhys loader_name{};
  uint64_t end = 0;  ///< one past the last byte used, rounded up to 4 KiB
  std::vector<E820Range> e820;
};

/// Places the boot data after `image`. Without `e820` (empty) only computes the layout,
/// as for unlimited RAM (what required_ram_bytes needs); with it, fails in one line when a
/// segment is outside RAM or over a reserved range, or when the data does not fit.
[[nodiscard]] Result<Layout> plan_layout(const KernelImage& image, const BootData& data,
                                         std::span<const E820Range> e820);

/// The information structure of `layout`.
[[nodiscard]] Info make_info(const Layout& layout);

/// The memory map as the kernel reads it at mmap_addr; fails when it exceeds kMmapBytes.
[[nodiscard]] Result<std::vector<uint8_t>> make_mmap(std::span<const E820Range> e820);

/// The vCPU at the entry: EAX = kBootloaderMagic, EBX = kInfoAddr, flat 32-bit segments
/// (CS = kBootCs, others kBootDs) in a GDT at kGdtAddr, protected mode, paging and
/// interrupts off, an empty IDT, ESP = kBootStackTop, EIP = entry.
[[nodiscard]] CpuState boot_cpu_state(uint32_t entry);

/// What to boot: `initrd` is the module list (parse_module_list), `cmdline` what follows
/// the kernel's path in its command line.
using BootRequest = KernelRequest;

/// The result of loading.
struct MultibootBoot {
  CpuState cpu;
  KernelImage image;
  Layout layout;
};

/// Smallest guest RAM, in whole MiB, that holds the image and the boot data. Opens the
/// files to find out; fails as load_multiboot would.
[[nodiscard]] Result<uint64_t> required_ram_bytes(const BootRequest& request);

/// Loads the kernel and its modules into `memory` and writes the boot area. On failure
/// `memory` may hold part of the image; discard it.
[[nodiscard]] Result<MultibootBoot> load_multiboot(GuestMemory& memory, const BootRequest& request);

}  // namespace vmm86::multiboot
