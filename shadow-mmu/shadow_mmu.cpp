#include "shadow-mmu/shadow_mmu.h"

#include <time.h>

#include <algorithm>

namespace vmm86 {

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint32_t kLargePages = 1024;  // 4 KiB pages in a 4 MiB PSE page

/// Reverse-map key: linear page and which window.
constexpr uint64_t reverse_key(bool user, uint32_t linear_page) { return (uint64_t{linear_page} << 1) | (user ? 1 : 0); }

}  // namespace

bool ShadowMmu::init(std::string* error) {
  if (!supervisor_.reserve(error) || !user_.reserve(error)) return false;
  set_mode(PagingMode{});
  return true;
}

void ShadowMmu::set_mode(const PagingMode& mode) {
  constexpr uint32_t kCr0Bits = cr0::PG | cr0::WP | cr0::PE;
  constexpr uint32_t kCr4Bits = cr4::PSE | cr4::PGE | cr4::PAE;
  const bool structural = ((mode.cr0 ^ mode_.cr0) & kCr0Bits) || ((mode.cr4 ^ mode_.cr4) & kCr4Bits);
  const bool cr3_changed = mode.cr3 != mode_.cr3;
  const bool first = supervisor_map_.empty() && user_map_.empty();
  mode_ = mode;
  if (structural || first) {
    flush_all();
  } else if (cr3_changed) {
    flush_non_global();
  }
}

void ShadowMmu::flush_non_global() {
  const bool keep_global = (mode_.cr4 & cr4::PGE) != 0;
  drop(false, keep_global);
  drop(true, keep_global);
  ++stats_.flushes;
}

void ShadowMmu::flush_all() {
  drop(false, false);
  drop(true, false);
  ++stats_.global_flushes;
}

void ShadowMmu::invlpg(uint32_t linear) {
  ++stats_.invlpgs;
  const uint32_t page = linear >> kPageShift;
  for (bool user : {false, true}) {
    PageMap& map = user ? user_map_ : supervisor_map_;
    auto it = map.find(page);
    if (it == map.end()) continue;
    if (!it->second.large) {
      drop_page(user, page);
      continue;
    }
    // A 4 MiB page is one TLB entry: all of it goes.
    const uint32_t first = page & ~(kLargePages - 1);
    for (uint32_t p = first; p < first + kLargePages; ++p) {
      auto lit = map.find(p);
      if (lit != map.end() && lit->second.large) forget(user, p);
    }
    (void)window(user).unmap(GuestLinear{first << kPageShift}, kLargePages);
  }
}

void ShadowMmu::forget(bool user, uint32_t linear_page) {
  PageMap& map = user ? user_map_ : supervisor_map_;
  auto it = map.find(linear_page);
  if (it == map.end()) return;
  auto rit = reverse_.find(it->second.phys_page);
  if (rit != reverse_.end()) {
    auto& v = rit->second;
    v.erase(std::remove(v.begin(), v.end(), reverse_key(user, linear_page)), v.end());
    if (v.empty()) reverse_.erase(rit);
  }
  map.erase(it);
}

void ShadowMmu::drop_page(bool user, uint32_t linear_page) {
  forget(user, linear_page);
  (void)window(user).unmap(GuestLinear{linear_page << kPageShift}, 1);
}

void ShadowMmu::drop(bool user, bool keep_global) {
  PageMap& map = user ? user_map_ : supervisor_map_;
  if (!keep_global) {
    // Everything goes: one call instead of one per page.
    if (!map.empty()) window(user).unmap_all();
    std::vector<uint32_t> all;
    all.reserve(map.size());
    for (auto& entry : map) all.push_back(entry.first);
    for (uint32_t linear_page : all) forget(user, linear_page);
    return;
  }
  std::vector<uint32_t> victims;
  for (auto& [linear_page, m] : map) {
    if (!m.global) victims.push_back(linear_page);
  }
  std::sort(victims.begin(), victims.end());
  // Unmap runs of consecutive pages with one call each.
  for (size_t i = 0; i < victims.size();) {
    size_t j = i + 1;
    while (j < victims.size() && victims[j] == victims[j - 1] + 1) ++j;
    (void)window(user).unmap(GuestLinear{victims[i] << kPageShift}, j - i);
    i = j;
  }
  for (uint32_t linear_page : victims) forget(user, linear_page);
}

