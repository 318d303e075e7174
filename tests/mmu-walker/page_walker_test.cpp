// walk_page_tables against a hand-written table of the SDM's access rules (Vol. 3 §4.6),
// over every combination of entry bits, CR0.WP, privilege, access kind and page size.
#include "shadow-mmu/page_walker.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace vmm86 {
namespace {

constexpr uint32_t P = 1, W = 2, U = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;
constexpr uint64_t kCr3 = 0x1000, kPageTable = 0x2000, kFrame = 0x5000, kLargeFrame = 0x800000;
constexpr uint32_t kLinear = 0x00400123;  // PDE index 1, PTE index 0

/// One row of the expected-outcome table: combined U/S and R/W of the translation, CR0.WP,
/// the access, and whether the SDM allows it.
struct Rule {
  bool user_page, writable_page, wp, user_access, write, allowed;
};
// Written out from SDM Vol. 3 §4.6.1, not computed: supervisor reads always succeed,
// supervisor writes need R/W only with WP, user accesses need U/S and (for writes) R/W.
constexpr Rule kRules[] = {
    // user  rw     wp     user   write  allowed
    {false, false, false, false, false, true}, {false, false, false, false, true, true},
    {false, false, false, true, false, false}, {false, false, false, true, true, false},
    {false, false, true, false, false, true},  {false, false, true, false, true, false},
    {false, false, true, true, false, false},  {false, false, true, true, true, false},
    {false, true, false, false, false, true},  {false, true, false, false, true, true},
    {false, true, false, true, false, false},  {false, true, false, true, true, false},
    {false, true, true, false, false, true},   {false, true, true, false, true, true},
    {false, true, true, true, false, false},   {false, true, true, true, true, false},
    {true, false, false, false, false, true},  {true, false, false, false, true, true},
    {true, false, false, true, false, true},   {true, false, false, true, true, false},
    {true, false, true, false, false, true},   {true, false, true, false, true, false},
    {true, false, true, true, false, true},    {true, false, true, true, true, false},
    {true, true, false, false, false, true},   {true, true, false, false, true, true},
    {true, true, false, true, false, true},    {true, true, false, true, true, true},
    {true, true, true, false, false, true},    {true, true, true, false, true, true},
    {true, true, true, true, false, true},     {true, true, true, true, true, true},
};

bool expected_allowed(bool user_page, bool writable_page, bool wp, bool user_access, bool write) {
  for (const Rule& r : kRules) {
    if (r.user_page == user_page && r.writable_page == writable_page && r.wp == wp && r.user_access == user_access &&
        r.write == write) {
      return r.allowed;
    }
  }
  ADD_FAILURE() << "rule table has a gap";
  return false;
}

class PageWalkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::create(16u << 20);
    ASSERT_TRUE(m) << m.error();
    mem_.emplace(std::move(*m));
  }
  uint32_t entry(uint64_t addr) {
    uint32_t v = 0;
    EXPECT_TRUE(mem_->read(GuestPhys{addr}, &v, 4));
    return v;
  }
  void set_entry(uint64_t addr, uint32_t v) { ASSERT_TRUE(mem_->write(GuestPhys{addr}, &v, 4)); }
  uint32_t pde() { return entry(kCr3 + 4); }
  uint32_t pte() { return entry(kPageTable); }

  std::optional<GuestMemory> mem_;
};

TEST_F(PageWalkerTest, EveryCombinationMatchesTheRuleTable) {
  int checked = 0;
  for (int large = 0; large < 2; ++large)
    for (int pde_p = 0; pde_p < 2; ++pde_p)
      for (int pte_p = 0; pte_p < 2; ++pte_p)
        for (int bits = 0; bits < 16; ++bits)  // pde U, pde W, pte U, pte W
          for (int wp = 0; wp < 2; ++wp)
            for (int user = 0; user < 2; ++user)
              for (int write = 0; write < 2; ++write)
                for (int fetch = 0; fetch < 2; ++fetch) {
                  if (fetch && write) continue;
                  if (large && (pte_p || (bits & 3))) continue;  // PTE unused for 4 MiB pages
                  const bool pde_u = bits & 8, pde_w = bits & 4;
                  const bool pte_u = large ? true : (bits & 2) != 0, pte_w = large ? true : (bits & 1) != 0;
                  uint32_t pde_val = (pde_p ? P : 0) | (pde_u ? U : 0) | (pde_w ? W : 0);
                  pde_val |= large ? (kLargeFrame | PS) : kPageTable;
                  set_entry(kCr3 + 4, pde_val);
                  set_entry(kPageTable,
                            static_cast<uint32_t>(kFrame) | (pte_p ? P : 0) | (pte_u ? U : 0) | (pte_w ? W : 0));
                  PagingMode mode{cr0::PE | cr0::PG | (wp ? cr0::WP : 0u), kCr3, large ? cr4::PSE : 0u};
                  AccessKind acc{write != 0, user != 0, fetch != 0};
                  SCOPED_TRACE(testing::Message()
                               << "large=" << large << " pde_p=" << pde_p << " pte_p=" << pte_p << " bits=" << bits
                               << " wp=" << wp << " user=" << user << " write=" << write << " fetch=" << fetch);
                  const WalkResult r = walk_page_tables(*mem_, mode, GuestLinear{kLinear}, acc);
                  const uint32_t acc_bits = (write ? 2u : 0u) | (user ? 4u : 0u);
                  ++checked;
                  const bool present = pde_p && (large || pte_p);
                  if (!present) {
                    EXPECT_FALSE(r.ok);
                    EXPECT_EQ(r.error_code, acc_bits);
                    EXPECT_EQ(pde() & A, 0u);
                    EXPECT_EQ(pte() & A, 0u);
                    continue;
                  }
                  const bool allowed = expected_allowed(pde_u && pte_u, pde_w && pte_w, wp, user, write);
                  EXPECT_EQ(r.ok, allowed);
                  if (!allowed) {
                    EXPECT_EQ(r.error_code, acc_bits | 1u);
                    EXPECT_EQ(pde() & (A | D), 0u) << "no A/D on a failed walk";
                    EXPECT_EQ(pte() & (A | D), 0u);
                    continue;
                  }
                  EXPECT_EQ(r.phys.value, (large ? kLargeFrame + 0x123 + (kLinear & 0x3FF000) : kFrame + 0x123));
                  EXPECT_EQ(r.large_page, large != 0);
                  EXPECT_EQ(r.user, pde_u && pte_u);
                  EXPECT_NE(pde() & A, 0u);
                  if (large) {
                    EXPECT_EQ((pde() & D) != 0, write != 0);
                    EXPECT_EQ(pte() & A, 0u) << "PTE slot untouched for a 4 MiB page";
                  } else {
                    EXPECT_EQ(pde() & D, 0u) << "D is never set in a PDE that maps a table";
                    EXPECT_NE(pte() & A, 0u);
                    EXPECT_EQ((pte() & D) != 0, write != 0);
                  }
                  EXPECT_EQ(r.dirty, write != 0);
                }
  EXPECT_GT(checked, 200);
}

