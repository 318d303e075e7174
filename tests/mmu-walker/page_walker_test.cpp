// walk_page_tables against a hand-written table of the SDM's access rules (Vol. 3 §4.6),
// over every combination of entry bits, CR0.WP, privilege, access kind and page size, in
// 32-bit paging and in PAE paging (§4.4: PDPTE registers, 64-bit entries, 2 MiB pages,
// reserved bits).
#include "shadow-mmu/page_walker.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace vmm86 {
namespace {

constexpr uint32_t P = 1, W = 2, U = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;
constexpr uint64_t kCr3 = 0x1000, kPageTable = 0x2000, kFrame = 0x5000, kLargeFrame = 0x800000;
constexpr uint32_t kLinear = 0x00400123;  // 32-bit: PDE index 1, PTE index 0; PAE: PDPTE 0, PDE 2, PTE 0
// PAE: the PDPT at kCr3 (its entry 0 names kPaeDir), the directory at kPaeDir.
constexpr uint64_t kPaeDir = 0x3000;
constexpr uint64_t kPaePde = kPaeDir + 2 * 8;

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
  void set_entry64(uint64_t addr, uint64_t v) { ASSERT_TRUE(mem_->write(GuestPhys{addr}, &v, 8)); }
  uint64_t entry64(uint64_t addr) {
    uint64_t v = 0;
    EXPECT_TRUE(mem_->read(GuestPhys{addr}, &v, 8));
    return v;
  }
  uint32_t pde() { return entry(pae_ ? kPaePde : kCr3 + 4); }
  uint32_t pte() { return entry(kPageTable); }
  /// Writes the PDE and PTE translating kLinear in the format under test.
  void set_pde(uint64_t v) {
    if (pae_) {
      set_entry64(kPaePde, v);
    } else {
      set_entry(kCr3 + 4, static_cast<uint32_t>(v));
    }
  }
  void set_pte(uint64_t v) {
    if (pae_) {
      set_entry64(kPageTable, v);
    } else {
      set_entry(kPageTable, static_cast<uint32_t>(v));
    }
  }
  /// Paging on in the format under test (PAE: PDPTE 0 names kPaeDir, loaded as MOV CR3 does).
  PagingMode mode(uint32_t extra_cr0, uint32_t cr4_bits) {
    PagingMode m{cr0::PE | cr0::PG | extra_cr0, static_cast<uint32_t>(kCr3), cr4_bits | (pae_ ? cr4::PAE : 0u)};
    if (pae_) {
      set_entry64(kCr3, kPaeDir | P);
      EXPECT_TRUE(load_pdptes(*mem_, m.cr3, m.a20_mask, &m.pdpte));
    }
    return m;
  }
  /// Every combination of both levels' bits, CR0.WP and access against the rule table.
  void check_every_combination();

  bool pae_ = false;

  std::optional<GuestMemory> mem_;
};

void PageWalkerTest::check_every_combination() {
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
                  if (large && (pte_p || (bits & 3))) continue;  // PTE unused for large pages
                  const bool pde_u = bits & 8, pde_w = bits & 4;
                  const bool pte_u = large ? true : (bits & 2) != 0, pte_w = large ? true : (bits & 1) != 0;
                  uint64_t pde_val = (pde_p ? P : 0) | (pde_u ? U : 0) | (pde_w ? W : 0);
                  pde_val |= large ? (kLargeFrame | PS) : kPageTable;
                  set_pde(pde_val);
                  set_pte(kFrame | (pte_p ? P : 0) | (pte_u ? U : 0) | (pte_w ? W : 0));
                  // PAE honours PS without CR4.PSE; 32-bit paging needs it.
                  const PagingMode m = mode(wp ? cr0::WP : 0u, large && !pae_ ? cr4::PSE : 0u);
                  AccessKind acc{write != 0, user != 0, fetch != 0};
                  SCOPED_TRACE(testing::Message() << "pae=" << pae_ << " large=" << large << " pde_p=" << pde_p
                                                  << " pte_p=" << pte_p << " bits=" << bits << " wp=" << wp
                                                  << " user=" << user << " write=" << write << " fetch=" << fetch);
                  const WalkResult r = walk_page_tables(*mem_, m, GuestLinear{kLinear}, acc);
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
                    EXPECT_EQ(pte() & A, 0u) << "PTE slot untouched for a large page";
                  } else {
                    EXPECT_EQ(pde() & D, 0u) << "D is never set in a PDE that maps a table";
                    EXPECT_NE(pte() & A, 0u);
                    EXPECT_EQ((pte() & D) != 0, write != 0);
                  }
                  EXPECT_EQ(r.dirty, write != 0);
                }
  EXPECT_GT(checked, 200);
}

