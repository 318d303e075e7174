#include "shadow-mmu/shadow_mmu.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace vmm86 {

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint32_t kLargePages = 1024;  // 4 KiB pages in a 4 MiB PSE page
constexpr uint64_t kVmasPerMap = 2;     // a mapping inside a VMA splits it in three

/// Reverse-map key: linear page and which window.
constexpr uint64_t reverse_key(bool user, uint32_t linear_page) { return (uint64_t{linear_page} << 1) | (user ? 1 : 0); }

/// vm.max_map_count less an eighth for the rest of the process (code cache, heap, libraries).
uint64_t default_budget() {
  unsigned long long limit = 65530;  // the kernel's default
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "re")) {
    if (std::fscanf(f, "%llu", &limit) != 1 || limit == 0) limit = 65530;
    std::fclose(f);
  }
  return limit - limit / 8;
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "vmm86: shadow MMU: %s\n", what);
  std::abort();
}

}  // namespace

bool ShadowMmu::init(std::string* error) {
  if (!supervisor_.reserve(error) || !user_.reserve(error)) return false;
  budget_ = default_budget();
  mode_ = PagingMode{};
  return true;
}

void ShadowMmu::set_mode(const PagingMode& mode) {
  constexpr uint32_t kCr0Bits = cr0::PG | cr0::WP | cr0::PE;
  constexpr uint32_t kCr4Bits = cr4::PSE | cr4::PGE | cr4::PAE;
  const bool structural = ((mode.cr0 ^ mode_.cr0) & kCr0Bits) || ((mode.cr4 ^ mode_.cr4) & kCr4Bits);
  const bool cr3_changed = mode.cr3 != mode_.cr3;
  const uint32_t old_cr3 = mode_.cr3;
  mode_ = mode;
  if (structural) {
    flush_all();
  } else if (cr3_changed) {
    if (paging()) {
      switch_address_space(old_cr3);
    } else {
      flush_non_global();
    }
  }
}

void ShadowMmu::switch_address_space(uint32_t old_cr3) {
  constexpr size_t kMaxPagesPerSpace = 512;
  constexpr size_t kMaxSpaces = 64;
  ++stats_.flushes;
  // Remember what the old address space had mapped (small pages only: a large page is one
  // fill anyway).
  std::vector<uint64_t> old_pages;
  for (bool user : {false, true}) {
    for (uint32_t lp : non_global_of(user)) {
      if (old_pages.size() < kMaxPagesPerSpace && !pages_of(user).at(lp).large) old_pages.push_back(reverse_key(user, lp));
    }
  }
  recent_order_.erase(std::remove(recent_order_.begin(), recent_order_.end(), old_cr3), recent_order_.end());
  recent_order_.push_back(old_cr3);
  recent_pages_[old_cr3] = std::move(old_pages);
  if (recent_order_.size() > kMaxSpaces) {
    recent_pages_.erase(recent_order_.front());
    recent_order_.erase(recent_order_.begin());
  }

  // What the new address space translates those pages to now. Walking sets A as an access
  // would: the SDM lets a processor set A bits speculatively.
  struct Want {
    uint32_t phys_page;
    bool writable;
  };
  std::unordered_map<uint64_t, Want> want;
  if (auto it = recent_pages_.find(mode_.cr3); it != recent_pages_.end()) {
    for (uint64_t key : it->second) {
      const bool user = key & 1;
      const auto lp = static_cast<uint32_t>(key >> 1);
      const WalkResult w =
          walk_page_tables(mem_, mode_, GuestLinear{lp << kPageShift}, AccessKind{false, user, false}, true);
      const auto pp = static_cast<uint32_t>(w.phys.value >> kPageShift);
      if (!w.ok || w.large_page || (w.global && (mode_.cr4 & cr4::PGE)) || !mappable(pp)) continue;
      want.emplace(key, Want{pp, w.writable && w.dirty && !is_code_page(pp)});
    }
  }

  // Keep exact matches; drop everything else that is not global (with CR4.PGE clear,
  // nothing is global).
  for (bool user : {false, true}) {
    std::vector<uint32_t> victims;
    for (uint32_t lp : non_global_of(user)) {
      const Mapping& m = pages_of(user).at(lp);
      auto w = want.find(reverse_key(user, lp));
      if (w != want.end() && !m.large && w->second.phys_page == m.phys_page && w->second.writable == m.writable) {
        want.erase(w);
        ++stats_.switch_kept;
        continue;
      }
      victims.push_back(lp);
    }
    withdraw_pages(user, std::move(victims));
  }
  // Map ahead what the new address space will touch again.
  for (const auto& [key, w] : want) {
    Region region;
    region.linear_page = static_cast<uint32_t>(key >> 1);
    region.phys_page = w.phys_page;
    region.writable = w.writable;
    if (!map_region(key & 1, region)) break;
    ++stats_.switch_prefetched;
  }
}

