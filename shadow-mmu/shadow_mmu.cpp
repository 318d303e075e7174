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

constexpr uint32_t kLargePages = 1024;  // 4 KiB pages in an identity chunk (paging off)
constexpr uint64_t kVmasPerMap = 2;     // a mapping inside a VMA splits it in three

/// Address spaces whose windows survive being switched away from: a shell, the command it
/// runs and the two ends of a pipe fit.
constexpr uint32_t kSpaces = 6;

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

Status ShadowMmu::init() {
  for (uint32_t i = 0; i < 2 * kSpaces; ++i) {
    auto w = std::make_unique<Window>();
    VMM86_TRY(w->area.reserve());
    w->id = i;
    w->user = (i & 1) != 0;
    windows_.push_back(std::move(w));
  }
  for (uint32_t i = 0; i < kSpaces; ++i) spaces_.push_back(Space{windows_[2 * i].get(), windows_[2 * i + 1].get()});
  space_ = &spaces_.front();
  space_->assigned = true;
  ram_pages_ = mem_.ram_size() >> kPageShift;
  reverse_.assign(ram_pages_, {});
  if (!shared_) {
    own_code_pages_ = std::make_unique<CodePageSet>(ram_pages_);
    own_code_pages_->attach(0, this);
  }
  budget_ = default_budget();
  mode_ = PagingMode{};
  return ok_status();
}

uint64_t ShadowMmu::host_mappings() const {
  uint64_t n = 0;
  for (const auto& w : windows_) n += w->area.vma_bound();
  return n;
}

uint64_t ShadowMmu::host_map_calls() const {
  uint64_t n = 0;
  for (const auto& w : windows_) n += w->area.map_calls();
  return n;
}

size_t ShadowMmu::mapped_pages() const {
  size_t n = 0;
  for (const auto& w : windows_) n += w->map.size();
  return n;
}

void ShadowMmu::set_mode(const PagingMode& mode) {
  const std::lock_guard lock(map_lock_);
  const bool structural = paging_structure_differs(mode, mode_);
  const bool cr3_changed = mode.cr3 != mode_.cr3;
  const bool pdptes_changed = mode.pdpte != mode_.pdpte;
  mode_ = mode;
  if (structural) {
    flush_all_locked();
  } else if (cr3_changed) {
    if (paging()) {
      switch_address_space();
    } else {
      flush_non_global_locked();
    }
  } else if (pdptes_changed) {
    // The same CR3 written again over a PDPT that changed: the guest's TLB flush.
    flush_non_global_locked();
  }
}

void ShadowMmu::switch_address_space() {
  ++stats_.flushes;
  space_->last_used = ++switch_clock_;
  Space* next = nullptr;
  for (Space& sp : spaces_) {
    if (sp.assigned && sp.cr3 == mode_.cr3) next = &sp;
  }
  if (next) {
    ++stats_.space_reuses;
    space_ = next;
    revalidate(*space_->supervisor);
    revalidate(*space_->user);
  } else {
    // The least recently used pair takes the new address space.
    next = &spaces_.front();
    for (Space& sp : spaces_) {
      if (!sp.assigned) {
        next = &sp;
        break;
      }
      if (sp.last_used < next->last_used) next = &sp;
    }
    ++stats_.space_assignments;
    space_ = next;
    // Global pages stay, as in the TLB: they are the same in every address space (INVLPG
    // reaches every window, a CR4.PGE change empties them all), and the kernel's are most
    // of what a window holds. The others are revalidated against the new tables as if the
    // pair had been this address space's: processes running the same binary share its
    // text, and their other pages sit at the same addresses.
    const bool keep_global = (mode_.cr4 & cr4::PGE) != 0;
    for (Window* w : {space_->supervisor, space_->user}) {
      if (keep_global) {
        revalidate(*w);
      } else {
        drop_all(*w);
      }
    }
    space_->assigned = true;
    space_->cr3 = mode_.cr3;
  }
  space_->last_used = ++switch_clock_;
}