TEST_F(PageWalkerTest, EveryCombinationMatchesTheRuleTable) { check_every_combination(); }

TEST_F(PageWalkerTest, EveryCombinationMatchesTheRuleTableWithPae) {
  pae_ = true;
  check_every_combination();
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

// --- PAE (SDM Vol. 3 §4.4) ---

constexpr uint32_t kRsvd = pf_error::Reserved | pf_error::Present;

TEST_F(PageWalkerTest, PaeLoadsPdptesAndRejectsReservedBits) {
  Pdptes got{};
  set_entry64(kCr3 + 8, kPaeDir | P);
  ASSERT_TRUE(load_pdptes(*mem_, static_cast<uint32_t>(kCr3) | 0x18u, kA20Enabled, &got))
      << "CR3 bits 4:3 (PWT/PCD) do not move the PDPT";
  EXPECT_EQ(got[1], kPaeDir | P);
  // Each reserved bit of a present PDPTE: bits 2:1, 8:5 and 63:36 (MAXPHYADDR 36, no NX).
  for (const int bit : {1, 2, 5, 6, 7, 8, 36, 40, 51, 62, 63}) {
    SCOPED_TRACE(testing::Message() << "bit " << bit);
    set_entry64(kCr3 + 24, kPaeDir | P | (uint64_t{1} << bit));
    Pdptes before{1, 2, 3, 4};
    EXPECT_FALSE(load_pdptes(*mem_, static_cast<uint32_t>(kCr3), kA20Enabled, &before));
    EXPECT_EQ(before, (Pdptes{1, 2, 3, 4})) << "a refused load changes nothing";
    set_entry64(kCr3 + 24, kPaeDir | (uint64_t{1} << bit));  // not present: not checked
    EXPECT_TRUE(load_pdptes(*mem_, static_cast<uint32_t>(kCr3), kA20Enabled, &before));
  }
  // Bits 3, 4 (PWT, PCD), 11:9 (ignored) and 35:12 are allowed.
  set_entry64(kCr3 + 24, 0xFFFFFFE18ull | P);
  EXPECT_TRUE(load_pdptes(*mem_, static_cast<uint32_t>(kCr3), kA20Enabled, &got));
  // A PDPT beyond RAM reads as four not-present entries.
  EXPECT_TRUE(load_pdptes(*mem_, 0xF0000000u, kA20Enabled, &got));
  EXPECT_EQ(got, Pdptes{});
}

TEST_F(PageWalkerTest, PaeNotPresentPdpteFaultsWithoutReadingTheDirectory) {
  pae_ = true;
  const PagingMode m = mode(0, 0);
  // PDPTE 1 (linear 1 GiB..2 GiB) is not present.
  const WalkResult r = walk_page_tables(*mem_, m, GuestLinear{0x40000123u}, {true, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, pf_error::Write | pf_error::User);
}

TEST_F(PageWalkerTest, PaeWalksTheLoadedPdptesNotTheMemoryBehindCr3) {
  pae_ = true;
  set_pde(kPageTable | P | W);
  set_pte(kFrame | P | W);
  const PagingMode m = mode(0, 0);
  // The guest rewrites its PDPT without reloading CR3: the walk still uses the old PDPTE.
  set_entry64(kCr3, 0);
  const WalkResult r = walk_page_tables(*mem_, m, GuestLinear{kLinear}, {});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.phys.value, kFrame + 0x123);
  // PDPTEs have no Accessed bit in PAE paging: the walk leaves the PDPT alone.
  EXPECT_EQ(entry64(kCr3), 0u);
}

TEST_F(PageWalkerTest, PaeReservedBitsInPdesAndPtesFaultWithRsvd) {
  pae_ = true;
  for (const int bit : {36, 44, 52, 62, 63}) {
    SCOPED_TRACE(testing::Message() << "bit " << bit);
    const uint64_t reserved = uint64_t{1} << bit;
    // In a PDE that names a table.
    set_pde(kPageTable | P | W | U | reserved);
    set_pte(kFrame | P | W | U);
    WalkResult r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {false, true});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_code, kRsvd | pf_error::User);
    EXPECT_EQ(pde() & A, 0u) << "no A on a failed walk";
    // In a PTE (a write at CPL 0).
    set_pde(kPageTable | P | W | U);
    set_pte(kFrame | P | W | U | reserved);
    r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {true, false});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_code, kRsvd | pf_error::Write);
    EXPECT_EQ(pte() & A, 0u);
    // In a 2 MiB PDE.
    set_pde(kLargeFrame | PS | P | W | reserved);
    r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_code, kRsvd);
    // Not present: reserved bits are not looked at.
    set_pte(kFrame | reserved);
    set_pde(kPageTable | P | W | U);
    r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {false, true});
    EXPECT_EQ(r.error_code, pf_error::User);
  }
  // Bits 20:13 of a 2 MiB PDE are reserved; bit 12 (PAT) is not.
  for (int bit = 12; bit <= 20; ++bit) {
    SCOPED_TRACE(testing::Message() << "large bit " << bit);
    set_pde(kLargeFrame | PS | P | W | (uint64_t{1} << bit));
    const WalkResult r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {});
    EXPECT_EQ(r.ok, bit == 12);
    if (bit != 12) {
      EXPECT_EQ(r.error_code, kRsvd);
    }
  }
}

