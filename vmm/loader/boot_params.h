// Byte layout of the Linux/x86 "zero page" (struct boot_params) and its setup header, as
// fixed by the boot protocol (Documentation/arch/x86/boot.rst, zero-page.rst and
// arch/x86/include/uapi/asm/bootparam.h). Only the fields vmm86 reads or writes are named;
// the rest is padding. The static_asserts pin every named field to its documented offset.
// Host and guest are both little-endian, so these structs are copied to and from guest
// memory as they are.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmm86::linux_boot {

/// "HdrS", the setup-header magic at file offset 0x202.
inline constexpr uint32_t kHeaderMagic = 0x53726448;
/// The boot-sector signature at file offset 0x1FE.
inline constexpr uint16_t kBootFlag = 0xAA55;
/// File offset of the setup header (and its offset inside boot_params).
inline constexpr size_t kSetupHeaderOffset = 0x1F1;
/// The header may be at most this long: boot_params continues with other fields at 0x290.
inline constexpr size_t kSetupHeaderLimit = 0x290;

/// loadflags bits.
namespace loadflags {
inline constexpr uint8_t LoadedHigh = 1u << 0;  ///< protected-mode code goes at 1 MiB (bzImage)
inline constexpr uint8_t CanUseHeap = 1u << 7;  ///< heap_end_ptr is valid (real-mode setup only)
}  // namespace loadflags

/// xloadflags bits (protocol 2.12+).
namespace xloadflags {
inline constexpr uint16_t Kernel64 = 1u << 0;  ///< an x86-64 kernel (has the 64-bit entry)
}  // namespace xloadflags

/// type_of_loader value for a boot loader without an assigned id.
inline constexpr uint8_t kLoaderTypeUndefined = 0xFF;

#pragma pack(push, 1)

/// struct setup_header; lives at 0x1F1 both in the bzImage file and in boot_params.
// clang-format off
struct SetupHeader {
  uint8_t setup_sects;           // 0x1F1  real-mode sectors after the boot sector (0 = 4)
  uint16_t root_flags;           // 0x1F2
  uint32_t syssize;              // 0x1F4  protected-mode size in 16-byte units (2.04+)
  uint16_t ram_size;             // 0x1F8  obsolete
  uint16_t vid_mode;             // 0x1FA
  uint16_t root_dev;             // 0x1FC
  uint16_t boot_flag;            // 0x1FE  0xAA55
  uint16_t jump;                 // 0x200  short jmp; its second byte gives the header end
  uint32_t header;               // 0x202  "HdrS"
  uint16_t version;              // 0x206  protocol version, major.minor in the two bytes
  uint32_t realmode_swtch;       // 0x208
  uint16_t start_sys_seg;        // 0x20C
  uint16_t kernel_version;       // 0x20E  offset of the version string, minus 0x200
  uint8_t type_of_loader;        // 0x210  written by the loader
  uint8_t loadflags;             // 0x211
  uint16_t setup_move_size;      // 0x212
  uint32_t code32_start;         // 0x214  32-bit entry; the loader sets it to the load address
  uint32_t ramdisk_image;        // 0x218  written by the loader
  uint32_t ramdisk_size;         // 0x21C  written by the loader
  uint32_t bootsect_kludge;      // 0x220
  uint16_t heap_end_ptr;         // 0x224
  uint8_t ext_loader_ver;        // 0x226
  uint8_t ext_loader_type;       // 0x227
  uint32_t cmd_line_ptr;         // 0x228  written by the loader
  uint32_t initrd_addr_max;      // 0x22C  highest address the initrd may occupy (2.03+)
  uint32_t kernel_alignment;     // 0x230  (2.05+)
  uint8_t relocatable_kernel;    // 0x234  (2.05+)
  uint8_t min_alignment;         // 0x235  log2 (2.10+)
  uint16_t xloadflags;           // 0x236  (2.12+)
  uint32_t cmdline_size;         // 0x238  max command-line length without the NUL (2.06+)
  uint32_t hardware_subarch;     // 0x23C
  uint64_t hardware_subarch_data;  // 0x240
  uint32_t payload_offset;       // 0x248
  uint32_t payload_length;       // 0x24C
  uint64_t setup_data;           // 0x250
  uint64_t pref_address;         // 0x258  preferred load address (2.10+)
  uint32_t init_size;            // 0x260  memory the kernel needs from its run address (2.10+)
  uint32_t handover_offset;      // 0x264
  uint32_t kernel_info_offset;   // 0x268  (2.15+)
};

