// Multiboot (version 1, specification 0.6.96) kernel images: finding the Multiboot header
// in the first 8 KiB of a file and working out which bytes of the file go where in guest-
// physical memory, from the ELF32 program headers or, when the header's flags bit 16 asks
// for it, from the header's own address fields (the "a.out kludge"). Pure functions over
// a way to read the file; placing the boot information is vmm/loader/multiboot.h's job.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace vmm86::multiboot {

/// The header's magic field.
inline constexpr uint32_t kHeaderMagic = 0x1BADB002;
/// What the boot loader leaves in EAX for the kernel.
inline constexpr uint32_t kBootloaderMagic = 0x2BADB002;
/// The header lies entirely within the file's first 8192 bytes, 4-byte aligned.
inline constexpr uint64_t kSearchBytes = 8192;
inline constexpr uint64_t kHeaderAlign = 4;
/// Guest-physical addresses are 32 bits.
inline constexpr uint64_t k4GiB = 1ull << 32;

/// Bits of the header's flags field.
namespace header_flags {
inline constexpr uint32_t PageAlignModules = 1u << 0;  ///< modules on 4 KiB boundaries
inline constexpr uint32_t MemoryInfo = 1u << 1;        ///< mem_* (and mmap_*) in the info structure
inline constexpr uint32_t VideoMode = 1u << 2;         ///< a video mode table: vmm86 has no display
inline constexpr uint32_t AoutKludge = 1u << 16;       ///< load by the header's address fields
/// Bits 0-15 are requirements: a loader that cannot meet one must refuse the kernel.
inline constexpr uint32_t Required = 0xFFFF;
/// The requirements vmm86 meets (it always page-aligns modules and gives the memory map).
inline constexpr uint32_t Honoured = PageAlignModules | MemoryInfo;
}  // namespace header_flags

/// The Multiboot header as found in the file.
struct Header {
  uint64_t offset = 0;  ///< file offset of the magic field
  uint32_t flags = 0;
  // The address fields, meaningful with header_flags::AoutKludge (all physical).
  uint32_t header_addr = 0;    ///< where the magic field is loaded
  uint32_t load_addr = 0;      ///< where the text segment starts
  uint32_t load_end_addr = 0;  ///< end of the data segment; 0: to the end of the file
  uint32_t bss_end_addr = 0;   ///< end of the bss, zeroed by the loader; 0: no bss
  uint32_t entry_addr = 0;     ///< where execution starts
};

/// Finds the first valid header (magic, checksum, aligned) in `head`, the file's first
/// min(size, kSearchBytes) bytes. Nullopt when there is none; an error when one is found
/// whose fields run past the first 8192 bytes or the end of the file.
[[nodiscard]] Result<std::optional<Header>> find_header(std::span<const uint8_t> head);

/// Refuses requirement bits (0-15) vmm86 cannot honour, naming them. Bits 16-31 are
/// optional features: unknown ones are ignored, as the specification allows.
[[nodiscard]] Status check_flags(uint32_t flags);

/// File bytes [file_offset, file_offset + file_size) copied to guest-physical `phys`, then
/// zeros up to mem_size.
struct Segment {
  uint64_t phys = 0;
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t mem_size = 0;  ///< at least file_size

  [[nodiscard]] uint64_t end() const { return phys + mem_size; }
};

/// Where a Multiboot kernel goes and where it starts.
struct KernelImage {
  Header header;
  bool aout_kludge = false;       ///< placed by the header's address fields, not by ELF
  std::vector<Segment> segments;  ///< sorted by address, none empty, none overlapping
  uint32_t entry = 0;             ///< physical address of the first instruction
  uint64_t start = 0;             ///< lowest address the image occupies
  uint64_t end = 0;               ///< one past its highest (the image's bss included)
};

/// "0x100000-0x1a0000" (a half-open range) for messages.
[[nodiscard]] std::string range_string(uint64_t start, uint64_t end);

/// Reads `dst.size()` bytes at `offset` of the kernel file.
using ReadAt = std::function<Status(uint64_t offset, std::span<uint8_t> dst)>;

/// The kernel file as parse_kernel sees it.
struct ImageSource {
  uint64_t size = 0;              ///< bytes in the file
  std::span<const uint8_t> head;  ///< its first min(size, kSearchBytes) bytes
  ReadAt read;                    ///< for the rest (ELF program headers)
};

/// Works out the segments and the entry point of a file in which find_header found
/// `header`: the a.out kludge fields with flags bit 16, else the ELF32 (i386) program
/// headers (PT_LOAD at p_paddr; an entry point inside a segment's virtual range is moved
/// to the same place in its physical range, as QEMU and GRUB do). Fails, in one line that
/// does not name the file, on a truncated or inconsistent image, a 64-bit ELF file, an
/// image past 4 GiB, overlapping segments, or an entry point outside the loaded bytes.
[[nodiscard]] Result<KernelImage> parse_kernel(const ImageSource& source, const Header& header);

}  // namespace vmm86::multiboot
