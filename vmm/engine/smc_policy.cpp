#include "vmm/engine/smc_policy.h"

#include <algorithm>

namespace vmm86 {

bool SmcPolicy::watch(PhysPage phys_page) {
  if (volatile_pages_.count(phys_page.value)) return true;
  if (!mmu_.holds_code_page(phys_page)) {
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
    mmu_.code_page_written(page);  // other vCPUs' code there goes too
    drop_code(page);
  }
}

void SmcPolicy::drop_code(PhysPage page) {
  if (!mmu_.holds_code_page(page)) return;
  translator_.invalidate_page(page);
  if (++code_write_invalidations_[page.value] >= kVolatileAfterInvalidations &&
      volatile_pages_.insert(page.value).second) {
    Probation& p = probations_[page.value];
    p.until = retired_ + (probation_ << std::min(p.rounds, kMaxProbationDoublings));
    ++p.rounds;
    if (next_probation_end_ == 0 || p.until < next_probation_end_) next_probation_end_ = p.until;
    ++stats_.volatile_pages;
  }
  if (volatile_pages_.count(page.value) || !translator_.cache().has_code_on_page(page)) {
    mmu_.unprotect_code_page(page);
  }
}

void SmcPolicy::end_due_probations() {
  next_probation_end_ = 0;
  for (auto it = volatile_pages_.begin(); it != volatile_pages_.end();) {
    const uint64_t until = probations_[*it].until;
    if (retired_ < until) {
      if (next_probation_end_ == 0 || until < next_probation_end_) next_probation_end_ = until;
      ++it;
      continue;
    }
    // Its checking blocks go; the next translation there write-protects the page again.
    code_write_invalidations_.erase(*it);
    translator_.invalidate_page(PhysPage{*it});
    ++stats_.probations_ended;
    it = volatile_pages_.erase(it);
  }
}

}  // namespace vmm86
