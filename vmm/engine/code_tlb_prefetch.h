// Code TLB entries loaded ahead of use (translator/code_tlb.h): each entry a checked entry
// does not find costs a dispatcher exit, so the entries an address space is likely to need
// are walked in advance, as a CPU may load its TLB speculatively.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "shadow-mmu/shadow_mmu.h"
#include "translator/code_tlb.h"

namespace vmm86 {

class CodeTlbPrefetch {
 public:
  CodeTlbPrefetch(GuestMemory& mem, const CpuState& cpu, const ShadowMmu& mmu, CodeTlb& tlb)
      : mem_(mem), cpu_(cpu), mmu_(mmu), tlb_(tlb) {}

  /// CR3 changed: the code TLB keeps global pages, and maps ahead the code pages the new
  /// address space ran last time.
  void switch_space(uint32_t old_cr3, uint32_t new_cr3);
  /// After a code TLB miss at `eip`: the neighbours in its 16-page group that hold code.
  void prefill_around(uint32_t eip);

 private:
  /// Fills the code TLB entry of `page` from the guest's tables (if present, not global,
  /// and, with `code_pages_only`, holding translated code). True if it did.
  bool prefill(bool user, LinearPage page, bool code_pages_only);

  GuestMemory& mem_;
  const CpuState& cpu_;
  const ShadowMmu& mmu_;
  CodeTlb& tlb_;
  /// Per CR3: the code pages (CodeTlb::non_global_pages) it had when switched away from.
  std::unordered_map<uint32_t, std::vector<uint32_t>> recent_code_pages_;
};

}  // namespace vmm86
