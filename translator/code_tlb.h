// The code TLB: which guest-physical page each recently executed linear code page maps to,
// in the current address space, for user and for supervisor fetches. Translated blocks are
// keyed by guest-physical address, so a block reached through the inline indirect table
// (indexed by linear EIP alone) checks here that its page still maps where it was
// translated from. This is what lets table entries outlive CR3 switches: processes that
// run the same binary (busybox, shared by every process of the guest) share the entries,
// and an address space that maps other code at that EIP fails the check instead of
// running the wrong block (docs/design-notes.md, "Indirect table and code TLB").
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "translator/exec_context.h"

namespace vmm86 {

class CodeTlb {
 public:
  explicit CodeTlb(ExecContext& ctx);

  /// The tag a block on (linear page, guest-physical page) compares its entry with.
  [[nodiscard]] static uint32_t tag(LinearPage linear_page, PhysPage phys_page) {
    static_assert(20 - kCodeTlbIndexBits + 20 <= 32, "the tag holds the linear page's high bits and 20 bits of frame");
    return ((linear_page.value >> kCodeTlbIndexBits) << 20) | (static_cast<uint32_t>(phys_page.value) & 0xFFFFF);
  }
  [[nodiscard]] static uint32_t index(LinearPage linear_page) { return linear_page.value & (kCodeTlbEntries - 1); }
  /// Offset from R15 of the entry a block on `linear_page` checks.
  [[nodiscard]] static int32_t entry_offset(bool user, LinearPage linear_page);
  /// The entry says `linear_page` maps to `phys_page`, as a block's check would find.
  [[nodiscard]] bool confirms(bool user, LinearPage linear_page, PhysPage phys_page) const {
    return ctx_.code_tlb[user][index(linear_page)] == tag(linear_page, phys_page);
  }

  /// A fetch at `linear` by CPL `user ? 3 : 0` code found `phys` (global/large as walked).
  void fill(bool user, GuestLinear linear, GuestPhys phys, bool global, bool large);
  /// CR3 written: non-global entries go.
  void flush_non_global();
  /// CR0/CR4 changed: everything goes.
  void flush_all();
  /// INVLPG: the page (the whole 4 MiB page for entries that came from one) goes.
  void invlpg(GuestLinear linear);
  /// The non-global linear pages held now (bit 0: user), for mapping them ahead when the
  /// address space comes back.
  [[nodiscard]] std::vector<uint32_t> non_global_pages() const;

  [[nodiscard]] uint64_t fills() const { return fills_; }
  /// Entries taken out so far (flushes, INVLPG): when this moves, a host return address
  /// on the return stack may lead into a block whose page maps elsewhere now.
  [[nodiscard]] uint64_t clears() const { return clears_; }

 private:
  struct Side {
    uint32_t linear_page = 0;
    bool valid = false, global = false, large = false;
    bool listed = false;  ///< in local_
  };
  void clear(bool user, uint32_t i);

  ExecContext& ctx_;
  std::array<std::array<Side, kCodeTlbEntries>, 2> side_{};
  /// Entries filled with a non-global page since the last flush, each once (index, bit 31:
  /// user), so that a CR3 switch visits only those rather than the whole TLB or the
  /// thousands of global kernel entries.
  std::vector<uint32_t> local_;
  uint64_t fills_ = 0;
  uint64_t clears_ = 0;
  /// Entries from 4 MiB pages, per privilege and 4 MiB region: INVLPG of an address in a
  /// region without any needs no scan.
  std::array<std::array<uint16_t, 1024>, 2> large_in_region_{};
};

}  // namespace vmm86
