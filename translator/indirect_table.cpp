#include "translator/indirect_table.h"

#include "translator/code_tlb.h"
#include "translator/translation_mode.h"

namespace vmm86 {

IndirectTable::IndirectTable(ExecContext& ctx)
    : ctx_(ctx),
      index_bits_(__builtin_cpu_supports("bmi2") ? kIndirectIndexBitsWide : kIndirectIndexBits),
      // calloc: large enough to come from mmap, so its zero pages cost nothing until used.
      entries_(static_cast<IndirectEntry*>(std::calloc(size_t{1} << index_bits_, sizeof(IndirectEntry)))) {
  ctx_.indirect_table = entries_.get();
}

void IndirectTable::remember(uint32_t eip, const Block& block) {
  IndirectEntry& e = entries_[slot(eip)];
  const LinearPage linear_page = GuestLinear{eip}.page();
  e.neg_key = 0u - (eip + ctx_.lookup_salt);
  e.neg_tag = 0u - CodeTlb::tag(linear_page, block.key.phys.page());
  e.tlb_offset = static_cast<uint32_t>(CodeTlb::entry_offset((block.key.mode & tmode::Cpl3) != 0, linear_page));
  e.host_code = reinterpret_cast<uint64_t>(entry_of(block));
}

void IndirectTable::forget(const Block& block) {
  IndirectEntry& e = entries_[slot(block.key.eip)];
  if (e.host_code == reinterpret_cast<uint64_t>(entry_of(block))) e = IndirectEntry{};
}

void IndirectTable::clear() {
  std::memset(static_cast<void*>(entries_.get()), 0, sizeof(IndirectEntry) << index_bits_);
}

}  // namespace vmm86
