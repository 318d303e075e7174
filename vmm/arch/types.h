// Address types: one type per address space, so a guest-linear address can never be
// passed where a guest-physical one is expected (STYLE.md #10).
#pragma once

#include <compare>
#include <cstdint>

namespace vmm86 {

/// A guest physical address (what the guest's page tables point at).
struct GuestPhys {
  uint64_t value = 0;
  constexpr auto operator<=>(const GuestPhys&) const = default;
  constexpr GuestPhys operator+(uint64_t offset) const { return GuestPhys{value + offset}; }
};

/// A guest linear address (after segmentation, before paging). Always 32 bits on IA-32.
struct GuestLinear {
  uint32_t value = 0;
  constexpr auto operator<=>(const GuestLinear&) const = default;
  constexpr GuestLinear operator+(uint32_t offset) const { return GuestLinear{value + offset}; }
};

inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kPageShift = 12;
inline constexpr uint32_t kPageMask = kPageSize - 1;

}  // namespace vmm86