void ShadowMmu::flush_non_global() {
  const bool keep_global = (mode_.cr4 & cr4::PGE) != 0;
  drop(false, keep_global);
  drop(true, keep_global);
  ++stats_.flushes;
}

void ShadowMmu::flush_all() {
  drop_all(false);
  drop_all(true);
  ++stats_.global_flushes;
}

void ShadowMmu::invlpg(uint32_t linear) {
  ++stats_.invlpgs;
  const uint32_t page = linear >> kPageShift;
  for (bool user : {false, true}) {
    PageMap& map = pages_of(user);
    auto it = map.find(page);
    if (it == map.end()) continue;
    // A 4 MiB page is one TLB entry: all of it goes, with any 4 KiB page still mapped in
    // its range (from before the guest turned a table into a large page, or back).
    const bool large = it->second.large;
    const uint32_t first = large ? page & ~(kLargePages - 1) : page;
    const uint32_t count = large ? kLargePages : 1;
    for (uint32_t p = first; p < first + count; ++p) forget(user, p);
    (void)withdraw(user, first, count);
  }
}

void ShadowMmu::forget(bool user, uint32_t linear_page) {
  PageMap& map = pages_of(user);
  auto it = map.find(linear_page);
  if (it == map.end()) return;
  auto rit = reverse_.find(it->second.phys_page);
  if (rit != reverse_.end()) {
    auto& v = rit->second;
    v.erase(std::remove(v.begin(), v.end(), reverse_key(user, linear_page)), v.end());
    if (v.empty()) reverse_.erase(rit);
  }
  if (!it->second.global) non_global_of(user).erase(linear_page);
  map.erase(it);
}

bool ShadowMmu::withdraw(bool user, uint32_t linear_page, uint32_t pages) {
  if (window(user).unmap(GuestLinear{linear_page << kPageShift}, pages)) return true;
  // At vm.max_map_count the host cannot split a mapping to take one page out; emptying
  // the whole window needs no split. Dropping more than asked is always allowed.
  ++stats_.evictions;
  drop_all(user);
  return false;
}

void ShadowMmu::drop_all(bool user) {
  PageMap& map = pages_of(user);
  if (map.empty() && window(user).vma_bound() <= 1) return;
  while (!map.empty()) forget(user, map.begin()->first);
  if (!window(user).unmap_all()) fatal("cannot empty a guest window: stale guest mappings would stay visible");
}

void ShadowMmu::drop(bool user, bool keep_global) {
  if (!keep_global) {
    drop_all(user);
    return;
  }
  const auto& non_global = non_global_of(user);
  withdraw_pages(user, std::vector<uint32_t>(non_global.begin(), non_global.end()));
}

void ShadowMmu::withdraw_pages(bool user, std::vector<uint32_t> pages) {
  std::sort(pages.begin(), pages.end());
  for (uint32_t linear_page : pages) forget(user, linear_page);
  // Unmap runs of consecutive pages with one call each.
  for (size_t i = 0; i < pages.size();) {
    size_t j = i + 1;
    while (j < pages.size() && pages[j] == pages[j - 1] + 1) ++j;
    if (!withdraw(user, pages[i], static_cast<uint32_t>(j - i))) return;  // the whole window went
    i = j;
  }
}

bool ShadowMmu::mappable(uint32_t phys_page) const {
  const GuestPhys addr{uint64_t{phys_page} << kPageShift};
  return mem_.in_ram(addr, kPageSize) && mem_.kind_at(addr) == PhysKind::Ram;
}

