#include "shadow-mmu/code_page_set.h"

#include "shadow-mmu/shadow_mmu.h"

namespace vmm86 {

CodePageSet::CodePageSet(uint64_t ram_pages)
    : ram_pages_(ram_pages), holders_(std::make_unique<std::atomic<uint8_t>[]>(ram_pages)) {}

bool CodePageSet::add(PhysPage page, unsigned cpu) {
  const auto bit = static_cast<uint8_t>(1u << cpu);
  const uint64_t p = page.value;
  if (p < ram_pages_) return (holders_[p].fetch_or(bit, std::memory_order_acq_rel) & bit) == 0;
  const std::lock_guard lock(beyond_ram_lock_);
  uint8_t& h = beyond_ram_[p];
  const bool added = (h & bit) == 0;
  h |= bit;
  return added;
}

void CodePageSet::remove(PhysPage page, unsigned cpu) {
  const auto bit = static_cast<uint8_t>(1u << cpu);
  const uint64_t p = page.value;
  if (p < ram_pages_) {
    holders_[p].fetch_and(static_cast<uint8_t>(~bit), std::memory_order_acq_rel);
    return;
  }
  const std::lock_guard lock(beyond_ram_lock_);
  if (auto it = beyond_ram_.find(p); it != beyond_ram_.end() && (it->second &= static_cast<uint8_t>(~bit)) == 0) {
    beyond_ram_.erase(it);
  }
}

void CodePageSet::protect_everywhere(PhysPage page) {
  if (page.value >= ram_pages_) return;  // never mapped in a window
  for (ShadowMmu* mmu : mmus_) {
    if (mmu) mmu->protect_mappings(page);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

void CodePageSet::written_by(PhysPage page, unsigned writer) const {
  if (!foreign_write_) return;
  const uint8_t others = holders(page) & static_cast<uint8_t>(~(1u << writer));
  for (unsigned cpu = 0; cpu < kMaxCpus; ++cpu) {
    if ((others >> cpu) & 1) foreign_write_(cpu, page);
  }
}

}  // namespace vmm86
