// Firmware tables in relocatable form, as QEMU's BIOS linker/loader hands them to SeaBIOS
// (QEMU hw/acpi/bios-linker-loader.c; SeaBIOS src/fw/romfile_loader.c): a few files (blobs),
// pointer fields inside them that hold an offset into another file until the files are
// placed, and checksum bytes to recompute afterwards. The same description serves two
// consumers: link() places the files at known guest addresses (vmm86's own loaders), and
// loader_script() writes the "etc/table-loader" commands with which the firmware places
// them wherever it allocates memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vmm86 {

/// Where the firmware allocates a file (the loader's ALLOCATE zones).
enum class TableZone : uint8_t {
  High = 1,  ///< high memory (SeaBIOS: below the top of RAM below 4 GiB)
  FSeg = 2,  ///< the 0xF0000 segment, where OSes scan for the RSDP
};

struct TableFile {
  std::string name;  ///< fw_cfg file name, at most 55 characters
  std::vector<uint8_t> bytes;
  uint32_t alignment = 1;  ///< a power of two
  TableZone zone = TableZone::High;
};

/// A little-endian field of `size` bytes at `offset` in file `file` that holds an offset
/// into file `target`; placing adds the target's address.
struct TablePointer {
  size_t file = 0;
  uint32_t offset = 0;
  uint8_t size = 4;
  size_t target = 0;
};

/// The byte at `offset` in `file` makes bytes [start, start + length) sum to 0.
struct TableChecksum {
  size_t file = 0;
  uint32_t offset = 0;
  uint32_t start = 0;
  uint32_t length = 0;
};

struct LinkedTables {
  std::vector<TableFile> files;
  std::vector<TablePointer> pointers;
  std::vector<TableChecksum> checksums;

  /// The index of file `name`, or files.size().
  [[nodiscard]] size_t find(std::string_view name) const;
  /// The files as they read when file i sits at guest-physical addresses[i]: pointers
  /// patched, then checksums recomputed (the loader's order).
  [[nodiscard]] std::vector<std::vector<uint8_t>> link(std::span<const uint32_t> addresses) const;
  /// The "etc/table-loader" file: ALLOCATE for every file, then ADD_POINTER, then
  /// ADD_CHECKSUM commands, 128 bytes each.
  [[nodiscard]] Result<std::vector<uint8_t>> loader_script() const;
};

/// The loader's command format.
namespace table_loader {
inline constexpr std::string_view kScriptFile = "etc/table-loader";
inline constexpr size_t kCommandSize = 128;
inline constexpr size_t kFileNameSize = 56;
enum Command : uint32_t { kAllocate = 1, kAddPointer = 2, kAddChecksum = 3 };
}  // namespace table_loader

/// Sum of `bytes`, mod 256 (what an ACPI or MP checksum makes zero).
[[nodiscard]] uint8_t byte_sum(std::span<const uint8_t> bytes);
/// Appends the low `size` bytes of `value`, little-endian (every table field is).
void append_le(std::vector<uint8_t>& out, uint64_t value, size_t size);
/// Appends the characters of `text` (signatures, OEM IDs), no terminator.
void append_text(std::vector<uint8_t>& out, std::string_view text);

}  // namespace vmm86
