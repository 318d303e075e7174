#include "vmm/engine/coherence.h"

namespace vmm86 {

void TranslationCoherence::sync() {
  const PagingMode want = paging_mode_of(cpu_);
  const PagingMode& have = mmu_.mode();
  if (same_paging_mode(want, have)) return;
  const uint32_t old_cr3 = have.cr3;
  const bool pdptes_changed = want.pdpte != have.pdpte;
  const bool structural = paging_structure_differs(want, have);
  mmu_.set_mode(want);
  if (structural) {
    // Paging turned on or off, PGE/PSE/WP/PAE changed: even global pages may translate anew.
    global_salt_ = global_salt_ * 0x9E3779B1u + 0x3C6EF372u;
    code_tlb_.flush_all();
  } else if (want.cr3 != old_cr3) {
    prefetch_.switch_space(old_cr3, want.cr3);
  } else if (pdptes_changed) {
    code_tlb_.flush_non_global();  // PAE: the same CR3 reloaded over a changed PDPT
  }
  interp_.flush_tlb();
}

void TranslationCoherence::paging_written() {
  const PagingMode& have = mmu_.mode();
  if (!same_paging_mode(paging_mode_of(cpu_), have)) return sync();
  mmu_.flush_non_global();
  code_tlb_.flush_non_global();
  interp_.flush_tlb();
}

void TranslationCoherence::physical_map_changed() {
  mmu_.flush_all();
  global_salt_ = global_salt_ * 0x9E3779B1u + 0x3C6EF372u;
  code_tlb_.flush_all();
  interp_.flush_tlb();
}

void TranslationCoherence::invlpg(GuestLinear linear) {
  mmu_.invlpg(linear);
  code_tlb_.invlpg(linear);
  interp_.invalidate_page(linear);
}

}  // namespace vmm86
