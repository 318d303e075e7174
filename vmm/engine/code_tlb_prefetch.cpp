#include "vmm/engine/code_tlb_prefetch.h"

namespace vmm86 {

void CodeTlbPrefetch::switch_space(uint32_t old_cr3, uint32_t new_cr3) {
  constexpr size_t kRememberedSpaces = 256;
  if (recent_code_pages_.size() >= kRememberedSpaces) recent_code_pages_.clear();
  recent_code_pages_[old_cr3] = tlb_.non_global_pages();
  tlb_.flush_non_global();
  auto it = recent_code_pages_.find(new_cr3);
  if (it == recent_code_pages_.end()) return;
  for (const uint32_t entry : it->second) prefill(entry & 1, LinearPage{entry >> 1}, false);
}

bool CodeTlbPrefetch::prefill(bool user, LinearPage page, bool code_pages_only) {
  const PagingMode mode = paging_mode_of(cpu_);
  const GuestLinear linear = page.address();
  // As the CPU may: a TLB entry loaded ahead of use (the walk sets A bits, never D).
  const WalkResult w = walk_page_tables(mem_, mode, linear, AccessKind{false, user, true});
  if (!w.ok || (w.global && (cpu_.cr4 & cr4::PGE))) return false;
  // Code runs from RAM or ROM only. The entry's tag holds 20 bits of frame: a PAE frame
  // beyond 4 GiB would alias one below it.
  if (mem_.host_ptr(w.phys) == nullptr) return false;
  if (code_pages_only && !mmu_.is_code_page(w.phys.page())) return false;
  tlb_.fill(user, linear, w.phys, false, w.large_page);
  return true;
}

void CodeTlbPrefetch::prefill_around(uint32_t eip) {
  // A new process's code pages become present 16 at a time (the guest kernel's fault-around
  // on its text), and every one that holds translated code would cost an exit of its own.
  constexpr uint32_t kGroup = 16;
  const bool user = cpu_.cpl() == 3;
  const uint32_t first = (eip >> kPageShift) & ~(kGroup - 1);
  for (uint32_t page = first; page < first + kGroup; ++page) {
    if (page != eip >> kPageShift) (void)prefill(user, LinearPage{page}, true);
  }
}

}  // namespace vmm86
