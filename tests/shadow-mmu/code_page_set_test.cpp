// Two vCPUs' shadow MMUs sharing one code-page set (SMP): code one vCPU translates makes the
// page read-only in the other's windows too, a write by one is reported to the holders,
// and the page becomes writable again only once no vCPU holds code there.
#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kLinear = 0x00400000;
constexpr uint32_t kCode = 0x30;

class CodePageSetTest : public ShadowMmuTest {
 protected:
  void SetUp() override {
    ShadowMmuTest::SetUp();
    // vCPU 0 is the fixture's MMU (its probe writes through vCPU 0's windows), rebuilt on the
    // shared set; vCPU 1 has windows of its own.
    probe_.reset();
    set_ = std::make_unique<CodePageSet>(kRam >> kPageShift);
    mmu_ = std::make_unique<ShadowMmu>(*mem_, *set_, 0);
    other_ = std::make_unique<ShadowMmu>(*mem_, *set_, 1);
    ASSERT_TRUE(mmu_->init());
    ASSERT_TRUE(other_->init());
    set_->attach(0, mmu_.get());
    set_->attach(1, other_.get());
    set_->set_foreign_write_listener(
        [this](unsigned holder, PhysPage page) { told_.emplace_back(holder, page.value); });
    probe_.emplace(*mmu_);
  }
  void TearDown() override {
    ShadowMmuTest::TearDown();
    other_.reset();
  }

  std::unique_ptr<CodePageSet> set_;
  std::unique_ptr<ShadowMmu> other_;
  std::vector<std::pair<unsigned, uint64_t>> told_;
};

TEST_F(CodePageSetTest, HoldersAreCountedPerVcpu) {
  CodePageSet set(16);
  EXPECT_TRUE(set.add(PhysPage{3}, 0));
  EXPECT_FALSE(set.add(PhysPage{3}, 0));
  EXPECT_TRUE(set.add(PhysPage{3}, 5));
  EXPECT_EQ(set.holders(PhysPage{3}), 0x21);
  EXPECT_TRUE(set.add(PhysPage{0xFFFF0}, 1));  // beyond RAM (ROM)
  EXPECT_TRUE(set.held_by(PhysPage{0xFFFF0}, 1));
  set.remove(PhysPage{3}, 0);
  EXPECT_FALSE(set.held_by(PhysPage{3}, 0));
  EXPECT_TRUE(set.any(PhysPage{3}));
  set.remove(PhysPage{0xFFFF0}, 1);
  EXPECT_FALSE(set.any(PhysPage{0xFFFF0}));
}

TEST_F(CodePageSetTest, AnotherVcpusCodeWriteProtectsThisVcpusMapping) {
  map4k(kDir, kTable, kLinear, kCode, P | W | U | A | D);
  paging(kDir);
  ASSERT_TRUE(probe_->write32(false, kLinear, 1).completed);  // writable in vCPU 0's window now
  other_->protect_code_page(PhysPage{kCode});                 // vCPU 1 translates code there
  EXPECT_TRUE(mmu_->is_code_page(PhysPage{kCode}));
  EXPECT_FALSE(mmu_->holds_code_page(PhysPage{kCode}));
  const ProbeResult r = probe_->write32(false, kLinear, 2);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.outcome, FillOutcome::CodeWrite);
  mmu_->code_page_written(PhysPage{kCode});
  EXPECT_EQ(told_, (std::vector<std::pair<unsigned, uint64_t>>{{1, kCode}}));
  // Once vCPU 1 dropped its code there, vCPU 0's next write maps the page writable again.
  other_->unprotect_code_page(PhysPage{kCode});
  EXPECT_TRUE(probe_->write32(false, kLinear, 3).completed);
  EXPECT_EQ(peek(uint64_t{kCode} << kPageShift), 3u);
}

TEST_F(CodePageSetTest, OwnWritesAreNotReportedToItself) {
  mmu_->protect_code_page(PhysPage{kCode});
  mmu_->code_page_written(PhysPage{kCode});
  EXPECT_TRUE(told_.empty());
  other_->protect_code_page(PhysPage{kCode});
  other_->code_page_written(PhysPage{kCode});
  EXPECT_EQ(told_, (std::vector<std::pair<unsigned, uint64_t>>{{0, kCode}}));
}

}  // namespace
}  // namespace vmm86::test
