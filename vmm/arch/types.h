// Address types: one type per address space, so a guest-linear address can never be
// passed where a guest-physical one is expected (STYLE.md #10), and one per kind of page
// number, so a page number can never be passed where an address is expected. Each is one
// integer: passed in a register and compared as one, they compile to the raw code.
#pragma once

#include <compare>
#include <cstdint>

namespace vmm86 {

inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kPageShift = 12;
inline constexpr uint32_t kPageMask = kPageSize - 1;

struct GuestPhys;
struct GuestLinear;

/// A guest-physical page number (a frame: the address >> 12).
struct PhysPage {
  uint64_t value = 0;
  constexpr auto operator<=>(const PhysPage&) const = default;
  /// The address of its first byte.
  [[nodiscard]] constexpr GuestPhys address() const;
};

/// A guest-linear page number (the address >> 12).
struct LinearPage {
  uint32_t value = 0;
  constexpr auto operator<=>(const LinearPage&) const = default;
  /// The address of its first byte.
  [[nodiscard]] constexpr GuestLinear address() const;
};

/// A guest physical address (what the guest's page tables point at).
struct GuestPhys {
  uint64_t value = 0;
  constexpr auto operator<=>(const GuestPhys&) const = default;
  constexpr GuestPhys operator+(uint64_t offset) const { return GuestPhys{value + offset}; }
  /// The page that holds it.
  [[nodiscard]] constexpr PhysPage page() const { return PhysPage{value >> kPageShift}; }
};

/// A guest linear address (after segmentation, before paging). Always 32 bits on IA-32.
struct GuestLinear {
  uint32_t value = 0;
  constexpr auto operator<=>(const GuestLinear&) const = default;
  constexpr GuestLinear operator+(uint32_t offset) const { return GuestLinear{value + offset}; }
  /// The page that holds it.
  [[nodiscard]] constexpr LinearPage page() const { return LinearPage{value >> kPageShift}; }
  /// Its offset in that page.
  [[nodiscard]] constexpr uint32_t page_offset() const { return value & kPageMask; }
};

constexpr GuestPhys PhysPage::address() const { return GuestPhys{value << kPageShift}; }
constexpr GuestLinear LinearPage::address() const { return GuestLinear{value << kPageShift}; }

}  // namespace vmm86