bool ShadowMmu::make_room(bool user, uint64_t vmas, bool may_evict) {
  if (host_mappings() + vmas <= budget_) return true;
  if (!may_evict) return false;
  // The bound only grows between counts while the kernel merges neighbours: count for
  // real, and evict unless that leaves slack, so the next count is many fills away.
  ++stats_.vma_recounts;
  (void)supervisor_.recount_vmas();
  (void)user_.recount_vmas();
  const uint64_t low_water = budget_ - budget_ / 8;
  if (host_mappings() + vmas <= low_water) return true;
  // The window not in use now goes first: it is the least recently used one.
  for (bool victim : {!user, user}) {
    ++stats_.evictions;
    drop_all(victim);
    if (host_mappings() + vmas <= low_water) break;
  }
  return true;
}

bool ShadowMmu::map_run(bool user, const Region& region, uint32_t first, uint32_t count, bool writable) {
  const uint32_t linear_page = region.linear_page + first;
  const uint32_t phys_page = region.phys_page + first;
  if (!window(user).map(GuestLinear{linear_page << kPageShift}, mem_, GuestPhys{uint64_t{phys_page} << kPageShift},
                        count, writable)) {
    return false;
  }
  PageMap& map = pages_of(user);
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t lp = linear_page + i, pp = phys_page + i;
    auto it = map.find(lp);
    const bool known = it != map.end() && it->second.phys_page == pp;
    if (!known) forget(user, lp);  // it showed another frame before (a stale translation)
    map.insert_or_assign(lp, Mapping{pp, region.global, writable, region.large});
    if (region.global) {
      non_global_of(user).erase(lp);
    } else {
      non_global_of(user).insert(lp);
    }
    if (!known) reverse_[pp].push_back(reverse_key(user, lp));
  }
  stats_.pages_mapped += count;
  return true;
}

bool ShadowMmu::map_region(bool user, const Region& region) {
  // Runs of pages with one protection: RAM only (a 4 MiB page or the identity may cover
  // an MMIO hole), read-only where translated code lives or until the guest's D is set.
  struct Run {
    uint32_t first = 0, count = 0;
    bool writable = false;
  };
  auto protection = [&](uint32_t i) {  // -1: not mappable, 0: read-only, 1: writable
    const uint32_t pp = region.phys_page + i;
    if (!mappable(pp)) return -1;
    return region.writable && !is_code_page(pp) ? 1 : 0;
  };
  std::vector<Run> runs;
  size_t target = 0;
  for (uint32_t i = 0; i < region.pages;) {
    const int prot = protection(i);
    uint32_t j = i + 1;
    while (j < region.pages && protection(j) == prot) ++j;
    if (prot >= 0) {
      if (region.target >= i && region.target < j) target = runs.size();
      runs.push_back(Run{i, j - i, prot == 1});
    }
    i = j;
  }
  // The faulting page is needed and may evict; its neighbours are prefetch and may not.
  const Run& need = runs[target];
  if (!make_room(user, kVmasPerMap, true)) return false;
  if (!map_run(user, region, need.first, need.count, need.writable)) {
    // The process as a whole is at vm.max_map_count (the budget is only ours): make room.
    ++stats_.evictions;
    drop_all(false);
    drop_all(true);
    if (!map_run(user, region, need.first, need.count, need.writable)) return false;
  }
  for (size_t k = 0; k < runs.size(); ++k) {
    if (k == target) continue;
    const Run& run = runs[k];
    if (!make_room(user, kVmasPerMap, false) || !map_run(user, region, run.first, run.count, run.writable)) break;
  }
  return true;
}

void ShadowMmu::extend_to_neighbours(uint32_t linear, Region* region) const {
  // A neighbour joins the fill when the guest already used it (A set, and D as the faulting
  // page has it: the CPU need not update either when it caches that translation), with the
  // same permissions and the next frame, so that one host mapping covers the run. This is
  // the TLB prefetch the SDM allows; it saves a host fault per page of a sequential walk.
  constexpr uint32_t kMaxEachSide = 15;
  constexpr uint32_t kSameBits = 0x167;  // P RW US A D G
  uint32_t pde = 0;
  if (!mem_.read(GuestPhys{(mode_.cr3 & ~kPageMask) + (linear >> 22) * 4u}, &pde, 4)) return;
  const uint64_t table = pde & ~kPageMask;
  const uint32_t index = (linear >> kPageShift) & 0x3FF;
  auto pte_at = [&](uint32_t i, uint32_t* pte) { return mem_.read(GuestPhys{table + i * 4u}, pte, 4); };
  uint32_t target_pte = 0;
  if (!pte_at(index, &target_pte)) return;
  auto joins = [&](uint32_t i) {
    uint32_t pte = 0;
    const auto delta = static_cast<int32_t>(i) - static_cast<int32_t>(index);
    return pte_at(i, &pte) && (pte & kSameBits) == (target_pte & kSameBits) &&
           static_cast<int64_t>(pte >> kPageShift) == static_cast<int64_t>(target_pte >> kPageShift) + delta;
  };
  uint32_t first = index, last = index;
  while (first > 0 && index - first < kMaxEachSide && joins(first - 1)) --first;
  while (last < 1023 && last - index < kMaxEachSide && joins(last + 1)) ++last;
  region->target = index - first;
  region->linear_page -= region->target;
  region->phys_page -= region->target;
  region->pages = last - first + 1;
}

