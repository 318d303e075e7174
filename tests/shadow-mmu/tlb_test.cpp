// TLB semantics of the windows: after INVLPG or a CR3 write no stale mapping is used;
// without them an old mapping may survive, but an access never reaches a frame the guest
// did not map at that address.
#include <map>
#include <random>
#include <set>

#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kUserPage = 0x00400000;    // PDE 1
constexpr uint32_t kKernelPage = 0xC0000000;  // PDE 768
constexpr uint32_t kOld = 0x20, kNew = 0x21, kOther = 0x22;

using TlbTest = ShadowMmuTest;

TEST_F(TlbTest, InvlpgMakesTheNewFrameVisible) {
  map4k(kDir, kTable, kUserPage, kOld, P | W | U);
  paging(kDir);
  for (bool user : {false, true}) EXPECT_EQ(frame_seen(user, kUserPage), kOld);
  set_pte(kTable, kUserPage, (kNew << kPageShift) | P | W | U);
  for (bool user : {false, true}) {
    const uint32_t seen = frame_seen(user, kUserPage);
    EXPECT_TRUE(seen == kOld || seen == kNew) << "without INVLPG: the old or the new frame, nothing else";
  }
  mmu_->invlpg(GuestLinear{kUserPage + 0x123});
  for (bool user : {false, true}) EXPECT_EQ(frame_seen(user, kUserPage), kNew);
}

TEST_F(TlbTest, InvlpgDropsOnlyThatPage) {
  map4k(kDir, kTable, kUserPage, kOld, P | W | U);
  set_pte(kTable, kUserPage + kPageSize, (kOther << kPageShift) | P | W | U);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kUserPage), kOld);
  EXPECT_EQ(frame_seen(true, kUserPage + kPageSize), kOther);
  const uint64_t fills = mmu_->stats().fills;
  mmu_->invlpg(GuestLinear{kUserPage});
  EXPECT_EQ(frame_seen(true, kUserPage + kPageSize), kOther);
  EXPECT_EQ(mmu_->stats().fills, fills) << "the neighbour stayed mapped";
}

TEST_F(TlbTest, PermissionDowngradeAfterInvlpgFaults) {
  map4k(kDir, kTable, kUserPage, kOld, P | W | U | A | D);
  paging(kDir);
  ASSERT_TRUE(probe_->write32(true, kUserPage, 1).completed);
  set_pte(kTable, kUserPage, (kOld << kPageShift) | P | U | A | D);  // read-only now
  mmu_->invlpg(GuestLinear{kUserPage});
  ProbeResult r = probe_->write32(true, kUserPage, 2);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.error_code, pf_error::Present | pf_error::Write | pf_error::User);
  EXPECT_TRUE(probe_->read32(true, kUserPage).completed);

  set_pte(kTable, kUserPage, kOld << kPageShift);  // not present
  mmu_->invlpg(GuestLinear{kUserPage});
  r = probe_->read32(true, kUserPage);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.error_code, pf_error::User);
}

TEST_F(TlbTest, DirtyAndAccessedAreSetAgainAfterTheGuestClearsThem) {
  map4k(kDir, kTable, kUserPage, kOld, P | W | U);
  paging(kDir);
  ASSERT_TRUE(probe_->write32(true, kUserPage, 1).completed);
  EXPECT_EQ(peek(pte_addr(kTable, kUserPage)) & (A | D), A | D);
  // The guest's page-out scan: clear A and D, flush, look again later.
  set_pte(kTable, kUserPage, (kOld << kPageShift) | P | W | U);
  mmu_->invlpg(GuestLinear{kUserPage});
  ASSERT_TRUE(probe_->read32(true, kUserPage).completed);
  EXPECT_EQ(peek(pte_addr(kTable, kUserPage)) & (A | D), A) << "a read sets A only";
  ASSERT_TRUE(probe_->write32(true, kUserPage, 2).completed);
  EXPECT_EQ(peek(pte_addr(kTable, kUserPage)) & (A | D), A | D) << "the first write after the flush sets D";
}

TEST_F(TlbTest, Cr3SwitchShowsTheOtherAddressSpace) {
  map4k(kDir, kTable, kUserPage, kOld, P | W | U);
  map4k(kDir2, kTable2, kUserPage, kNew, P | W | U);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kUserPage), kOld);
  paging(kDir2);
  EXPECT_EQ(frame_seen(true, kUserPage), kNew);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kUserPage), kOld);
}

TEST_F(TlbTest, Cr3ReloadWithTheSameValueFlushes) {
  // Linux flushes its own TLB by writing CR3 back unchanged (native_flush_tlb_local).
  map4k(kDir, kTable, kUserPage, kOld, P | W | U);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kUserPage), kOld);
  set_pte(kTable, kUserPage, (kNew << kPageShift) | P | W | U);
  mmu_->flush_non_global();  // the engine's answer to MOV CR3 with an unchanged value
  EXPECT_EQ(frame_seen(true, kUserPage), kNew);
}

