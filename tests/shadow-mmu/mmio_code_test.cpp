// Frames that must never be mapped writable (translated code) or at all (MMIO, unbacked):
// fill() answers CodeWrite or Mmio, also when they sit inside a 4 MiB page or inside the
// identity mapping used while paging is off.
#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kLinear = 0x00400000;
constexpr uint32_t kMmioFrame = 0xA0;  // the legacy VGA hole, 0xA0000-0xBFFFF
constexpr uint32_t kCode = 0x30, kData = 0x31;

class MmioCodeTest : public ShadowMmuTest {
 protected:
  void SetUp() override {
    ShadowMmuTest::SetUp();
    mem_->add_region({GuestPhys{uint64_t{kMmioFrame} << kPageShift}, 0x20000, PhysKind::Mmio, "vga"});
  }
  void expect_outcome(const ProbeResult& r, FillOutcome want) {
    EXPECT_FALSE(r.completed);
    EXPECT_FALSE(r.stray);
    EXPECT_EQ(r.outcome, want);
  }
};

TEST_F(MmioCodeTest, MmioFrameIsNeverMapped) {
  map4k(kDir, kTable, kLinear, kMmioFrame + 0x18, P | W | U);  // 0xB8000, VGA text
  paging(kDir);
  for (bool user : {false, true}) {
    expect_outcome(probe_->read32(user, kLinear), FillOutcome::Mmio);
    expect_outcome(probe_->write32(user, kLinear, 1), FillOutcome::Mmio);
  }
  EXPECT_EQ(mmu_->stats().mmio_faults, 4u);
  EXPECT_EQ(mmu_->mapped_pages(), 0u);
}

TEST_F(MmioCodeTest, FrameOutsideRamIsMmio) {
  map4k(kDir, kTable, kLinear, 0xFEC00, P | W);  // where an IOAPIC would be
  paging(kDir);
  expect_outcome(probe_->read32(false, kLinear), FillOutcome::Mmio);
}

TEST_F(MmioCodeTest, MmioHoleInsideALargePage) {
  // Linux maps low memory with 4 MiB pages that cover the VGA hole.
  set_pde(kDir, 0xC0000000, P | W | PS | D);
  paging(kDir);
  EXPECT_EQ(frame_seen(false, 0xC0000000 + 0x9F000), 0x9Fu);
  EXPECT_EQ(frame_seen(false, 0xC0000000 + 0xC0000), 0xC0u);
  expect_outcome(probe_->read32(false, 0xC0000000 + (kMmioFrame << kPageShift)), FillOutcome::Mmio);
  expect_outcome(probe_->write32(false, 0xC0000000 + 0xB8000, 1), FillOutcome::Mmio);
}

TEST_F(MmioCodeTest, MmioHoleWhilePagingIsOff) {
  mmu_->set_mode(PagingMode{cr0::PE, 0, 0});
  EXPECT_EQ(frame_seen(false, 0x9F000), 0x9Fu);
  EXPECT_EQ(frame_seen(false, 0x100000), 0x100u);
  expect_outcome(probe_->write32(false, 0xB8000, 0x0741), FillOutcome::Mmio);
  EXPECT_EQ(peek(0xB8000), frame_tag(0xB8)) << "the store did not land in RAM behind the hole";
}

TEST_F(MmioCodeTest, CodePageWriteIsReportedAndReadsStillWork) {
  map4k(kDir, kTable, kLinear, kCode, P | W | U | A | D);
  paging(kDir);
  mmu_->protect_code_page(PhysPage{kCode});
  for (bool user : {false, true}) {
    EXPECT_EQ(frame_seen(user, kLinear), kCode);
    expect_outcome(probe_->write32(user, kLinear, 1), FillOutcome::CodeWrite);
    EXPECT_EQ(frame_seen(user, kLinear), kCode) << "still readable after the write was refused";
  }
  EXPECT_EQ(peek(uint64_t{kCode} << kPageShift), frame_tag(kCode));
  EXPECT_EQ(mmu_->stats().code_write_faults, 2u);
}

TEST_F(MmioCodeTest, ProtectingAMappedPageWriteProtectsEveryAlias) {
  // The same frame at two linear pages, mapped writable in both windows before it holds code.
  map4k(kDir, kTable, kLinear, kCode, P | W | U | A | D);
  set_pte(kTable, kLinear + kPageSize, (kCode << kPageShift) | P | W | U | A | D);
  set_pte(kTable, kLinear + 2 * kPageSize, (kData << kPageShift) | P | W | U | A | D);
  paging(kDir);
  for (bool user : {false, true}) {
    for (uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(probe_->write32(user, kLinear + i * kPageSize + 4, i).completed);
  }
  mmu_->protect_code_page(PhysPage{kCode});
  for (bool user : {false, true}) {
    for (uint32_t i = 0; i < 2; ++i) {
      expect_outcome(probe_->write32(user, kLinear + i * kPageSize, 9), FillOutcome::CodeWrite);
      EXPECT_EQ(frame_seen(user, kLinear + i * kPageSize), kCode);
    }
    const ProbeResult data = probe_->write32(user, kLinear + 2 * kPageSize + 4, 7);
    EXPECT_TRUE(data.completed);
    EXPECT_EQ(data.fills, 0u) << "the data page next to it keeps its writable mapping";
  }
}

TEST_F(MmioCodeTest, UnprotectedPageBecomesWritableAgain) {
  map4k(kDir, kTable, kLinear, kCode, P | W | U | A | D);
  paging(kDir);
  mmu_->protect_code_page(PhysPage{kCode});
  expect_outcome(probe_->write32(true, kLinear, 1), FillOutcome::CodeWrite);
  mmu_->unprotect_code_page(PhysPage{kCode});
  EXPECT_TRUE(probe_->write32(true, kLinear, 0xC0DE).completed);
  EXPECT_EQ(peek(uint64_t{kCode} << kPageShift), 0xC0DEu);
}

TEST_F(MmioCodeTest, CodePageInsideALargePage) {
  set_pde(kDir, 0xC0000000, (0x800u << kPageShift) | P | W | PS | D);
  paging(kDir);
  mmu_->protect_code_page(PhysPage{0x805});
  EXPECT_TRUE(probe_->write32(false, 0xC0004000, 1).completed);
  EXPECT_TRUE(probe_->write32(false, 0xC0006000, 1).completed);
  expect_outcome(probe_->write32(false, 0xC0005000, 1), FillOutcome::CodeWrite);
  EXPECT_EQ(frame_seen(false, 0xC0005000), 0x805u);
  // Protecting a page of a 4 MiB mapping that is already in place.
  mmu_->protect_code_page(PhysPage{0x806});
  expect_outcome(probe_->write32(false, 0xC0006000, 2), FillOutcome::CodeWrite);
  EXPECT_TRUE(probe_->write32(false, 0xC0007000, 2).completed);
}

TEST_F(MmioCodeTest, CodeWriteWhilePagingIsOff) {
  mmu_->set_mode(PagingMode{cr0::PE, 0, 0});
  EXPECT_TRUE(probe_->write32(false, 0x7000, 1).completed);
  mmu_->protect_code_page(PhysPage{0x7});
  expect_outcome(probe_->write32(false, 0x7000, 2), FillOutcome::CodeWrite);
  EXPECT_EQ(peek(0x7000), 1u);
  mmu_->unprotect_code_page(PhysPage{0x7});
  EXPECT_TRUE(probe_->write32(false, 0x7000, 3).completed);
  EXPECT_EQ(peek(0x7000), 3u);
}

}  // namespace
}  // namespace vmm86::test
