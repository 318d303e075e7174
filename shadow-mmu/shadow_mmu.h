// The shadow MMU (DESIGN.md §5, docs/shadow-mmu.md): 4 GiB windows, one for supervisor
// accesses and one per recent address space for user accesses, filled on demand from the
// guest's own page tables. A host
// fault on a window page comes here; the answer is a mapping (the access is retried), a
// guest #PF, an access to emulate (MMIO) or a write to a page that holds translated code.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "shadow-mmu/address_window.h"
#include "shadow-mmu/code_page_set.h"
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
  GuestLinear linear{};
  /// GuestPageFault: the error code of the host access's #PF. The engine does not raise it:
  /// the interpreter re-executes the instruction and raises the fault the guest instruction
  /// takes first (docs/design-notes.md, "Engine: exit record, coherence point, fault
  /// path"); tests/shadow-mmu checks it against the walker.
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
  uint64_t fill_ns = 0;                ///< time spent in fill()
  uint64_t vma_recounts = 0;           ///< exact counts of host mappings (near the budget)
  uint64_t evictions = 0;              ///< windows emptied to stay under the mapping budget
  uint64_t map_failures = 0;           ///< fills answered Mmio because the host refused a mapping
  uint64_t space_reuses = 0;           ///< CR3 switches back to an address space whose windows were kept
  uint64_t space_assignments = 0;      ///< CR3 switches that emptied a pair of windows for a new one
  uint64_t revalidated_kept = 0;       ///< pages revalidations found unchanged and left mapped
  uint64_t revalidated_dropped = 0;    ///< pages revalidations found changed and took out
  uint64_t revalidated_protected = 0;  ///< ... kept, made read-only (the guest's copy-on-write)
  uint64_t revalidated_remapped = 0;   ///< pages revalidations found at another frame and mapped there
};

class ShadowMmu {
 public:
  /// Alone (one vCPU), or vCPU `cpu` of an SMP machine whose vCPUs share `code_pages`.
  explicit ShadowMmu(GuestMemory& mem) : mem_(mem) {}
  ShadowMmu(GuestMemory& mem, CodePageSet& code_pages, unsigned cpu) : mem_(mem), shared_(&code_pages), cpu_(cpu) {}
  ShadowMmu(const ShadowMmu&) = delete;
  ShadowMmu& operator=(const ShadowMmu&) = delete;

  /// Reserves both windows; sets the mapping budget from vm.max_map_count.
  [[nodiscard]] Status init();

  /// The supervisor window, or the user window of the current address space.
  [[nodiscard]] AddressWindow& window(bool user) { return current(user).area; }
  [[nodiscard]] const PagingMode& mode() const { return mode_; }

  /// The guest changed CR0, CR3 or CR4 (or, with PAE, reloaded the PDPTEs). Drops what the
  /// change makes stale: a CR3 change or a PDPTE reload keeps global pages when CR4.PGE is
  /// set; a change of PG, WP, PSE, PGE or PAE drops all.
  void set_mode(const PagingMode& mode);
  /// MOV to CR3 with the value it already has (how Linux flushes its own TLB; set_mode()
  /// sees no change): drops the non-global mappings (all of them without CR4.PGE).
  void flush_non_global();
  /// INVLPG: forget one page in both windows (all of it for a 4 MiB page).
  void invlpg(GuestLinear linear);
  /// Drops every mapping (e.g. a write to the guest's page tables we cannot track yet).
  void flush_all();

  /// A host fault at `linear` in the user or supervisor window.
  /// Runs in the SIGSEGV handler and allocates (page maps, reverse map, runs): safe only
  /// because the handler calls it when the fault interrupted translated code, never the
  /// monitor's C++ and so never the allocator (vmm/engine/fault_handler.cpp checks: the
  /// PC in a block, RSP on the return stack; it dies otherwise). Nothing else may call
  /// it from a signal handler.
  [[nodiscard]] FillResult fill(bool user_window, GuestLinear linear, bool write);