void ShadowMmu::map_range(bool user, uint32_t linear_page, uint32_t phys_page, uint32_t pages, bool writable,
                          bool global, bool large) {
  PageMap& map = user ? user_map_ : supervisor_map_;
  AddressWindow& w = window(user);
  (void)w.map(GuestLinear{linear_page << kPageShift}, mem_, GuestPhys{uint64_t{phys_page} << kPageShift}, pages,
              writable);
  for (uint32_t i = 0; i < pages; ++i) {
    const uint32_t lp = linear_page + i;
    const uint32_t pp = phys_page + i;
    auto [it, inserted] = map.insert_or_assign(lp, Mapping{pp, global, writable, large});
    (void)inserted;
    auto& rev = reverse_[pp];
    const uint64_t key = reverse_key(user, lp);
    if (std::find(rev.begin(), rev.end(), key) == rev.end()) rev.push_back(key);
    // Pages with translated code stay read-only so that writes to them are seen.
    if (writable && code_pages_.count(pp)) {
      (void)w.protect(GuestLinear{lp << kPageShift}, 1, false);
      it->second.writable = false;
    }
  }
  stats_.pages_mapped += pages;
}

FillResult ShadowMmu::fill(bool user_window, uint32_t linear, bool write) {
  const uint64_t start = now_ns();
  ++stats_.fills;
  FillResult result;
  result.linear = linear;
  const uint32_t linear_page = linear >> kPageShift;

  WalkResult walk;
  if (paging()) {
    walk = walk_page_tables(mem_, mode_, GuestLinear{linear}, AccessKind{write, user_window, false}, true);
  } else {
    walk.ok = true;
    walk.phys = GuestPhys{linear};
    walk.writable = walk.user = walk.dirty = true;
  }
  if (!walk.ok) {
    ++stats_.guest_page_faults;
    result.outcome = FillOutcome::GuestPageFault;
    result.error_code = walk.error_code;
    stats_.fill_ns += now_ns() - start;
    return result;
  }
  result.phys = walk.phys;
  const auto phys_page = static_cast<uint32_t>(walk.phys.value >> kPageShift);
  if (mem_.kind_at(walk.phys) != PhysKind::Ram || !mem_.in_ram(GuestPhys{uint64_t{phys_page} << kPageShift}, kPageSize)) {
    ++stats_.mmio_faults;
    result.outcome = FillOutcome::Mmio;
    stats_.fill_ns += now_ns() - start;
    return result;
  }
  if (write && code_pages_.count(phys_page)) {
    ++stats_.code_write_faults;
    result.outcome = FillOutcome::CodeWrite;
    stats_.fill_ns += now_ns() - start;
    return result;
  }
  // Writable only once the guest's D bit is set, so that the first write is seen and sets it.
  const bool writable = walk.writable && walk.dirty;
  const bool global = walk.global && (mode_.cr4 & cr4::PGE);
  if (!paging()) {
    // Paging off: all of RAM in one mapping (identity).
    const auto ram_pages = static_cast<uint32_t>(mem_.ram_size() >> kPageShift);
    map_range(user_window, 0, 0, ram_pages, true, false, false);
  } else if (walk.large_page) {
    const uint32_t first_linear = linear_page & ~(kLargePages - 1);
    const uint32_t first_phys = phys_page & ~(kLargePages - 1);
    if (mem_.in_ram(GuestPhys{uint64_t{first_phys} << kPageShift}, uint64_t{kLargePages} << kPageShift) &&
        mem_.kind_at(GuestPhys{uint64_t{first_phys} << kPageShift}) == PhysKind::Ram) {
      map_range(user_window, first_linear, first_phys, kLargePages, writable, global, true);
    } else {
      map_range(user_window, linear_page, phys_page, 1, writable, global, false);
    }
  } else {
    map_range(user_window, linear_page, phys_page, 1, writable, global, false);
  }
  stats_.fill_ns += now_ns() - start;
  return result;
}

void ShadowMmu::protect_code_page(uint64_t phys_page) {
  if (!code_pages_.insert(phys_page).second) return;
  auto rit = reverse_.find(static_cast<uint32_t>(phys_page));
  if (rit == reverse_.end()) return;
  for (uint64_t key : rit->second) {
    const bool user = key & 1;
    const auto lp = static_cast<uint32_t>(key >> 1);
    PageMap& map = user ? user_map_ : supervisor_map_;
    auto it = map.find(lp);
    if (it != map.end() && it->second.writable) {
      (void)window(user).protect(GuestLinear{lp << kPageShift}, 1, false);
      it->second.writable = false;
    }
  }
}

void ShadowMmu::unprotect_code_page(uint64_t phys_page) { code_pages_.erase(phys_page); }

}  // namespace vmm86
