// A guest linear address space realized as 4 GiB of host address space (DESIGN.md §5).
// Translated code reaches guest memory as `gs:[addr32 ea]` with GS base = base(): the CPU
// wraps the 32-bit effective address and adds the base, so no guest access can leave the
// window. Guard regions on both sides (PROT_NONE) absorb the few accesses that can reach
// just past 4 GiB (a multi-byte access at 0xFFFFFFFF, bit-string offsets).
//
// Host mappings: every map/protect/unmap inside the window can split a host VMA, and a
// process may hold at most vm.max_map_count of them. The window keeps an upper bound of
// the VMAs it holds (each call adds at most two) that an exact count can tighten.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"

namespace vmm86 {

class AddressWindow {
 public:
  static constexpr uint64_t kSpan = 1ull << 32;
  /// PROT_NONE on both sides of the window. 4 GiB + 1 MiB, so that translated fs:/gs:
  /// accesses of a segment they may not use directly (based at 4 GiB, any 32-bit offset,
  /// see kUnusableSegmentBase) and those that wrap past 4 GiB fault instead of reaching
  /// another mapping. Address space only: nothing is committed.
  static constexpr uint64_t kGuard = (1ull << 32) + (1ull << 20);

  AddressWindow() = default;
  AddressWindow(const AddressWindow&) = delete;
  AddressWindow& operator=(const AddressWindow&) = delete;
  ~AddressWindow();

  /// Reserves the address space (PROT_NONE).
  [[nodiscard]] Status reserve();
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
  /// False when the range is not RAM or the host refused (ENOMEM at vm.max_map_count);
  /// the window is then unchanged.
  [[nodiscard]] bool map(GuestLinear linear, const GuestMemory& mem, GuestPhys phys, uint32_t pages, bool writable);
  /// Changes protection of mapped pages (write-protect code pages, clean pages).
  [[nodiscard]] bool protect(GuestLinear linear, uint32_t pages, bool writable);
  /// Returns pages to PROT_NONE (unmapped as far as the guest can tell). Can fail near
  /// vm.max_map_count when it splits a mapping; unmap_all() cannot.
  [[nodiscard]] bool unmap(GuestLinear linear, uint64_t pages);
  /// Maps all of guest RAM 1:1 (paging off); the rest of the window stays unmapped.
  [[nodiscard]] bool map_identity(const GuestMemory& mem);
  /// Returns the whole window to PROT_NONE. Needs no VMA split (the guards are separate
  /// VMAs), so it works even at vm.max_map_count; false only if the host is broken.
  [[nodiscard]] bool unmap_all();

  /// Host mappings made so far (each map() call counts one).
  [[nodiscard]] uint64_t map_calls() const { return map_calls_; }
  /// Upper bound of the host VMAs inside the window.
  [[nodiscard]] uint64_t vma_bound() const { return vma_bound_; }
  /// Counts the window's VMAs exactly (reads /proc/self/maps: milliseconds with tens of
  /// thousands of mappings) and makes that the bound. Returns the count.
  uint64_t recount_vmas();

 private:
  uint8_t* reservation_ = nullptr;  ///< includes the guards
  uint8_t* base_ = nullptr;
  uint64_t map_calls_ = 0;
  uint64_t vma_bound_ = 1;
};

}  // namespace vmm86