  /// This vCPU's translated code now lives on this guest-physical page: map it read-only
  /// everywhere (every vCPU's windows).
  void protect_code_page(PhysPage phys_page);
  /// No translated code of this vCPU is left on this page: once no vCPU has code there,
  /// writes may map it writable again.
  void unprotect_code_page(PhysPage phys_page);
  /// The set of code pages this MMU protects: the machine's, or its own when alone.
  [[nodiscard]] CodePageSet& code_pages() const { return shared_ ? *shared_ : *own_code_pages_; }
  /// Some vCPU has translated code on the page: writes to it must be seen.
  [[nodiscard]] bool is_code_page(PhysPage phys_page) const { return code_pages().any(phys_page); }
  /// This vCPU has translated code on the page.
  [[nodiscard]] bool holds_code_page(PhysPage phys_page) const { return code_pages().held_by(phys_page, cpu_); }
  /// This vCPU wrote the page (a code page): the other vCPUs with code there are told.
  void code_page_written(PhysPage phys_page) const { code_pages().written_by(phys_page, cpu_); }
  /// Makes the page read-only wherever this vCPU's windows map it. Any thread may call it
  /// (another vCPU protecting code it translated); it waits for a fill in progress.
  void protect_mappings(PhysPage phys_page);

  /// Host VMAs both windows may hold before a fill empties a window (default: 7/8 of
  /// vm.max_map_count; the rest is left to the rest of the process).
  void set_mapping_budget(uint64_t vmas) { budget_ = vmas; }
  [[nodiscard]] uint64_t mapping_budget() const { return budget_; }
  /// Upper bound of the host VMAs the windows hold now.
  [[nodiscard]] uint64_t host_mappings() const;
  /// Host mapping calls so far, all windows.
  [[nodiscard]] uint64_t host_map_calls() const;

  [[nodiscard]] const ShadowMmuStats& stats() const { return stats_; }
  [[nodiscard]] size_t mapped_pages() const;

 private:
  struct Mapping {
    uint32_t phys_page = 0;
    bool global = false;
    bool writable = false;
    bool large = false;  ///< part of a large guest page or identity chunk (invalidated as a whole)
  };
  using PageMap = std::unordered_map<uint32_t, Mapping>;  // linear page -> mapping
  /// The guest's PDE and (4 KiB pages) PTE of a page as its mapping was made or last
  /// confirmed, A and D included (64-bit entries with PAE). With paging off, never found
  /// unchanged.
  struct PageSource {
    uint64_t pde = 0, pte = 0;
    bool valid = false;
  };
  /// The entries translating `linear_page` in the current tables now.
  [[nodiscard]] PageSource source_of(uint32_t linear_page) const;

  /// A host window and what is mapped in it.
  struct Window {
    AddressWindow area;
    PageMap map;
    /// The non-global pages: what a CR3 switch must look at. Kept apart because the
    /// global ones (the kernel's 4 MiB pages) are tens of thousands. Each with the guest's
    /// entries it was last found mapped by, so a revalidation that finds them unchanged
    /// needs neither a walk nor the page map.
    std::unordered_map<uint32_t, PageSource> non_global;
    uint32_t id = 0;  ///< index in windows_ (reverse-map keys carry it)
    bool user = false;
  };
  /// The supervisor and user windows of one address space. A few are kept, one per
  /// recently run address space (CR3): switching back to one keeps its mappings (checked
  /// against the guest's tables then) instead of mapping them anew.
  struct Space {
    Window* supervisor = nullptr;
    Window* user = nullptr;
    bool assigned = false;  ///< holds the pages of address space `cr3`
    uint32_t cr3 = 0;
    uint64_t last_used = 0;
  };

  /// 4 KiB pages in a large page of the current mode (4 MiB, 2 MiB with PAE) or, with
  /// paging off, in an identity chunk.
  [[nodiscard]] uint32_t large_region_pages() const;
  /// Pages of one fill: a 4 KiB page, or the large page (or identity chunk) around it.
  struct Region {
    uint32_t linear_page = 0;
    uint32_t phys_page = 0;
    uint32_t pages = 1;
    uint32_t target = 0;  ///< index of the faulting page in the region
    bool writable = false, global = false, large = false;
  };

