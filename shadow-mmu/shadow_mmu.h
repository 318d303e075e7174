// The shadow MMU (DESIGN.md §5, docs/shadow-mmu.md): two 4 GiB windows, one for supervisor
// and one for user accesses, filled on demand from the guest's own page tables. A host
// fault on a window page comes here; the answer is a mapping (the access is retried), a
// guest #PF, an access to emulate (MMIO) or a write to a page that holds translated code.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "shadow-mmu/address_window.h"
#include "shadow-mmu/page_walker.h"
#include "vmm/arch/cpu_state.h"

namespace vmm86 {

enum class FillOutcome : uint8_t {
  Mapped,          ///< the page is mapped now: retry the access
  GuestPageFault,  ///< the guest's tables deny it: inject #PF(error_code) with CR2 = linear
  Mmio,            ///< not mappable (MMIO, ROM, unbacked, or no host mapping left): emulate the instruction
  CodeWrite,       ///< a write to a page with translated code: invalidate, then emulate
};

struct FillResult {
  FillOutcome outcome = FillOutcome::Mapped;
  uint32_t linear = 0;
  uint32_t error_code = 0;
  GuestPhys phys{};
};

/// Counters for --stats.
struct ShadowMmuStats {
  uint64_t fills = 0;
  uint64_t pages_mapped = 0;
  uint64_t guest_page_faults = 0;
  uint64_t mmio_faults = 0;
  uint64_t code_write_faults = 0;
  uint64_t flushes = 0;         ///< CR3 writes: non-global mappings dropped
  uint64_t global_flushes = 0;  ///< everything dropped (CR0/CR4 changes, flush_all)
  uint64_t invlpgs = 0;
  uint64_t fill_ns = 0;          ///< time spent in fill()
  uint64_t vma_recounts = 0;     ///< exact counts of host mappings (near the budget)
  uint64_t evictions = 0;        ///< windows emptied to stay under the mapping budget
  uint64_t map_failures = 0;     ///< fills answered Mmio because the host refused a mapping
  uint64_t switch_kept = 0;      ///< pages left mapped across a CR3 switch (same translation)
  uint64_t switch_prefetched = 0;  ///< pages mapped ahead on a CR3 switch (no fault needed)
};

class ShadowMmu {
 public:
  explicit ShadowMmu(GuestMemory& mem) : mem_(mem) {}
  ShadowMmu(const ShadowMmu&) = delete;
  ShadowMmu& operator=(const ShadowMmu&) = delete;

  /// Reserves both windows; sets the mapping budget from vm.max_map_count.
  [[nodiscard]] bool init(std::string* error);

  [[nodiscard]] AddressWindow& window(bool user) { return user ? user_ : supervisor_; }
  [[nodiscard]] const PagingMode& mode() const { return mode_; }

  /// The guest changed CR0, CR3 or CR4. Drops what the change makes stale: a CR3 change
  /// keeps global pages when CR4.PGE is set; a change of PG, WP, PSE or PGE drops all.
  void set_mode(const PagingMode& mode);
  /// MOV to CR3 with the value it already has (how Linux flushes its own TLB; set_mode()
  /// sees no change): drops the non-global mappings (all of them without CR4.PGE).
  void flush_non_global();
  /// INVLPG: forget one page in both windows (all of it for a 4 MiB page).
  void invlpg(uint32_t linear);
  /// Drops every mapping (e.g. a write to the guest's page tables we cannot track yet).
  void flush_all();

  /// A host fault at `linear` in the user or supervisor window.
  [[nodiscard]] FillResult fill(bool user_window, uint32_t linear, bool write);

  /// Translated code now lives on this guest-physical page: map it read-only everywhere.
  void protect_code_page(uint64_t phys_page);
  /// No translated code is left on this page: writes may map it writable again.
  void unprotect_code_page(uint64_t phys_page);
  [[nodiscard]] bool is_code_page(uint64_t phys_page) const { return code_pages_.count(phys_page) != 0; }