class GlobalPagesTest : public ShadowMmuTest, public testing::WithParamInterface<bool> {
 protected:
  bool pge() const { return GetParam(); }
};

TEST_P(GlobalPagesTest, Cr3WriteDropsNonGlobalAndKeepsGlobalOnlyWithPge) {
  // Both address spaces share the kernel's table (as Linux does) with one global page.
  for (uint32_t dir : {kDir, kDir2}) set_pde(dir, kKernelPage, kTable3 | P | W);
  set_pte(kTable3, kKernelPage, (kOld << kPageShift) | P | W | G);
  map4k(kDir, kTable, kUserPage, kOld + 8, P | W | U);
  map4k(kDir2, kTable2, kUserPage, kNew + 8, P | W | U);
  const uint32_t cr4 = cr4::PSE | (pge() ? cr4::PGE : 0u);
  paging(kDir, cr4);
  EXPECT_EQ(frame_seen(false, kKernelPage), kOld);
  EXPECT_EQ(frame_seen(true, kUserPage), kOld + 8);

  // The kernel changes its global page in place, then switches address space.
  set_pte(kTable3, kKernelPage, (kNew << kPageShift) | P | W | G);
  paging(kDir2, cr4);
  EXPECT_EQ(frame_seen(true, kUserPage), kNew + 8) << "a non-global page never survives a CR3 write";
  const uint32_t seen = frame_seen(false, kKernelPage);
  if (pge()) {
    EXPECT_TRUE(seen == kOld || seen == kNew);
    mmu_->invlpg(GuestLinear{kKernelPage});
    EXPECT_EQ(frame_seen(false, kKernelPage), kNew) << "INVLPG drops global pages too";
  } else {
    EXPECT_EQ(seen, kNew) << "without CR4.PGE the G bit means nothing";
  }
}

TEST_P(GlobalPagesTest, TogglingPgeDropsGlobalPages) {
  set_pde(kDir, kKernelPage, kTable3 | P | W);
  set_pte(kTable3, kKernelPage, (kOld << kPageShift) | P | W | G);
  const uint32_t cr4 = cr4::PSE | (pge() ? cr4::PGE : 0u);
  paging(kDir, cr4);
  EXPECT_EQ(frame_seen(false, kKernelPage), kOld);
  set_pte(kTable3, kKernelPage, (kNew << kPageShift) | P | W | G);
  paging(kDir, cr4 ^ cr4::PGE);  // Linux's __flush_tlb_global
  EXPECT_EQ(frame_seen(false, kKernelPage), kNew);
}

INSTANTIATE_TEST_SUITE_P(Pge, GlobalPagesTest, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& p) { return p.param ? "Pge" : "NoPge"; });

TEST_F(TlbTest, InvlpgOfALargePageDropsAllOfIt) {
  constexpr uint32_t kA = 0x800, kB = 0xC00;  // two 4 MiB frames
  set_pde(kDir, kKernelPage, (kA << kPageShift) | P | W | PS | D);
  paging(kDir, cr4::PSE);
  for (uint32_t off : {0u, 0x1000u, 0x3FF000u}) EXPECT_EQ(frame_seen(false, kKernelPage + off), kA + (off >> 12));
  set_pde(kDir, kKernelPage, (kB << kPageShift) | P | W | PS | D);
  mmu_->invlpg(GuestLinear{kKernelPage + 0x200000});  // any address inside the page
  for (uint32_t off : {0u, 0x1000u, 0x3FF000u}) EXPECT_EQ(frame_seen(false, kKernelPage + off), kB + (off >> 12));
}

TEST_F(TlbTest, LargePageMappedByOneFill) {
  set_pde(kDir, kKernelPage, (0x800u << kPageShift) | P | W | PS | D);
  paging(kDir, cr4::PSE);
  EXPECT_EQ(frame_seen(false, kKernelPage), 0x800u);
  const uint64_t fills = mmu_->stats().fills;
  for (uint32_t off = 0; off < (4u << 20); off += kPageSize) {
    ASSERT_TRUE(probe_->write32(false, kKernelPage + off + 4, off).completed);
  }
  EXPECT_EQ(mmu_->stats().fills, fills) << "all 1024 pages came with the first fill (D was set)";
}