  [[nodiscard]] Window& current(bool user) { return user ? *space_->user : *space_->supervisor; }
  [[nodiscard]] const Window& current(bool user) const { return user ? *space_->user : *space_->supervisor; }
  [[nodiscard]] FillResult fill_page(bool user, GuestLinear linear, bool write);
  /// Grows a 4 KiB fill over neighbours the guest has used, whose frames follow on.
  void extend_to_neighbours(const Window& w, uint32_t linear, Region* region) const;
  /// Maps the faulting page (evicting if it must) and, while there is room, the rest of
  /// the region. False when the host refused the faulting page even after eviction.
  [[nodiscard]] bool map_region(Window& w, const Region& region);
  /// Maps one run of pages that share one protection and records them.
  [[nodiscard]] bool map_run(Window& w, const Region& region, uint32_t first, uint32_t count, bool writable);
  /// Makes room for `vmas` more host mappings (for window `w`). Without `may_evict`, only checks.
  [[nodiscard]] bool make_room(const Window& w, uint64_t vmas, bool may_evict);
  [[nodiscard]] bool mappable(uint32_t phys_page) const;

  /// Removes a page from the bookkeeping (not from the window).
  void forget(Window& w, uint32_t linear_page);
  void drop(Window& w, bool keep_global);
  /// Forgets and unmaps `pages` (runs of neighbours with one call each).
  void withdraw_pages(Window& w, std::vector<uint32_t> pages);
  void drop_all(Window& w);
  /// Unmaps pages from a window; when the host cannot split a mapping, empties the whole
  /// window and returns false.
  [[nodiscard]] bool withdraw(Window& w, uint32_t linear_page, uint32_t pages);
  [[nodiscard]] bool paging() const { return (mode_.cr0 & cr0::PG) != 0; }
  /// Walks the current tables for every non-global page of `w` and takes out the ones that
  /// no longer translate the same (frame, writability): what a TLB flush leaves the guest
  /// to see, without unmapping what did not change.
  void revalidate(Window& w);
  /// A CR3 switch: the windows of the new address space, revalidated, or the least
  /// recently used pair, emptied of all but global pages.
  void switch_address_space();
  /// Empties every window; only the current space stays assigned (to the current CR3).
  void drop_every_space();
  /// flush_non_global() and flush_all() with map_lock_ held.
  void flush_non_global_locked();
  void flush_all_locked();

  /// Held while the windows' bookkeeping changes: by this vCPU's thread (also in its fault
  /// handler, which only runs on translated code, never inside a holder) and by other
  /// vCPUs' protect_mappings(). A spin lock: the fault handler cannot block on a mutex.
  class MapLock {
   public:
    void lock() {
      while (flag_.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
    }
    void unlock() { flag_.clear(std::memory_order_release); }

   private:
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
  };

  GuestMemory& mem_;
  std::vector<std::unique_ptr<Window>> windows_;
  std::vector<Space> spaces_;
  Space* space_ = nullptr;
  uint64_t switch_clock_ = 0;
  PagingMode mode_{};
  /// guest-physical page -> windows and linear pages mapping it (Window::id << 32 | linear page).
  /// Indexed by guest-physical page (RAM only: nothing else is mapped).
  std::vector<std::vector<uint64_t>> reverse_;
  uint64_t ram_pages_ = 0;
  /// Guest-physical pages holding translated code, by vCPU: the machine's set, or this
  /// MMU's own when it is alone.
  CodePageSet* shared_ = nullptr;
  std::unique_ptr<CodePageSet> own_code_pages_;
  unsigned cpu_ = 0;
  MapLock map_lock_;
  uint64_t budget_ = 0;
  ShadowMmuStats stats_;
};

}  // namespace vmm86
