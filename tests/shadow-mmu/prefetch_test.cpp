// Fills that map more than the faulting page: neighbours the guest already used, and the
// pages an address space had when it comes back after a CR3 switch. Whatever is mapped
// ahead must be exactly what the guest's tables say now.
#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

class PrefetchTest : public ShadowMmuTest {
 protected:
  static constexpr uint32_t kBase = 0x08040000;  // 4 KiB pages, frames 0x400.. in order
  static constexpr uint32_t kFrame = 0x400;
};

TEST_F(PrefetchTest, UsedNeighboursWithFollowingFramesComeInOneFill) {
  for (uint32_t i = 0; i < 8; ++i) map4k(kDir, kTable, kBase + i * kPageSize, kFrame + i, P | W | U | A);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kBase + 3 * kPageSize), kFrame + 3);
  const uint64_t fills = mmu_->stats().fills;
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(frame_seen(true, kBase + i * kPageSize), kFrame + i);
  EXPECT_EQ(mmu_->stats().fills, fills) << "the used neighbours were mapped with the first fill";
}

TEST_F(PrefetchTest, NeighboursNeverUsedOrElsewhereWaitForTheirOwnFault) {
  map4k(kDir, kTable, kBase, kFrame, P | W | U | A);
  map4k(kDir, kTable, kBase + kPageSize, kFrame + 1, P | W | U);          // A clear: not used yet
  map4k(kDir, kTable, kBase + 2 * kPageSize, kFrame + 7, P | W | U | A);  // another frame
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kBase), kFrame);
  const uint64_t fills = mmu_->stats().fills;
  EXPECT_EQ(frame_seen(true, kBase + kPageSize), kFrame + 1);
  EXPECT_EQ(frame_seen(true, kBase + 2 * kPageSize), kFrame + 7);
  EXPECT_EQ(mmu_->stats().fills, fills + 2);
  EXPECT_NE(peek(pte_addr(kTable, kBase + kPageSize)) & A, 0u) << "its own access set A";
}

TEST_F(PrefetchTest, ComingBackAfterACr3SwitchSeesTheTablesAsTheyAreNow) {
  // Two address spaces share one page (same frame) and differ on another.
  map4k(kDir, kTable, kBase, kFrame, P | W | U | A);
  map4k(kDir, kTable, kBase + 0x100000, kFrame + 1, P | W | U | A);
  map4k(kDir2, kTable2, kBase, kFrame, P | W | U | A);
  map4k(kDir2, kTable2, kBase + 0x100000, kFrame + 2, P | W | U | A);
  paging(kDir);
  EXPECT_EQ(frame_seen(true, kBase), kFrame);
  EXPECT_EQ(frame_seen(true, kBase + 0x100000), kFrame + 1);
  paging(kDir2);
  EXPECT_EQ(frame_seen(true, kBase), kFrame);
  EXPECT_EQ(frame_seen(true, kBase + 0x100000), kFrame + 2);
  // While the first address space is away, its table changes (no INVLPG: the CR3 write
  // on the way back is the flush).
  set_pte(kTable, kBase + 0x100000, ((kFrame + 5) << kPageShift) | P | W | U | A);
  paging(kDir);
  EXPECT_GT(mmu_->stats().space_reuses, 0u) << "the first address space's windows were kept";
  EXPECT_GT(mmu_->stats().revalidated_kept, 0u) << "the shared page stayed mapped";
  EXPECT_EQ(mmu_->stats().revalidated_remapped, 1u) << "the changed page was mapped to its new frame";
  const uint64_t fills = mmu_->stats().fills;
  EXPECT_EQ(frame_seen(true, kBase), kFrame);
  EXPECT_EQ(frame_seen(true, kBase + 0x100000), kFrame + 5) << "a kept window shows the new translation";
  EXPECT_EQ(mmu_->stats().fills, fills) << "both pages were mapped by the switch";
  // A page that is gone must fault.
  set_pte(kTable2, kBase + 0x100000, 0);
  paging(kDir2);
  EXPECT_GT(mmu_->stats().revalidated_dropped, 0u) << "the page gone was taken out";
  const ProbeResult r = probe_->read32(true, kBase + 0x100000);
  EXPECT_FALSE(r.completed) << "not present after the switch";
}

}  // namespace
}  // namespace vmm86::test
