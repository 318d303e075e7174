// A guest linear address space realized as 4 GiB of host address space (DESIGN.md §5).
// Translated code reaches guest memory as `gs:[addr32 ea]` with GS base = base(): the CPU
// wraps the 32-bit effective address and adds the base, so no guest access can leave the
// window. Guard regions on both sides (PROT_NONE) absorb the few accesses that can reach
// just past 4 GiB (a multi-byte access at 0xFFFFFFFF, bit-string offsets).
#pragma once

#include <cstdint>
#include <string>

#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"

namespace vmm86 {

class AddressWindow {
 public:
  static constexpr uint64_t kSpan = 1ull << 32;
  static constexpr uint64_t kGuard = 1ull << 30;

  AddressWindow() = default;
  AddressWindow(const AddressWindow&) = delete;
  AddressWindow& operator=(const AddressWindow&) = delete;
  ~AddressWindow();

  /// Reserves the address space (PROT_NONE). Returns false and sets `error` on failure.
  [[nodiscard]] bool reserve(std::string* error);
  [[nodiscard]] uint8_t* base() const { return base_; }
  [[nodiscard]] bool contains(const void* host) const {
    auto p = reinterpret_cast<uintptr_t>(host);
    auto b = reinterpret_cast<uintptr_t>(base_);
    return base_ && p >= b && p - b < kSpan;
  }
  /// Guest linear address of a host pointer inside the window.
  [[nodiscard]] GuestLinear linear_of(const void* host) const {
    return GuestLinear{static_cast<uint32_t>(reinterpret_cast<uintptr_t>(host) - reinterpret_cast<uintptr_t>(base_))};
  }

  /// Maps `pages` guest frames starting at `phys` at `linear` (MAP_FIXED over the window).
  [[nodiscard]] bool map(GuestLinear linear, const GuestMemory& mem, GuestPhys phys, uint32_t pages, bool writable);
  /// Changes protection of mapped pages (write-protect code pages, clean pages).
  [[nodiscard]] bool protect(GuestLinear linear, uint32_t pages, bool writable);
  /// Returns pages to PROT_NONE (unmapped as far as the guest can tell).
  [[nodiscard]] bool unmap(GuestLinear linear, uint64_t pages);
  /// Maps all of guest RAM 1:1 (paging off); the rest of the window stays unmapped.
  [[nodiscard]] bool map_identity(const GuestMemory& mem);
  void unmap_all();

  /// Host mappings made so far (each map() call counts one; budget against vm.max_map_count).
  [[nodiscard]] uint64_t map_calls() const { return map_calls_; }

 private:
  uint8_t* reservation_ = nullptr;  ///< includes the guards
  uint8_t* base_ = nullptr;
  uint64_t map_calls_ = 0;
};

}  // namespace vmm86