TEST_F(TlbTest, InvlpgAfterALargePageBecameATableLeavesNoHole) {
  // A 4 MiB page, mapped read-only (D clear), becomes a page table without a flush; a write
  // then maps one 4 KiB page from the new table inside the old 4 MiB mapping.
  set_pde(kDir, kKernelPage, (0x800u << kPageShift) | P | W | PS);
  paging(kDir, cr4::PSE);
  EXPECT_EQ(frame_seen(false, kKernelPage + 0x5000), 0x805u);
  set_pde(kDir, kKernelPage, kTable3 | P | W);
  for (uint32_t i = 0; i < 1024; ++i) {
    set_pte(kTable3, kKernelPage + (i << kPageShift), ((0x400 + i) << kPageShift) | P | W);
  }
  ASSERT_TRUE(probe_->write32(false, kKernelPage + 0x7004, 1).completed);
  EXPECT_EQ(peek(0x407004), 1u) << "the write walked the new table";
  // INVLPG of an address of the old 4 MiB page: every page in its range must show the old
  // or the new frame afterwards, also once the 4 KiB page's frame becomes a code page.
  mmu_->invlpg(GuestLinear{kKernelPage + 0x5000});
  EXPECT_EQ(frame_seen(false, kKernelPage + 0x5000), 0x405u);
  mmu_->protect_code_page(PhysPage{0x407});
  for (uint32_t page : {0u, 0x6u, 0x7u, 0x3FFu}) {
    const uint32_t seen = frame_seen(false, kKernelPage + (page << kPageShift));
    EXPECT_TRUE(seen == 0x800 + page || seen == 0x400 + page) << std::hex << seen;
  }
}

// Random page-table edits, invalidations, address-space switches and accesses, against a
// model of what a TLB may hold: after an access completes, the frame it reached must be
// the current translation or one the page had since its last invalidation.
TEST_F(TlbTest, RandomEditsNeverReachAFrameTheGuestDidNotMap) {
  constexpr uint32_t kPages = 8;
  constexpr uint32_t kDirs[] = {kDir, kDir2};
  constexpr uint32_t kTables[] = {kTable, kTable2};
  std::mt19937 rng(20240611);
  // Which frames each (address space, page) may still reach through a stale mapping.
  std::map<std::pair<int, uint32_t>, std::set<uint32_t>> may_hold;
  auto pte_of = [&](int as, uint32_t page) { return peek(pte_addr(kTables[as], kUserPage + (page << kPageShift))); };
  for (int as = 0; as < 2; ++as) {
    set_pde(kDirs[as], kUserPage, kTables[as] | P | W | U);
    for (uint32_t page = 0; page < kPages; ++page) {
      set_pte(kTables[as], kUserPage + (page << kPageShift), ((0x100 + page) << kPageShift) | P | W | U);
    }
  }
  int as = 0;
  paging(kDirs[as]);
  auto flush_space = [&](int space) {
    for (uint32_t page = 0; page < kPages; ++page) may_hold[{space, page}].clear();
  };
  int completed = 0, faulted = 0;
  for (int step = 0; step < 4000; ++step) {
    const uint32_t page = rng() % kPages;
    const uint32_t linear = kUserPage + (page << kPageShift);
    switch (rng() % 8) {
      case 0: {  // the guest edits a PTE of the current space: new frame, permissions, presence
        const uint32_t bits = (rng() % 4 ? P : 0) | (rng() % 2 ? W : 0) | (rng() % 4 ? U : 0);
        const uint32_t frame = 0x100 + rng() % 32;
        const uint32_t old = pte_of(as, page);
        if (old & P) may_hold[{as, page}].insert(old >> kPageShift);
        set_pte(kTables[as], linear, (frame << kPageShift) | bits);
        break;
      }
      case 1:
        mmu_->invlpg(GuestLinear{linear});
        may_hold[{as, page}].clear();
        break;
      case 2:
        as ^= 1;
        paging(kDirs[as]);
        flush_space(0);
        flush_space(1);
        break;
      default: {
        const bool user = rng() % 2;
        const bool write = rng() % 3 == 0;
        const uint32_t current = pte_of(as, page);
        const WalkResult want = walk_page_tables(*mem_, mmu_->mode(), GuestLinear{linear}, {write, user, false}, false);
        const uint32_t marker = 0xAB000000u | static_cast<uint32_t>(step);
        const ProbeResult r = write ? probe_->write32(user, linear + 8, marker) : probe_->read32(user, linear);
        ASSERT_FALSE(r.stray) << "step " << step;
        std::set<uint32_t> allowed = may_hold[{as, page}];
        if (current & P) allowed.insert(current >> kPageShift);
        if (!r.completed) {
          // A fault means fill() walked the current tables: it must agree with them.
          ++faulted;
          ASSERT_EQ(r.outcome, FillOutcome::GuestPageFault);
          ASSERT_FALSE(want.ok) << "step " << step;
          ASSERT_EQ(r.error_code, want.error_code);
          break;
        }
        ++completed;
        uint32_t reached = 0;
        if (write) {
          for (uint32_t f = 0x100; f < 0x120; ++f) {
            if (peek((uint64_t{f} << kPageShift) + 8) == marker) reached = f;
          }
        } else {
          reached = r.value & 0xFFFFF;
        }
        ASSERT_TRUE(allowed.count(reached)) << "step " << step << ": reached frame " << std::hex << reached;
        break;
      }
    }
  }
  EXPECT_GT(completed, 1000);
  EXPECT_GT(faulted, 100);
}

}  // namespace
}  // namespace vmm86::test