/// One e820 map entry as the zero page holds it.
struct BootE820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

/// The start of struct screen_info (0x40 bytes in all).
struct ScreenInfo {
  uint8_t orig_x;             // 0x00
  uint8_t orig_y;             // 0x01
  uint16_t ext_mem_k;         // 0x02  KiB of extended memory above 1 MiB (int 15h/88h style)
  uint16_t orig_video_page;   // 0x04
  uint8_t orig_video_mode;    // 0x06
  uint8_t orig_video_cols;    // 0x07
  uint8_t flags;              // 0x08
  uint8_t unused2;            // 0x09
  uint16_t orig_video_ega_bx;  // 0x0A
  uint16_t unused3;           // 0x0C
  uint8_t orig_video_lines;   // 0x0E
  uint8_t orig_video_isVGA;   // 0x0F  NOLINT(readability-identifier-naming): Linux spells it so
  uint8_t rest[0x30];         // 0x10  VESA fields, unused without a framebuffer
};

inline constexpr size_t kE820MaxEntries = 128;

/// struct boot_params, the 4 KiB "zero page".
struct BootParams {
  ScreenInfo screen_info;                  // 0x000
  uint8_t pad_040[0x1E0 - 0x040];          // APM, IST, ACPI RSDP, EDID, EFI...
  uint32_t alt_mem_k;                      // 0x1E0  KiB above 1 MiB (int 15h/E801 style)
  uint32_t scratch;                        // 0x1E4
  uint8_t e820_entries;                    // 0x1E8
  uint8_t eddbuf_entries;                  // 0x1E9
  uint8_t edd_mbr_sig_buf_entries;         // 0x1EA
  uint8_t kbd_status;                      // 0x1EB
  uint8_t secure_boot;                     // 0x1EC
  uint8_t pad_1ed[2];                      // 0x1ED
  uint8_t sentinel;                        // 0x1EF  must stay 0, or the kernel distrusts the page
  uint8_t pad_1f0;                         // 0x1F0
  SetupHeader hdr;                         // 0x1F1
  uint8_t pad_26c[0x290 - 0x1F1 - sizeof(SetupHeader)];
  uint32_t edd_mbr_sig_buffer[16];         // 0x290
  BootE820Entry e820_table[kE820MaxEntries];  // 0x2D0
  uint8_t pad_cd0[0x1000 - 0xCD0];         // EDD info and padding
};
// clang-format on

#pragma pack(pop)

static_assert(sizeof(BootE820Entry) == 20);
static_assert(sizeof(ScreenInfo) == 0x40);
static_assert(sizeof(SetupHeader) == 0x26C - 0x1F1);
static_assert(sizeof(BootParams) == 0x1000);
static_assert(offsetof(BootParams, alt_mem_k) == 0x1E0);
static_assert(offsetof(BootParams, e820_entries) == 0x1E8);
static_assert(offsetof(BootParams, sentinel) == 0x1EF);
static_assert(offsetof(BootParams, hdr) == kSetupHeaderOffset);
static_assert(offsetof(BootParams, edd_mbr_sig_buffer) == 0x290);
static_assert(offsetof(BootParams, e820_table) == 0x2D0);

/// Offset of a setup-header field in the bzImage file and in boot_params.
#define VMM86_HDR_OFFSET(field) \
  (::vmm86::linux_boot::kSetupHeaderOffset + offsetof(::vmm86::linux_boot::SetupHeader, field))
static_assert(VMM86_HDR_OFFSET(boot_flag) == 0x1FE);
static_assert(VMM86_HDR_OFFSET(header) == 0x202);
static_assert(VMM86_HDR_OFFSET(version) == 0x206);
static_assert(VMM86_HDR_OFFSET(type_of_loader) == 0x210);
static_assert(VMM86_HDR_OFFSET(code32_start) == 0x214);
static_assert(VMM86_HDR_OFFSET(cmd_line_ptr) == 0x228);
static_assert(VMM86_HDR_OFFSET(initrd_addr_max) == 0x22C);
static_assert(VMM86_HDR_OFFSET(relocatable_kernel) == 0x234);
static_assert(VMM86_HDR_OFFSET(cmdline_size) == 0x238);
static_assert(VMM86_HDR_OFFSET(pref_address) == 0x258);
static_assert(VMM86_HDR_OFFSET(init_size) == 0x260);
static_assert(VMM86_HDR_OFFSET(kernel_info_offset) == 0x268);

}  // namespace vmm86::linux_boot