  /// Host VMAs both windows may hold before a fill empties a window (default: 7/8 of
  /// vm.max_map_count; the rest is left to the rest of the process).
  void set_mapping_budget(uint64_t vmas) { budget_ = vmas; }
  [[nodiscard]] uint64_t mapping_budget() const { return budget_; }
  /// Upper bound of the host VMAs the windows hold now.
  [[nodiscard]] uint64_t host_mappings() const { return supervisor_.vma_bound() + user_.vma_bound(); }

  [[nodiscard]] const ShadowMmuStats& stats() const { return stats_; }
  [[nodiscard]] size_t mapped_pages() const { return supervisor_map_.size() + user_map_.size(); }

 private:
  struct Mapping {
    uint32_t phys_page = 0;
    bool global = false;
    bool writable = false;
    bool large = false;  ///< part of a 4 MiB guest page (invalidated as a whole)
  };
  using PageMap = std::unordered_map<uint32_t, Mapping>;  // linear page -> mapping

  /// Pages of one fill: a 4 KiB page, or the 4 MiB page (or identity chunk) around it.
  struct Region {
    uint32_t linear_page = 0;
    uint32_t phys_page = 0;
    uint32_t pages = 1;
    uint32_t target = 0;  ///< index of the faulting page in the region
    bool writable = false, global = false, large = false;
  };

  [[nodiscard]] FillResult fill_page(bool user, uint32_t linear, bool write);
  /// Grows a 4 KiB fill over neighbours the guest has used, whose frames follow on.
  void extend_to_neighbours(uint32_t linear, Region* region) const;
  /// Maps the faulting page (evicting if it must) and, while there is room, the rest of
  /// the region. False when the host refused the faulting page even after eviction.
  [[nodiscard]] bool map_region(bool user, const Region& region);
  /// Maps one run of pages that share one protection and records them.
  [[nodiscard]] bool map_run(bool user, const Region& region, uint32_t first, uint32_t count, bool writable);
  /// Makes room for `vmas` more host mappings. Without `may_evict`, only checks.
  [[nodiscard]] bool make_room(bool user, uint64_t vmas, bool may_evict);
  [[nodiscard]] bool mappable(uint32_t phys_page) const;

  /// Removes a page from the bookkeeping (not from the window).
  void forget(bool user, uint32_t linear_page);
  void drop(bool user, bool keep_global);
  /// Forgets and unmaps `pages` (runs of neighbours with one call each).
  void withdraw_pages(bool user, std::vector<uint32_t> pages);
  void drop_all(bool user);
  /// Unmaps pages from a window; when the host cannot split a mapping, empties the whole
  /// window and returns false.
  [[nodiscard]] bool withdraw(bool user, uint32_t linear_page, uint32_t pages);
  [[nodiscard]] bool paging() const { return (mode_.cr0 & cr0::PG) != 0; }
  [[nodiscard]] PageMap& pages_of(bool user) { return user ? user_map_ : supervisor_map_; }
  /// The non-global pages of a window: what a CR3 switch must look at. Kept apart because
  /// the global ones (the kernel's 4 MiB pages) are tens of thousands.
  [[nodiscard]] std::unordered_set<uint32_t>& non_global_of(bool user) { return non_global_[user ? 1 : 0]; }
  /// A CR3 switch: instead of dropping every non-global mapping and faulting them back,
  /// walk the new tables for the pages this address space used last time; keep what
  /// translates the same, map what changed or was missing, drop the rest.
  void switch_address_space(uint32_t old_cr3);

  GuestMemory& mem_;
  AddressWindow supervisor_;
  AddressWindow user_;
  PagingMode mode_{};
  PageMap supervisor_map_;
  PageMap user_map_;
  std::unordered_set<uint32_t> non_global_[2];
  /// guest-physical page -> linear pages mapping it (bit 0 of each key: user window).
  std::unordered_map<uint32_t, std::vector<uint64_t>> reverse_;
  std::unordered_set<uint64_t> code_pages_;
  uint64_t budget_ = 0;
  ShadowMmuStats stats_;
  /// Per CR3: the non-global 4 KiB pages (linear page << 1 | user window) it had mapped
  /// when it was switched away from. Bounded in entries and in address spaces.
  std::unordered_map<uint32_t, std::vector<uint64_t>> recent_pages_;
  std::vector<uint32_t> recent_order_;  ///< CR3 values, oldest first
};

}  // namespace vmm86
