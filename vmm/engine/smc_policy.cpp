#include "vmm/engine/smc_policy.h"

namespace vmm86 {

bool SmcPolicy::watch(uint64_t phys_page) {
  if (volatile_pages_.count(phys_page)) return true;
  if (!mmu_.is_code_page(phys_page)) {
    mmu_.protect_code_page(phys_page);
    // The interpreter caches whether a page is watched for code writes: it changed.
    interp_.flush_tlb();
  }
  return false;
}

void SmcPolicy::physical_write(uint64_t phys_addr, unsigned size) {
  const uint64_t first = phys_addr >> kPageShift;
  const uint64_t last = (phys_addr + size - 1) >> kPageShift;
  for (uint64_t page = first; page <= last; ++page) {
    if (!mmu_.is_code_page(page)) continue;
    translator_.invalidate_page(page);
    if (++code_write_invalidations_[page] >= kVolatileAfterInvalidations) {
      volatile_pages_.insert(page);
      ++stats_.volatile_pages;
    }
    if (volatile_pages_.count(page) || !translator_.cache().has_code_on_page(page)) mmu_.unprotect_code_page(page);
  }
}

}  // namespace vmm86