void ShadowMmu::revalidate(Window& w) {
  std::vector<uint32_t> victims;
  struct Remap {
    uint32_t linear_page, phys_page;
    bool writable;
  };
  std::vector<Remap> remaps;
  for (auto& [lp, source] : w.non_global) {
    const PageSource now = source_of(lp);
    if (now.valid && source.valid && now.pde == source.pde && now.pte == source.pte) continue;  // as mapped
    Mapping& m = w.map.at(lp);
    // Walking sets A as the fill did: the SDM lets a processor set A bits speculatively.
    const WalkResult walk = walk_page_tables(mem_, mode_, GuestLinear{lp << kPageShift},
                                             AccessKind{false, w.user, false}, true);
    const auto pp = static_cast<uint32_t>(walk.phys.value >> kPageShift);
    // Kept if a fresh fill would map the same frame at the same size, and no more
    // writable than a fill would (writable once D is set). Read-only where a fill would
    // map it writable is fine: the first write fills it again.
    const bool same_frame = walk.ok && pp == m.phys_page && walk.large_page == m.large &&
                            !(walk.global && (mode_.cr4 & cr4::PGE));
    const bool fill_writable = walk.writable && walk.dirty && !is_code_page(PhysPage{pp});
    if (same_frame && m.writable && !fill_writable) {
      // fork made the page copy-on-write: same frame, read-only now. An mprotect keeps the
      // mapping where dropping it would cost an unmap now and a fault and a map later.
      if (w.area.protect(GuestLinear{lp << kPageShift}, 1, false)) {
        m.writable = false;
        source = source_of(lp);  // after the walk: its A bits
        ++stats_.revalidated_protected;
        continue;
      }
    }
    if (same_frame && !(m.writable && !fill_writable)) {
      source = source_of(lp);
      continue;
    }
    // Another frame at that address now (a new process where an old one was: same binary,
    // same layout): map it in place of the old one. That costs the host call taking the old
    // frame out would, and saves a fault if the page is used, which it mostly is.
    if (!same_frame && walk.ok && !walk.large_page && !m.large && !(walk.global && (mode_.cr4 & cr4::PGE)) &&
        mappable(pp)) {
      remaps.push_back({lp, pp, fill_writable});
      continue;
    }
    victims.push_back(lp);  // gone, or copy-on-write and the mprotect failed
  }
  uint64_t remapped = 0;
  for (const Remap& r : remaps) {  // after the loop: map_run edits w.non_global
    Region region;
    region.linear_page = r.linear_page;
    region.phys_page = r.phys_page;
    region.writable = r.writable;
    if (make_room(w, kVmasPerMap, false) && map_run(w, region, 0, 1, r.writable)) {
      ++remapped;
    } else {
      victims.push_back(r.linear_page);  // the old frame must not stay visible
    }
  }
  stats_.revalidated_kept += w.non_global.size() - victims.size() - remapped;
  stats_.revalidated_remapped += remapped;
  stats_.revalidated_dropped += victims.size();
  withdraw_pages(w, std::move(victims));
}

ShadowMmu::PageSource ShadowMmu::source_of(uint32_t linear_page) const {
  PageSource s;
  if (!paging()) return s;
  // The PDE and PTE values decide the translation: PAE's PDPTEs only locate the directory
  // (no permission bits), so a PDPTE change that leaves both alike changes nothing.
  const GuestLinear linear = LinearPage{linear_page}.address();
  DirectoryEntry pde;
  if (!read_directory_entry(mem_, mode_, linear, &pde)) return s;
  s.pde = pde.value;
  if ((s.pde & pte_bits::Present) && !maps_large_page(mode_, s.pde) &&
      !read_table_entry(mem_, table_format(mode_), pte_address(mode_, s.pde, linear), &s.pte)) {
    return s;
  }
  s.valid = true;
  return s;
}

uint32_t ShadowMmu::large_region_pages() const { return paging() ? table_format(mode_).large_pages : kLargePages; }

void ShadowMmu::drop_every_space() {
  for (const auto& w : windows_) drop_all(*w);
  for (Space& sp : spaces_) sp.assigned = false;
  space_->assigned = true;
  space_->cr3 = mode_.cr3;
}

void ShadowMmu::flush_non_global() {
  const std::lock_guard lock(map_lock_);
  flush_non_global_locked();
}

void ShadowMmu::flush_non_global_locked() {
  // A TLB flush: what a fresh walk would map stays, the rest goes (all but global pages).
  for (Window* w : {space_->supervisor, space_->user}) {
    if (mode_.cr4 & cr4::PGE) {
      revalidate(*w);
    } else {
      drop_all(*w);
    }
  }
  ++stats_.flushes;
}

void ShadowMmu::flush_all() {
  const std::lock_guard lock(map_lock_);
  flush_all_locked();
}

