#include "vmm/engine/smc_policy.h"

namespace vmm86 {

bool SmcPolicy::watch(PhysPage phys_page) {
  if (volatile_pages_.count(phys_page.value)) return true;
  if (!mmu_.is_code_page(phys_page)) {
    mmu_.protect_code_page(phys_page);
    // The interpreter caches whether a page is watched for code writes: it changed.
    interp_.flush_tlb();
  }
  return false;
}

void SmcPolicy::physical_write(GuestPhys addr, unsigned size) {
  const PhysPage last = GuestPhys{addr.value + size - 1}.page();
  for (PhysPage page = addr.page(); page <= last; ++page.value) {
    if (!mmu_.is_code_page(page)) continue;
    translator_.invalidate_page(page);
    if (++code_write_invalidations_[page.value] >= kVolatileAfterInvalidations) {
      volatile_pages_.insert(page.value);
      ++stats_.volatile_pages;
    }
    if (volatile_pages_.count(page.value) || !translator_.cache().has_code_on_page(page)) {
      mmu_.unprotect_code_page(page);
    }
  }
}

}  // namespace vmm86
