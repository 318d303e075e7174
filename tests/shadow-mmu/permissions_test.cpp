// Every combination of present (PDE/PTE), U/S and R/W at both levels, CR0.WP, window
// (CPL 3 or supervisor), page size and access kind, through a real host access: the
// outcome must be what walk_page_tables says, and A/D must end up as the SDM says.
#include <string>
#include <vector>

#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kLinear = 0x00400000;   // PDE 1, PTE 0
constexpr uint32_t kFrame = 0x20;          // 4 KiB data frame (phys 0x20000)
constexpr uint32_t kLargeFrame = 0x800;    // 4 MiB data frame (phys 0x800000)
constexpr uint32_t kLargeOffset = 0x5000;  // where in the 4 MiB page the tests touch

struct Case {
  bool large, pde_p, pte_p, pde_u, pde_w, pte_u, pte_w, wp, user;
};

std::string describe(const Case& c) {
  return testing::PrintToString(
             std::vector<int>{c.large, c.pde_p, c.pte_p, c.pde_u, c.pde_w, c.pte_u, c.pte_w, c.wp, c.user}) +
         " (large pde_p pte_p pde_u pde_w pte_u pte_w wp user)";
}

class PermissionsTest : public ShadowMmuTest {
 protected:
  /// Writes the tables for `c` (A and D clear) and starts from an empty shadow.
  void build(const Case& c) {
    const uint32_t pde_bits = (c.pde_p ? P : 0) | (c.pde_u ? U : 0) | (c.pde_w ? W : 0);
    if (c.large) {
      set_pde(kDir, kLinear, (kLargeFrame << kPageShift) | PS | pde_bits);
    } else {
      set_pde(kDir, kLinear, kTable | pde_bits);
      set_pte(kTable, kLinear, (kFrame << kPageShift) | (c.pte_p ? P : 0) | (c.pte_u ? U : 0) | (c.pte_w ? W : 0));
    }
    paging(kDir, cr4::PSE, c.wp ? cr0::WP : 0);
    mmu_->flush_all();
  }
  uint32_t address(const Case& c) const { return kLinear + (c.large ? kLargeOffset : 0); }
  uint32_t frame(const Case& c) const { return c.large ? kLargeFrame + (kLargeOffset >> kPageShift) : kFrame; }
  uint32_t pde() const { return peek(pde_addr(kDir, kLinear)); }
  uint32_t pte() const { return peek(pte_addr(kTable, kLinear)); }
  /// The entry that maps the page (the PDE for a 4 MiB page).
  uint32_t final_entry(const Case& c) const { return c.large ? pde() : pte(); }

  /// One probed access checked against the walker (asked not to touch A/D) and the SDM.
  void check_access(const Case& c, bool write) {
    SCOPED_TRACE(describe(c) + (write ? " write" : " read"));
    const PagingMode mode = mmu_->mode();
    const uint32_t pde_before = pde(), pte_before = pte();
    const WalkResult want = walk_page_tables(*mem_, mode, GuestLinear{address(c)}, {write, c.user, false}, false);
    ASSERT_EQ(pde(), pde_before) << "the oracle walk must not set A/D";

    const uint32_t stored = 0x5EED0000u | (write ? 1u : 0u);
    const ProbeResult got = write ? probe_->write32(c.user, address(c), stored) : probe_->read32(c.user, address(c));
    ASSERT_FALSE(got.stray);
    ++checked_;
    if (!want.ok) {
      EXPECT_FALSE(got.completed);
      EXPECT_EQ(got.outcome, FillOutcome::GuestPageFault);
      EXPECT_EQ(got.error_code, want.error_code);
      EXPECT_EQ(pde(), pde_before) << "no A/D on a faulting access";
      EXPECT_EQ(pte(), pte_before);
      return;
    }
    EXPECT_TRUE(got.completed);
    if (write) {
      EXPECT_EQ(peek(uint64_t{frame(c)} << kPageShift), stored) << "the store reached the guest frame";
      poke(uint64_t{frame(c)} << kPageShift, frame_tag(frame(c)));
    } else {
      EXPECT_EQ(got.value, frame_tag(frame(c)));
    }
    // A on every entry used, D only in the final entry and only after a write.
    EXPECT_NE(pde() & A, 0u);
    if (!c.large) {
      EXPECT_NE(pte() & A, 0u);
      EXPECT_EQ(pde() & D, 0u) << "D is never set in a PDE that points to a table";
    }
    if (write) {
      EXPECT_NE(final_entry(c) & D, 0u);
    } else {
      EXPECT_EQ(final_entry(c) & D, final_entry_dirty_before_ ? D : 0u) << "a read never sets D";
    }
  }

  bool final_entry_dirty_before_ = false;
  int checked_ = 0;
};

TEST_F(PermissionsTest, EveryCombinationMatchesTheWalker) {
  for (int bits = 0; bits < 512; ++bits) {
    const Case c{(bits & 1) != 0,  (bits & 2) != 0,  (bits & 4) != 0,   (bits & 8) != 0,  (bits & 16) != 0,
                 (bits & 32) != 0, (bits & 64) != 0, (bits & 128) != 0, (bits & 256) != 0};
    if (c.large && (c.pte_p || c.pte_u || c.pte_w)) continue;  // no PTE under a 4 MiB page
    for (bool write : {false, true}) {
      build(c);
      final_entry_dirty_before_ = false;
      check_access(c, write);
    }
    // A read first maps the page read-only (D clear); the write after it must still be
    // seen (fault again) and set D.
    build(c);
    final_entry_dirty_before_ = false;
    check_access(c, false);
    check_access(c, true);
    // And a read after the write keeps D.
    final_entry_dirty_before_ = (final_entry(c) & D) != 0;
    check_access(c, false);
  }
  EXPECT_EQ(checked_, (256 + 32) * 5);  // 4 KiB cases + 4 MiB cases, five accesses each
}

TEST_F(PermissionsTest, PagingOffIsIdentityAndWritable) {
  mmu_->set_mode(PagingMode{cr0::PE, 0, 0});
  for (bool user : {false, true}) {
    EXPECT_EQ(frame_seen(user, 0x00ABC000), 0xABCu);
    const ProbeResult w = probe_->write32(user, 0x00ABC010, 0x1234);
    EXPECT_TRUE(w.completed);
    EXPECT_EQ(peek(0x00ABC010), 0x1234u);
  }
}

TEST_F(PermissionsTest, UserWindowNeverMapsSupervisorPages) {
  map4k(kDir, kTable, kLinear, kFrame, P | W);  // supervisor-only
  paging(kDir);
  EXPECT_EQ(frame_seen(false, kLinear), kFrame);  // mapped in the supervisor window
  const ProbeResult r = probe_->read32(true, kLinear);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.outcome, FillOutcome::GuestPageFault);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::User);
}

TEST_F(PermissionsTest, WpChangeTakesEffectWithoutInvlpg) {
  // CR0.WP is part of what a window encodes, so a change of it must not leave a
  // supervisor-writable mapping of a read-only page behind.
  map4k(kDir, kTable, kLinear, kFrame, P | U | D);
  paging(kDir, cr4::PSE, 0);
  EXPECT_TRUE(probe_->write32(false, kLinear, 1).completed);
  paging(kDir, cr4::PSE, cr0::WP);
  const ProbeResult r = probe_->write32(false, kLinear, 2);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::Write);
}

}  // namespace
}  // namespace vmm86::test
