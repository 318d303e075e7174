// The PC physical memory map as the BIOS reports it through int 15h/E820, which the Linux
// boot protocol passes in the zero page. Pure functions; no guest memory involved.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vmm86::linux_boot {

/// e820 range types (the values the kernel expects).
enum class E820Type : uint32_t {
  Ram = 1,
  Reserved = 2,
  Acpi = 3,  ///< ACPI tables, reclaimable after parsing
  Nvs = 4,   ///< ACPI non-volatile storage
  Unusable = 5,
};

[[nodiscard]] std::string_view e820_type_name(E820Type type);

/// One range of the map: [start, start + size).
struct E820Range {
  uint64_t start = 0;
  uint64_t size = 0;
  E820Type type = E820Type::Reserved;

  [[nodiscard]] constexpr uint64_t end() const { return start + size; }
  constexpr bool operator==(const E820Range&) const = default;
};

/// Fixed places of the legacy PC layout.
inline constexpr uint64_t kEbdaStart = 0x9FC00;      ///< extended BIOS data area (1 KiB)
inline constexpr uint64_t kVgaHoleStart = 0xA0000;   ///< VGA memory and option ROMs
inline constexpr uint64_t kBiosRomStart = 0xF0000;   ///< system BIOS
inline constexpr uint64_t kHighMemStart = 0x100000;  ///< 1 MiB

/// The map of a PC with `ram_bytes` of RAM from address 0: RAM [0, EBDA), reserved EBDA and
/// BIOS ROM, nothing at the VGA hole, RAM from 1 MiB to the end of RAM. `holes` are ranges
/// the platform claims (device memory, firmware tables); each one replaces whatever it
/// overlaps. The result is sorted, without overlaps, with touching ranges of one type
/// merged. Fails on an empty or wrapping hole, or when the map needs more entries than the
/// zero page holds.
[[nodiscard]] Result<std::vector<E820Range>> build_e820_map(uint64_t ram_bytes, std::span<const E820Range> holes);

/// The RAM range of `map` that contains all of [start, end), if any.
[[nodiscard]] std::optional<E820Range> ram_range_containing(std::span<const E820Range> map, uint64_t start,
                                                            uint64_t end);

/// KiB of RAM contiguous from 1 MiB upwards: what the old BIOS memory-size calls report.
[[nodiscard]] uint64_t extended_memory_kib(std::span<const E820Range> map);

}  // namespace vmm86::linux_boot