void ShadowMmu::flush_all_locked() {
  drop_every_space();
  ++stats_.global_flushes;
}

void ShadowMmu::invlpg(GuestLinear linear) {
  const std::lock_guard lock(map_lock_);
  ++stats_.invlpgs;
  const uint32_t page = linear.page().value;
  // The windows kept for other address spaces too: a global page goes from all of them;
  // a non-global one would be revalidated on the way back anyway.
  for (const auto& w : windows_) {
    auto it = w->map.find(page);
    if (it == w->map.end()) continue;
    // A large page is one TLB entry: all of it goes, with any 4 KiB page still mapped in
    // its range (from before the guest turned a table into a large page, or back).
    const bool large = it->second.large;
    const uint32_t large_pages = large_region_pages();
    const uint32_t first = large ? page & ~(large_pages - 1) : page;
    const uint32_t count = large ? large_pages : 1;
    for (uint32_t p = first; p < first + count; ++p) forget(*w, p);
    (void)withdraw(*w, first, count);
  }
}

void ShadowMmu::forget(Window& w, uint32_t linear_page) {
  auto it = w.map.find(linear_page);
  if (it == w.map.end()) return;
  if (it->second.phys_page < ram_pages_) {
    auto& v = reverse_[it->second.phys_page];
    const uint64_t key = uint64_t{w.id} << 32 | linear_page;
    v.erase(std::remove(v.begin(), v.end(), key), v.end());
  }
  if (!it->second.global) w.non_global.erase(linear_page);
  w.map.erase(it);
}

bool ShadowMmu::withdraw(Window& w, uint32_t linear_page, uint32_t pages) {
  if (w.area.unmap(GuestLinear{linear_page << kPageShift}, pages)) return true;
  // At vm.max_map_count the host cannot split a mapping to take one page out; emptying
  // the whole window needs no split. Dropping more than asked is always allowed.
  ++stats_.evictions;
  drop_all(w);
  return false;
}

void ShadowMmu::drop_all(Window& w) {
  if (w.map.empty() && w.area.vma_bound() <= 1) return;
  // One pass over the map (erasing from its front one entry at a time rescans the empty
  // buckets each time), then the whole map at once.
  for (const auto& [linear_page, m] : w.map) {
    if (m.phys_page >= ram_pages_) continue;
    auto& v = reverse_[m.phys_page];
    const uint64_t key = uint64_t{w.id} << 32 | linear_page;
    v.erase(std::remove(v.begin(), v.end(), key), v.end());
  }
  w.map.clear();
  w.non_global.clear();
  if (!w.area.unmap_all()) fatal("cannot empty a guest window: stale guest mappings would stay visible");
}

void ShadowMmu::drop(Window& w, bool keep_global) {
  if (!keep_global) {
    drop_all(w);
    return;
  }
  std::vector<uint32_t> pages;
  pages.reserve(w.non_global.size());
  for (const auto& [lp, source] : w.non_global) pages.push_back(lp);
  withdraw_pages(w, std::move(pages));
}

void ShadowMmu::withdraw_pages(Window& w, std::vector<uint32_t> pages) {
  std::sort(pages.begin(), pages.end());
  for (uint32_t linear_page : pages) forget(w, linear_page);
  // Unmap runs of consecutive pages with one call each.
  for (size_t i = 0; i < pages.size();) {
    size_t j = i + 1;
    while (j < pages.size() && pages[j] == pages[j - 1] + 1) ++j;
    if (!withdraw(w, pages[i], static_cast<uint32_t>(j - i))) return;  // the whole window went
    i = j;
  }
}

bool ShadowMmu::mappable(uint32_t phys_page) const {
  const GuestPhys addr{uint64_t{phys_page} << kPageShift};
  return mem_.in_ram(addr, kPageSize) && mem_.kind_at(addr) == PhysKind::Ram;
}

