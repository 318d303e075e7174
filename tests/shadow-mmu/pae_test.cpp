// The windows under PAE paging (SDM Vol. 3 §4.4): 64-bit entries, 2 MiB pages mapped whole
// and invalidated whole, reserved bits answered as #PF with RSVD, frames beyond RAM and
// beyond 4 GiB never mapped, the PDPTEs taken from the mode (loaded at the CR3 write, not
// re-read), and two CR3s over alike PDPTs kept as two address spaces.
#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kUserPage = 0x00400000;  // PDPTE 0, PDE 2, PTE 0
constexpr uint64_t kReservedBit = uint64_t{1} << 40;

class PaeTest : public ShadowMmuTest {
 protected:
  // Zeroed by the fixture: two PDPTs, two directories and one page table.
  static constexpr uint32_t kPdpt = kDir, kPdpt2 = kDir2;
  static constexpr uint32_t kPaeDir = kTable, kPaeDir2 = kTable3;
  static constexpr uint32_t kPaeTable = kTable2;

  void poke64(uint64_t phys, uint64_t v) { ASSERT_TRUE(mem_->write(GuestPhys{phys}, &v, 8)); }
  uint64_t peek64(uint64_t phys) const {
    uint64_t v = 0;
    EXPECT_TRUE(mem_->read(GuestPhys{phys}, &v, 8));
    return v;
  }
  static uint64_t pde_at(uint32_t dir, uint32_t linear) { return dir + uint64_t{(linear >> 21) & 0x1FF} * 8; }
  static uint64_t pte_at(uint32_t table, uint32_t linear) { return table + uint64_t{(linear >> 12) & 0x1FF} * 8; }
  void set_pdpte(uint32_t pdpt, uint32_t linear, uint64_t v) { poke64(pdpt + uint64_t{linear >> 30} * 8, v); }
  /// Maps the 4 KiB page `linear` to `frame` (a byte address) through PDPT entry -> `dir` -> kPaeTable.
  void map4k_pae(uint32_t pdpt, uint32_t dir, uint32_t linear, uint64_t frame, uint64_t bits) {
    set_pdpte(pdpt, linear, dir | P);
    poke64(pde_at(dir, linear), kPaeTable | P | W | U);
    poke64(pte_at(kPaeTable, linear), frame | bits);
  }
  /// MOV CR3 (with CR4.PAE and paging on): the PDPTEs are loaded now.
  void pae_paging(uint32_t cr3, uint32_t extra_cr4 = 0) {
    PagingMode m{kPagingOn | cr0::WP, cr3, cr4::PAE | extra_cr4};
    ASSERT_TRUE(load_pdptes(*mem_, cr3, m.a20_mask, &m.pdpte));
    mmu_->set_mode(m);
  }
  void expect_outcome(const ProbeResult& r, FillOutcome want) {
    EXPECT_FALSE(r.completed);
    EXPECT_FALSE(r.stray);
    EXPECT_EQ(r.outcome, want);
  }
};

TEST_F(PaeTest, FourKiBPageMapsAndSetsAccessedThenDirty) {
  map4k_pae(kPdpt, kPaeDir, kUserPage, 0x40000, P | W | U);
  pae_paging(kPdpt);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  EXPECT_EQ(peek64(pte_at(kPaeTable, kUserPage)), 0x40000u | P | W | U | A);
  ASSERT_TRUE(probe_->write32(true, kUserPage + 8, 5).completed);
  EXPECT_EQ(peek64(pte_at(kPaeTable, kUserPage)), 0x40000u | P | W | U | A | D);
  EXPECT_EQ(peek(0x40008), 5u);
}

TEST_F(PaeTest, TwoMiBPageIsMappedWholeAndInvalidatedWhole) {
  constexpr uint32_t kKernel = 0xC0000000;  // PDPTE 3, PDE 0
  set_pdpte(kPdpt, kKernel, kPaeDir | P);
  poke64(pde_at(kPaeDir, kKernel), 0x200000u | PS | P | W | D);
  pae_paging(kPdpt);
  EXPECT_EQ(frame_seen(false, kKernel + 0x1000), 0x201u);
  EXPECT_EQ(frame_seen(false, kKernel + 0x1FF000), 0x3FFu);
  EXPECT_EQ(mmu_->stats().fills, 1u) << "one fill maps all of the 2 MiB page";
  EXPECT_EQ(mmu_->stats().pages_mapped, 512u) << "and nothing of the next 2 MiB";
  // The guest moves the page and invalidates one address in it: all of it goes.
  poke64(pde_at(kPaeDir, kKernel), 0x400000u | PS | P | W | D);
  mmu_->invlpg(GuestLinear{kKernel + 0x100000});
  EXPECT_EQ(frame_seen(false, kKernel), 0x400u);
  EXPECT_EQ(frame_seen(false, kKernel + 0x1FF000), 0x5FFu);
}

TEST_F(PaeTest, ReservedBitsFaultWithRsvd) {
  map4k_pae(kPdpt, kPaeDir, kUserPage, 0x40000 | kReservedBit, P | W | U);
  pae_paging(kPdpt);
  const ProbeResult r = probe_->read32(true, kUserPage);
  expect_outcome(r, FillOutcome::GuestPageFault);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::User | pf_error::Reserved);
  EXPECT_EQ(mmu_->mapped_pages(), 0u);
}