TEST_F(PageWalkerTest, PaeTwoMiBPageSetsAccessedAndDirtyInThePde) {
  pae_ = true;
  set_pde(kLargeFrame | PS | P | W | U | G);
  const PagingMode m = mode(0, cr4::PGE);
  const uint32_t linear = 0x005ABCDEu;  // 2 MiB page 2: offset 0x1ABCDE
  WalkResult r = walk_page_tables(*mem_, m, GuestLinear{linear}, {false, true});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.large_page);
  EXPECT_TRUE(r.global);
  EXPECT_EQ(r.phys.value, kLargeFrame + 0x1ABCDE);
  EXPECT_EQ(pde() & (A | D), A);
  r = walk_page_tables(*mem_, m, GuestLinear{linear}, {true, true});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(pde() & (A | D), A | D);
  EXPECT_TRUE(r.dirty);
}

TEST_F(PageWalkerTest, PaeFramesAbove4GiBAreReturnedAndTheHighDwordIsKept) {
  pae_ = true;
  constexpr uint64_t kHighFrame = 0x9'0000'5000ull;  // 36 GiB + 20 KiB: inside MAXPHYADDR
  set_pde(kPageTable | P | W);
  set_pte(kHighFrame | P | W);
  const WalkResult r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {true, false});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.phys.value, kHighFrame + 0x123) << "no truncation to 32 bits";
  EXPECT_EQ(entry64(kPageTable), kHighFrame | P | W | A | D) << "A/D set, the frame's high bits kept";
  // A page table beyond guest RAM (and beyond 4 GiB) reads as not present.
  set_pde(0x2'0000'0000ull | P | W);
  const WalkResult t = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {});
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.error_code, 0u);
}

TEST_F(PageWalkerTest, PaeFetchesChangeNoErrorCodeBitWithoutNx) {
  // No NX/XD in this vCPU: a fetch faults as a read does (I/D is reported only with NXE).
  pae_ = true;
  set_pde(kPageTable | P);
  set_pte(kFrame | P);
  const WalkResult r = walk_page_tables(*mem_, mode(0, 0), GuestLinear{kLinear}, {false, true, true});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::User);
}

}  // namespace
}  // namespace vmm86