TEST_F(PageWalkerTest, PagingOffIsIdentity) {
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PE, 0, 0}, GuestLinear{0xDEADBEEF}, {true, true});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.phys.value, 0xDEADBEEFu);
}

// A20M#: every physical address the CPU forms has bit 20 cleared, the walk's own reads
// of the page tables included (SDM vol. 3 8.7.13.4's A20M# pin).
TEST_F(PageWalkerTest, MaskedA20ClearsBit20OfEveryPhysicalAddress) {
  constexpr uint32_t kA20Off = kA20Masked;
  const WalkResult off = walk_page_tables(*mem_, PagingMode{cr0::PE, 0, 0, kA20Off}, GuestLinear{0x10FFF0}, {});
  ASSERT_TRUE(off.ok);
  EXPECT_EQ(off.phys.value, 0x0FFF0u);  // FFFF:0000 + 0xFFF0 wraps to 0 as on an 8086
  // The page directory named at kCr3 | 1 MiB is read at kCr3; the frame loses bit 20 too.
  set_entry(kCr3 + 4, static_cast<uint32_t>(kPageTable) | P | W);
  set_entry(kPageTable, static_cast<uint32_t>(kFrame | (1u << 20)) | P | W);
  const WalkResult on = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, kCr3 | (1u << 20), 0, kA20Off},
                                         GuestLinear{kLinear}, {});
  ASSERT_TRUE(on.ok);
  EXPECT_EQ(on.phys.value, (kFrame & kA20Off) + 0x123);
}

TEST_F(PageWalkerTest, PsBitWithoutCr4PseIsATablePointer) {
  set_entry(kCr3 + 4, static_cast<uint32_t>(kPageTable) | P | W | PS);
  set_entry(kPageTable, static_cast<uint32_t>(kFrame) | P | W);
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, kCr3, 0}, GuestLinear{kLinear}, {});
  ASSERT_TRUE(r.ok);
  EXPECT_FALSE(r.large_page);
  EXPECT_EQ(r.phys.value, kFrame + 0x123);
}

TEST_F(PageWalkerTest, GlobalBitAndExistingDirtyReported) {
  set_entry(kCr3 + 4, static_cast<uint32_t>(kPageTable) | P | W);
  set_entry(kPageTable, static_cast<uint32_t>(kFrame) | P | W | G | D);
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, kCr3, cr4::PGE}, GuestLinear{kLinear}, {});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.global);
  EXPECT_TRUE(r.dirty);
  EXPECT_TRUE(r.writable);
}

TEST_F(PageWalkerTest, NoAccessedDirtyWhenNotAsked) {
  set_entry(kCr3 + 4, static_cast<uint32_t>(kPageTable) | P | W);
  set_entry(kPageTable, static_cast<uint32_t>(kFrame) | P | W);
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, kCr3, 0}, GuestLinear{kLinear},
                                        {true, false}, false);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(pde() & A, 0u);
  EXPECT_EQ(pte() & (A | D), 0u);
}

TEST_F(PageWalkerTest, LargePageReservedBitsFault) {
  set_entry(kCr3 + 4, static_cast<uint32_t>(kLargeFrame) | P | W | PS | (1u << 13));
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, kCr3, cr4::PSE}, GuestLinear{kLinear},
                                        {false, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, 1u | 4u | 8u);
}

TEST_F(PageWalkerTest, TablesOutsideRamAreNotPresent) {
  const WalkResult r = walk_page_tables(*mem_, PagingMode{cr0::PG | cr0::PE, 0xF0000000u, 0}, GuestLinear{kLinear},
                                        {true, false});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, 2u);
}

}  // namespace
}  // namespace vmm86