TEST_F(PaeTest, NeighboursWithReservedBitsAreNotPrefetched) {
  // Three used pages on consecutive frames; the middle one's entry has a reserved bit.
  for (uint32_t i = 0; i < 3; ++i) {
    const uint64_t bits = P | W | U | A | D | (i == 1 ? kReservedBit : 0);
    map4k_pae(kPdpt, kPaeDir, kUserPage + i * kPageSize, 0x40000 + uint64_t{i} * kPageSize, bits);
  }
  pae_paging(kPdpt);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  const ProbeResult r = probe_->read32(true, kUserPage + kPageSize);
  expect_outcome(r, FillOutcome::GuestPageFault);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::User | pf_error::Reserved);
}

TEST_F(PaeTest, FramesBeyondRamAndBeyond4GiBAreNeverMapped) {
  // 4 GiB + 0x40000 would be RAM frame 0x40 if anything cut the address to 32 bits.
  const uint64_t frames[] = {0x1'0004'0000ull, kRam, 0xF'FFFF'F000ull};
  for (const uint64_t frame : frames) {
    SCOPED_TRACE(testing::Message() << std::hex << frame);
    map4k_pae(kPdpt, kPaeDir, kUserPage, frame, P | W | U | A | D);
    pae_paging(kPdpt);
    mmu_->invlpg(GuestLinear{kUserPage});
    for (bool user : {false, true}) {
      expect_outcome(probe_->read32(user, kUserPage), FillOutcome::Mmio);
      expect_outcome(probe_->write32(user, kUserPage, 1), FillOutcome::Mmio);
    }
    EXPECT_EQ(mmu_->mapped_pages(), 0u);
  }
  EXPECT_EQ(peek(0x40000), frame_tag(0x40)) << "no store reached the truncated frame";
  // A 2 MiB page at 4 GiB: none of it.
  set_pdpte(kPdpt, 0xC0000000, kPaeDir | P);
  poke64(pde_at(kPaeDir, 0xC0000000), 0x1'0000'0000ull | PS | P | W | D);
  pae_paging(kPdpt);
  expect_outcome(probe_->read32(false, 0xC0001000), FillOutcome::Mmio);
  EXPECT_EQ(mmu_->mapped_pages(), 0u);
}

TEST_F(PaeTest, PdptesComeFromTheModeAndAreReloadedByACr3Write) {
  map4k_pae(kPdpt, kPaeDir, kUserPage, 0x40000, P | W | U);
  poke64(pde_at(kPaeDir2, kUserPage), kPaeTable | P | W | U);
  pae_paging(kPdpt);
  // The guest points PDPTE 0 at another directory (whose PDE names another table) but
  // writes no CR3: the loaded PDPTE still decides, even for a page never touched before.
  constexpr uint32_t kTable4 = 0x6000;
  std::fill(mem_->ram().begin() + kTable4, mem_->ram().begin() + kTable4 + kPageSize, uint8_t{0});
  poke64(pde_at(kPaeDir2, kUserPage), kTable4 | P | W | U);
  poke64(pte_at(kTable4, kUserPage), 0x50000u | P | W | U);
  set_pdpte(kPdpt, kUserPage, kPaeDir2 | P);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  // MOV CR3 with the same value: the PDPTEs are read again, and the non-global pages go.
  pae_paging(kPdpt);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x50u);
}

TEST_F(PaeTest, TwoCr3sOverAlikePdptsAreTwoAddressSpaces) {
  map4k_pae(kPdpt, kPaeDir, kUserPage, 0x40000, P | W | U);
  set_pdpte(kPdpt2, kUserPage, kPaeDir | P);  // the same contents
  pae_paging(kPdpt);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  pae_paging(kPdpt2);
  EXPECT_EQ(mmu_->stats().space_assignments, 1u) << "a new CR3 is a new address space";
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  // An edit without INVLPG, then a switch back: a CR3 write flushes non-global pages.
  poke64(pte_at(kPaeTable, kUserPage), 0x41000u | P | W | U);
  pae_paging(kPdpt);
  EXPECT_EQ(mmu_->stats().space_reuses, 1u);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x41u);
  // The other space's PDPT changes while it is switched away: its PDPTEs are loaded anew.
  set_pdpte(kPdpt2, kUserPage, 0);
  pae_paging(kPdpt2);
  const ProbeResult r = probe_->read32(true, kUserPage);
  expect_outcome(r, FillOutcome::GuestPageFault);
  EXPECT_EQ(r.error_code, pf_error::User);
}

TEST_F(PaeTest, TurningPaeOnOrOffDropsEverything) {
  map4k(kDir, kTable, kUserPage, 0x40, P | W | U);
  paging(kDir, cr4::PSE | cr4::PGE);
  EXPECT_EQ(frame_seen(true, kUserPage), 0x40u);
  // The same CR3 read as a PDPT now: kDir's entry 0 is zero (PDE 0 of the 32-bit tables).
  pae_paging(kDir, cr4::PGE);
  EXPECT_EQ(mmu_->mapped_pages(), 0u);
  expect_outcome(probe_->read32(true, kUserPage), FillOutcome::GuestPageFault);
}

}  // namespace
}  // namespace vmm86::test
