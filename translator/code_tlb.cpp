#include "translator/code_tlb.h"

#include <algorithm>
#include <cstddef>

namespace vmm86 {

CodeTlb::CodeTlb(ExecContext& ctx) : ctx_(ctx) { flush_all(); }

int32_t CodeTlb::entry_offset(bool user, LinearPage linear_page) {
  return static_cast<int32_t>(offsetof(ExecContext, code_tlb) +
                              sizeof(uint32_t) * ((user ? kCodeTlbEntries : 0) + index(linear_page)));
}

void CodeTlb::fill(bool user, GuestLinear linear, GuestPhys phys, bool global, bool large) {
  const LinearPage linear_page = linear.page();
  const uint32_t i = index(linear_page);
  clear(user, i);
  // The tag holds 20 bits of frame: a frame beyond 4 GiB (PAE) would alias one below it.
  // Code never runs from there (it is not RAM or ROM), so such an entry stays empty.
  if ((phys.page().value >> 20) != 0) return;
  if (large) ++large_in_region_[user][linear_page.value >> 10];
  ctx_.code_tlb[user][i] = tag(linear_page, phys.page());
  const bool listed = side_[user][i].listed || !global;
  if (!global && !side_[user][i].listed) local_.push_back(i | (user ? 0x80000000u : 0));
  side_[user][i] = Side{linear_page.value, true, global, large, listed};
  ++fills_;
}

void CodeTlb::clear(bool user, uint32_t i) {
  ctx_.code_tlb[user][i] = kCodeTlbEmpty;
  Side& s = side_[user][i];
  if (s.valid && s.large) --large_in_region_[user][s.linear_page >> 10];
  clears_ += s.valid;
  s.valid = false;
}

void CodeTlb::flush_non_global() {
  for (const uint32_t f : local_) {
    const bool user = f >> 31;
    const uint32_t i = f & 0x7FFFFFFFu;
    Side& s = side_[user][i];
    if (!s.global) clear(user, i);  // else refilled with a global page since
    s.listed = false;
  }
  local_.clear();
}

void CodeTlb::flush_all() {
  for (const bool user : {false, true}) {
    for (uint32_t i = 0; i < kCodeTlbEntries; ++i) {
      clear(user, i);
      side_[user][i].listed = false;
    }
  }
  local_.clear();
}

void CodeTlb::invlpg(GuestLinear linear) {
  const uint32_t page = linear.page().value;
  constexpr uint32_t kLargePagePages = 1024;  // 4 MiB / 4 KiB
  for (const bool user : {false, true}) {
    const uint32_t exact_index = index(LinearPage{page});
    const Side& exact = side_[user][exact_index];
    if (exact.valid && exact.linear_page == page) clear(user, exact_index);
    if (large_in_region_[user][page / kLargePagePages] == 0) continue;
    const uint32_t first = page & ~(kLargePagePages - 1);
    for (uint32_t p = first; p < first + kLargePagePages; ++p) {
      const Side& s = side_[user][index(LinearPage{p})];
      if (s.valid && s.large && s.linear_page == p) clear(user, index(LinearPage{p}));
    }
  }
}

std::vector<uint32_t> CodeTlb::non_global_pages() const {
  std::vector<uint32_t> pages;
  for (const uint32_t f : local_) {
    const bool user = f >> 31;
    const Side& s = side_[user][f & 0x7FFFFFFFu];
    if (s.valid && !s.global) pages.push_back(s.linear_page << 1 | (user ? 1 : 0));
  }
  return pages;
}

}  // namespace vmm86