FillResult ShadowMmu::fill_page(bool user, uint32_t linear, bool write) {
  FillResult result;
  result.linear = linear;
  WalkResult walk;
  if (paging()) {
    walk = walk_page_tables(mem_, mode_, GuestLinear{linear}, AccessKind{write, user, false}, true);
  } else {
    walk.ok = true;
    walk.phys = GuestPhys{linear};
    walk.writable = walk.dirty = true;
  }
  if (!walk.ok) {
    result.outcome = FillOutcome::GuestPageFault;
    result.error_code = walk.error_code;
    return result;
  }
  result.phys = walk.phys;
  const auto phys_page = static_cast<uint32_t>(walk.phys.value >> kPageShift);
  if (!mappable(phys_page)) {
    result.outcome = FillOutcome::Mmio;
    return result;
  }
  if (write && is_code_page(phys_page)) {
    result.outcome = FillOutcome::CodeWrite;
    return result;
  }
  // Paging off maps the identity in 4 MiB chunks, like a large page: one fill stays cheap
  // however large guest RAM is.
  const bool large = !paging() || walk.large_page;
  const uint32_t linear_page = linear >> kPageShift;
  Region region;
  region.target = large ? linear_page & (kLargePages - 1) : 0;
  region.linear_page = linear_page - region.target;
  region.phys_page = phys_page - region.target;
  region.pages = large ? kLargePages : 1;
  if (!large) extend_to_neighbours(linear, &region);
  // Writable only once the guest's D bit is set, so that the first write is seen and sets it.
  region.writable = walk.writable && walk.dirty;
  region.global = paging() && walk.global && (mode_.cr4 & cr4::PGE) != 0;
  region.large = large;
  if (!map_region(user, region)) {
    ++stats_.map_failures;
    result.outcome = FillOutcome::Mmio;  // the interpreter reaches RAM without the window
  }
  return result;
}

FillResult ShadowMmu::fill(bool user_window, uint32_t linear, bool write) {
  const uint64_t start = now_ns();
  ++stats_.fills;
  const FillResult result = fill_page(user_window, linear, write);
  switch (result.outcome) {
    case FillOutcome::Mapped: break;
    case FillOutcome::GuestPageFault: ++stats_.guest_page_faults; break;
    case FillOutcome::Mmio: ++stats_.mmio_faults; break;
    case FillOutcome::CodeWrite: ++stats_.code_write_faults; break;
  }
  stats_.fill_ns += now_ns() - start;
  return result;
}

void ShadowMmu::protect_code_page(uint64_t phys_page) {
  if (!code_pages_.insert(phys_page).second) return;
  auto rit = reverse_.find(static_cast<uint32_t>(phys_page));
  if (rit == reverse_.end()) return;
  const std::vector<uint64_t> keys = rit->second;  // forget() below edits the original
  for (uint64_t key : keys) {
    const bool user = key & 1;
    const auto lp = static_cast<uint32_t>(key >> 1);
    PageMap& map = pages_of(user);
    auto it = map.find(lp);
    if (it == map.end() || !it->second.writable) continue;
    if (window(user).protect(GuestLinear{lp << kPageShift}, 1, false)) {
      it->second.writable = false;
    } else {
      forget(user, lp);  // no split possible: take the page out instead
      (void)withdraw(user, lp, 1);
    }
  }
}

void ShadowMmu::unprotect_code_page(uint64_t phys_page) { code_pages_.erase(phys_page); }

}  // namespace vmm86