bool ShadowMmu::make_room(const Window& w, uint64_t vmas, bool may_evict) {
  if (host_mappings() + vmas <= budget_) return true;
  if (!may_evict) return false;
  // The bound only grows between counts while the kernel merges neighbours: count for
  // real, and evict unless that leaves slack, so the next count is many fills away.
  ++stats_.vma_recounts;
  for (const auto& u : windows_) (void)u->area.recount_vmas();
  const uint64_t low_water = budget_ - budget_ / 8;
  if (host_mappings() + vmas <= low_water) return true;
  // Other address spaces go first, least recently used first; then the current window not
  // being filled; the one being filled last.
  std::vector<Space*> others;
  for (Space& sp : spaces_) {
    if (&sp != space_) others.push_back(&sp);
  }
  std::sort(others.begin(), others.end(), [](const Space* a, const Space* b) { return a->last_used < b->last_used; });
  for (Space* sp : others) {
    ++stats_.evictions;
    drop_all(*sp->supervisor);
    drop_all(*sp->user);
    sp->assigned = false;
    if (host_mappings() + vmas <= low_water) return true;
  }
  for (Window* victim : {&current(!w.user), &current(w.user)}) {
    ++stats_.evictions;
    drop_all(*victim);
    if (host_mappings() + vmas <= low_water) break;
  }
  return true;
}

bool ShadowMmu::map_run(Window& w, const Region& region, uint32_t first, uint32_t count, bool writable) {
  const uint32_t linear_page = region.linear_page + first;
  const uint32_t phys_page = region.phys_page + first;
  if (!w.area.map(GuestLinear{linear_page << kPageShift}, mem_, GuestPhys{uint64_t{phys_page} << kPageShift}, count,
                  writable)) {
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t lp = linear_page + i, pp = phys_page + i;
    auto it = w.map.find(lp);
    const bool known = it != w.map.end() && it->second.phys_page == pp;
    if (!known) forget(w, lp);  // it showed another frame before (a stale translation)
    w.map.insert_or_assign(lp, Mapping{pp, region.global, writable, region.large});
    if (region.global) {
      w.non_global.erase(lp);
    } else {
      w.non_global.insert_or_assign(lp, source_of(lp));
    }
    if (!known && pp < ram_pages_) reverse_[pp].push_back(uint64_t{w.id} << 32 | lp);
  }
  stats_.pages_mapped += count;
  return true;
}

