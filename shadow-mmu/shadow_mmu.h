// The shadow MMU (DESIGN.md §5): two 4 GiB windows, one for supervisor and one for user
// accesses, filled on demand from the guest's own page tables. A host fault on a window
// page comes here; the answer is a mapping (the access is retried), a guest #PF, an MMIO
// access or a write to a page that holds translated code.
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
  Mmio,            ///< the frame is not RAM: emulate the instruction
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
  uint64_t flushes = 0;
  uint64_t global_flushes = 0;
  uint64_t invlpgs = 0;
  uint64_t fill_ns = 0;  ///< time spent in fill()
};

class ShadowMmu {
 public:
  explicit ShadowMmu(GuestMemory& mem) : mem_(mem) {}
  ShadowMmu(const ShadowMmu&) = delete;
  ShadowMmu& operator=(const ShadowMmu&) = delete;

  [[nodiscard]] bool init(std::string* error);

  [[nodiscard]] AddressWindow& window(bool user) { return user ? user_ : supervisor_; }
  [[nodiscard]] const PagingMode& mode() const { return mode_; }

  /// The guest changed CR0, CR3 or CR4. Drops what the change makes stale: a CR3 write
  /// keeps global pages when CR4.PGE is set; a change of PG, WP, PSE or PGE drops all.
  void set_mode(const PagingMode& mode);
  /// INVLPG: forget one page in both windows.
  void invlpg(uint32_t linear);
  /// Drops every mapping (e.g. a write to the guest's page tables we cannot track yet).
  void flush_all();
  void flush_non_global();

  /// A host fault at `linear` in the user or supervisor window.
  [[nodiscard]] FillResult fill(bool user_window, uint32_t linear, bool write);

  /// Translated code now lives on this guest-physical page: map it read-only everywhere.
  void protect_code_page(uint64_t phys_page);
  /// No translated code is left on this page: writes may map it writable again.
  void unprotect_code_page(uint64_t phys_page);
  [[nodiscard]] bool is_code_page(uint64_t phys_page) const { return code_pages_.count(phys_page) != 0; }

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

  void map_range(bool user, uint32_t linear_page, uint32_t phys_page, uint32_t pages, bool writable, bool global,
                 bool large);
  /// Removes a page from the bookkeeping (not from the window).
  void forget(bool user, uint32_t linear_page);
  void drop(bool user, bool keep_global);
  void drop_page(bool user, uint32_t linear_page);
  [[nodiscard]] bool paging() const { return (mode_.cr0 & cr0::PG) != 0; }

  GuestMemory& mem_;
  AddressWindow supervisor_;
  AddressWindow user_;
  PagingMode mode_{};
  PageMap supervisor_map_;
  PageMap user_map_;
  /// guest-physical page -> linear pages mapping it (supervisor bit 0 = user window).
  std::unordered_map<uint32_t, std::vector<uint64_t>> reverse_;
  std::unordered_set<uint64_t> code_pages_;
  ShadowMmuStats stats_;
};

}  // namespace vmm86