bool ShadowMmu::map_region(Window& w, const Region& region) {
  // Runs of pages with one protection: RAM only (a 4 MiB page or the identity may cover
  // an MMIO hole), read-only where translated code lives or until the guest's D is set.
  struct Run {
    uint32_t first = 0, count = 0;
    bool writable = false;
  };
  auto protection = [&](uint32_t i) {  // -1: not mappable, 0: read-only, 1: writable
    const uint32_t pp = region.phys_page + i;
    if (!mappable(pp)) return -1;
    return region.writable && !is_code_page(PhysPage{pp}) ? 1 : 0;
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
  if (!make_room(w, kVmasPerMap, true)) return false;
  if (!map_run(w, region, need.first, need.count, need.writable)) {
    // The process as a whole is at vm.max_map_count (the budget is only ours): make room.
    ++stats_.evictions;
    drop_every_space();
    if (!map_run(w, region, need.first, need.count, need.writable)) return false;
  }
  for (size_t k = 0; k < runs.size(); ++k) {
    if (k == target) continue;
    const Run& run = runs[k];
    if (!make_room(w, kVmasPerMap, false) || !map_run(w, region, run.first, run.count, run.writable)) break;
  }
  return true;
}

void ShadowMmu::extend_to_neighbours(const Window& w, uint32_t linear, Region* region) const {
  // A neighbour joins the fill when the guest already used it (A set, and D as the faulting
  // page has it: the CPU need not update either when it caches that translation), with the
  // same permissions and the next frame, so that one host mapping covers the run. This is
  // the TLB prefetch the SDM allows; it saves a host fault per page of a sequential walk.
  constexpr uint32_t kMaxEachSide = 15;
  constexpr uint32_t kSameBits = 0x167;  // P RW US A D G
  DirectoryEntry pde;
  if (!read_directory_entry(mem_, mode_, GuestLinear{linear}, &pde)) return;
  const TableFormat format = table_format(mode_);
  const uint64_t table = pte_address(mode_, pde.value, GuestLinear{0}).value;
  const uint32_t index = (linear >> kPageShift) & (format.entries - 1);
  auto pte_at = [&](uint32_t i, uint64_t* pte) {
    return read_table_entry(mem_, format, GuestPhys{table + uint64_t{i} * format.entry_bytes}, pte);
  };
  uint64_t target_pte = 0;
  if (!pte_at(index, &target_pte)) return;
  const uint64_t target_frame = (target_pte & format.frame_mask) >> kPageShift;
  const uint32_t first_linear_page = (linear >> kPageShift) - index;
  auto joins = [&](uint32_t i) {
    uint64_t pte = 0;
    const auto delta = static_cast<int64_t>(i) - static_cast<int64_t>(index);
    // An entry with a reserved bit set faults for the guest: it never joins.
    if (!pte_at(i, &pte) || (pte & kSameBits) != (target_pte & kSameBits) || (pte & format.reserved) != 0 ||
        static_cast<int64_t>((pte & format.frame_mask) >> kPageShift) != static_cast<int64_t>(target_frame) + delta) {
      return false;
    }
    // A neighbour the window already shows at that frame needs no new mapping, and mapping
    // it again would zap its host page table entries (the next touch refaults on the host).
    // The host merges the new page's mapping with it all the same (the frames follow on).
    const auto it = w.map.find(first_linear_page + i);
    return it == w.map.end() || it->second.phys_page != (pte & format.frame_mask) >> kPageShift;
  };
  uint32_t first = index, last = index;
  while (first > 0 && index - first < kMaxEachSide && joins(first - 1)) --first;
  while (last + 1 < format.entries && last - index < kMaxEachSide && joins(last + 1)) ++last;
  region->target = index - first;
  region->linear_page -= region->target;
  region->phys_page -= region->target;
  region->pages = last - first + 1;
}

FillResult ShadowMmu::fill_page(bool user, GuestLinear linear, bool write) {
  FillResult result;
  result.linear = linear;
  const WalkResult walk = walk_page_tables(mem_, mode_, linear, AccessKind{write, user, false}, true);
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
  if (write && is_code_page(PhysPage{phys_page})) {
    result.outcome = FillOutcome::CodeWrite;
    return result;
  }
  // Paging off maps the identity in 4 MiB chunks, like a large page: one fill stays cheap
  // however large guest RAM is.
  // With A20 masked, linear 1 MiB..2 MiB is physical 0..1 MiB again: no run of pages is
  // contiguous across bit 20, so each page is mapped alone.
  const bool a20_masked = mode_.a20_mask != kA20Enabled;
  const bool large = (!paging() || walk.large_page) && !a20_masked;
  const uint32_t large_pages = large_region_pages();
  const uint32_t linear_page = linear.page().value;
  Region region;
  region.target = large ? linear_page & (large_pages - 1) : 0;
  region.linear_page = linear_page - region.target;
  region.phys_page = phys_page - region.target;
  region.pages = large ? large_pages : 1;
  if (!large && !a20_masked) extend_to_neighbours(current(user), linear.value, &region);
  // Writable only once the guest's D bit is set, so that the first write is seen and sets it.
  region.writable = walk.writable && walk.dirty;
  region.global = paging() && walk.global && (mode_.cr4 & cr4::PGE) != 0;
  region.large = large;
  if (!map_region(current(user), region)) {
    ++stats_.map_failures;
    result.outcome = FillOutcome::Mmio;  // the interpreter reaches RAM without the window
    return result;
  }
  // A user page is not also mapped in the other privilege's window ahead of use: on this
  // host an mmap (~5 us) and the unmap when the process goes cost more than the fault it
  // would save, and most user pages are never touched by the kernel (docs/performance.md).
  return result;
}

FillResult ShadowMmu::fill(bool user_window, GuestLinear linear, bool write) {
  const std::lock_guard lock(map_lock_);
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

void ShadowMmu::protect_code_page(PhysPage page) {
  CodePageSet& set = code_pages();
  if (set.add(page, cpu_)) set.protect_everywhere(page);
}

void ShadowMmu::protect_mappings(PhysPage page) {
  const uint64_t phys_page = page.value;
  if (phys_page >= ram_pages_) return;  // never mapped
  const std::lock_guard lock(map_lock_);
  const std::vector<uint64_t> keys = reverse_[phys_page];  // forget() below edits the original
  for (uint64_t key : keys) {
    Window& w = *windows_[key >> 32];
    const auto lp = static_cast<uint32_t>(key);
    auto it = w.map.find(lp);
    if (it == w.map.end() || !it->second.writable) continue;
    if (w.area.protect(GuestLinear{lp << kPageShift}, 1, false)) {
      it->second.writable = false;
    } else {
      forget(w, lp);  // no split possible: take the page out instead
      (void)withdraw(w, lp, 1);
    }
  }
}

void ShadowMmu::unprotect_code_page(PhysPage page) { code_pages().remove(page, cpu_); }

}  // namespace vmm86
