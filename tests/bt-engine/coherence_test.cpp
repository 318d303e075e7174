// The coherence point (vmm/engine/coherence.h): CR0/CR3/CR4 writes and INVLPG reach the
// shadow windows, the code TLB, the inline table's salt and the interpreter's TLB together.
// Page tables in guest RAM, caches filled by hand or by one interpreted load; no translated
// code runs.
#include "vmm/engine/coherence.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/support/no_devices.h"

namespace vmm86 {
namespace {

constexpr uint32_t kDir = 0x1000, kDir2 = 0x2000, kTable = 0x3000;
constexpr uint32_t kLocal = 0x400000, kGlobal = 0x401000;  ///< linear pages, one table
constexpr uint32_t kCodePage = 0x402000;                   ///< the interpreter's code, same table
constexpr uint64_t kLocalFrame = 0x10000, kGlobalFrame = 0x20000, kCodeFrame = 0x30000, kOtherFrame = 0x40000;
constexpr uint32_t kP = 1, kW = 2, kU = 4, kG = 0x100;

class CoherenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::create(16u << 20);
    ASSERT_TRUE(m) << m.error();
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
    ctx_ = create_exec_context();
    ASSERT_TRUE(ctx_);
    for (uint32_t dir : {kDir, kDir2}) poke(dir + (kLocal >> 22) * 4, kTable | kP | kW | kU);
    poke(kTable + ((kLocal >> 12) & 0x3FF) * 4, kLocalFrame | kP | kW | kU);
    poke(kTable + ((kGlobal >> 12) & 0x3FF) * 4, kGlobalFrame | kP | kW | kU | kG);
    poke(kTable + ((kCodePage >> 12) & 0x3FF) * 4, kCodeFrame | kP | kW | kU);
    mmu_ = std::make_unique<ShadowMmu>(*mem_);
    const Status ready = mmu_->init();
    ASSERT_TRUE(ready) << ready.error();
    tlb_ = std::make_unique<CodeTlb>(*ctx_);
    interp_ = std::make_unique<Interpreter>(cpu(), *mem_, hooks_);
    prefetch_ = std::make_unique<CodeTlbPrefetch>(*mem_, cpu(), *mmu_, *tlb_);
    coherence_ = std::make_unique<TranslationCoherence>(cpu(), *mmu_, *tlb_, *prefetch_, *interp_);
    cpu().cr0 = cr0::PE | cr0::PG;
    cpu().cr3 = kDir;
    cpu().cr4 = cr4::PGE;
    coherence_->sync();
  }

  CpuState& cpu() { return ctx_->cpu; }
  void poke(uint64_t phys, uint32_t v) { ASSERT_TRUE(mem_->write(GuestPhys{phys}, &v, 4)); }
  void fill_code_tlb() {
    tlb_->fill(false, GuestLinear{kLocal}, GuestPhys{kLocalFrame}, false, false);
    tlb_->fill(false, GuestLinear{kGlobal}, GuestPhys{kGlobalFrame}, true, false);
  }
  bool local_cached() const { return tlb_->confirms(false, GuestLinear{kLocal}.page(), GuestPhys{kLocalFrame}.page()); }
  bool global_cached() const {
    return tlb_->confirms(false, GuestLinear{kGlobal}.page(), GuestPhys{kGlobalFrame}.page());
  }
  /// The interpreter runs `mov eax, [kLocal]` at CPL 0 in flat segments; what it loaded.
  uint32_t interpreted_load() {
    const uint8_t code[] = {0xA1, kLocal & 0xFF, (kLocal >> 8) & 0xFF, (kLocal >> 16) & 0xFF, kLocal >> 24};
    EXPECT_TRUE(mem_->write(GuestPhys{kCodeFrame}, code, sizeof code));
    const auto flat = [](uint16_t selector, uint16_t attr) { return SegmentCache{selector, 0, 0xFFFFFFFFu, attr}; };
    cpu().sreg(SegReg::Cs) = flat(0x08, 0xC09B);
    for (SegReg s : {SegReg::Ds, SegReg::Es, SegReg::Ss}) cpu().sreg(s) = flat(0x10, 0xC093);
    cpu().eip = kCodePage;
    cpu().reg(Gpr::Eax) = 0;
    EXPECT_EQ(interp_->step(), StepStatus::Retired);
    return cpu().reg(Gpr::Eax);
  }

  std::unique_ptr<GuestMemory> mem_;
  ExecContextPtr ctx_;
  NoDevices hooks_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::unique_ptr<CodeTlb> tlb_;
  std::unique_ptr<Interpreter> interp_;
  std::unique_ptr<CodeTlbPrefetch> prefetch_;
  std::unique_ptr<TranslationCoherence> coherence_;
};

TEST_F(CoherenceTest, Cr3SwitchDropsNonGlobalTranslationsEverywhere) {
  fill_code_tlb();
  ASSERT_EQ(mmu_->fill(false, GuestLinear{kLocal}, false).outcome, FillOutcome::Mapped);
  const uint32_t salt = coherence_->global_salt();
  cpu().cr3 = kDir2;
  coherence_->paging_written();
  EXPECT_EQ(mmu_->mode().cr3, kDir2);
  EXPECT_FALSE(local_cached());
  EXPECT_TRUE(global_cached());
  EXPECT_EQ(coherence_->global_salt(), salt);  // the code TLB confirms table entries
}

TEST_F(CoherenceTest, SameValueCr3WriteFlushesNonGlobalTranslations) {
  fill_code_tlb();
  coherence_->paging_written();
  EXPECT_FALSE(local_cached());
  EXPECT_TRUE(global_cached());
}

TEST_F(CoherenceTest, SwitchingBackPrefetchesTheCodePagesTheSpaceHad) {
  fill_code_tlb();
  cpu().cr3 = kDir2;
  coherence_->paging_written();
  ASSERT_FALSE(local_cached());
  cpu().cr3 = kDir;
  coherence_->paging_written();
  EXPECT_TRUE(local_cached());  // walked again in the guest's tables, not remembered blindly
}

TEST_F(CoherenceTest, PagingBitsChangeDropsEverythingAndSaltsTheTable) {
  fill_code_tlb();
  const uint32_t salt = coherence_->global_salt();
  cpu().cr4 = 0;
  coherence_->sync();  // as the dispatcher finds it, without a hook
  EXPECT_EQ(mmu_->mode().cr4, 0u);
  EXPECT_FALSE(local_cached());
  EXPECT_FALSE(global_cached());
  EXPECT_NE(coherence_->global_salt(), salt);
}

TEST_F(CoherenceTest, InvlpgTakesThePageOutOfWindowsAndCodeTlb) {
  fill_code_tlb();
  ASSERT_EQ(mmu_->fill(false, GuestLinear{kLocal}, false).outcome, FillOutcome::Mapped);
  const size_t mapped = mmu_->mapped_pages();
  coherence_->invlpg(GuestLinear{kLocal});
  EXPECT_LT(mmu_->mapped_pages(), mapped);
  EXPECT_FALSE(local_cached());
  EXPECT_TRUE(global_cached());
}

// The interpreter's TLB is one of the caches: whoever reports an INVLPG here (an
// interpreted one, a callout's, BtEngine::invlpg), the interpreter's next access walks the
// guest's tables again.
TEST_F(CoherenceTest, InvlpgReachesTheInterpretersTlb) {
  poke(kLocalFrame, 0x11111111);
  poke(kOtherFrame, 0x22222222);
  ASSERT_EQ(interpreted_load(), 0x11111111u);  // the translation is in the interpreter's TLB now
  poke(kTable + ((kLocal >> 12) & 0x3FF) * 4, kOtherFrame | kP | kW | kU);
  ASSERT_EQ(interpreted_load(), 0x11111111u);  // as a CPU may: the old translation is cached
  coherence_->invlpg(GuestLinear{kLocal + 0x123});
  EXPECT_EQ(interpreted_load(), 0x22222222u);
}

TEST_F(CoherenceTest, Cr3WriteReachesTheInterpretersTlb) {
  poke(kLocalFrame, 0x11111111);
  poke(kOtherFrame, 0x22222222);
  ASSERT_EQ(interpreted_load(), 0x11111111u);
  poke(kTable + ((kLocal >> 12) & 0x3FF) * 4, kOtherFrame | kP | kW | kU);
  coherence_->paging_written();  // the same CR3 again: how Linux flushes its TLB
  EXPECT_EQ(interpreted_load(), 0x22222222u);
}

TEST_F(CoherenceTest, UnchangedRegistersChangeNothing) {
  fill_code_tlb();
  const uint32_t salt = coherence_->global_salt();
  coherence_->sync();
  EXPECT_TRUE(local_cached());
  EXPECT_TRUE(global_cached());
  EXPECT_EQ(coherence_->global_salt(), salt);
}

// clts and the TS a lazy-FPU kernel sets on every task switch, and CR4's FPU/TSC bits,
// change no translation: nothing is dropped (a found-by-reading: any CR0/CR4 change used to
// flush the code TLB and salt the table, twice per task switch on such kernels).
TEST_F(CoherenceTest, NonPagingBitsOfCr0AndCr4KeepEveryTranslation) {
  fill_code_tlb();
  const uint32_t salt = coherence_->global_salt();
  cpu().cr0 |= cr0::TS | cr0::MP;
  cpu().cr4 |= cr4::OSFXSR | cr4::TSD;
  coherence_->paging_written();
  EXPECT_TRUE(local_cached());
  EXPECT_TRUE(global_cached());
  EXPECT_EQ(coherence_->global_salt(), salt);
  cpu().cr0 &= ~cr0::TS;  // clts
  coherence_->sync();
  EXPECT_TRUE(local_cached());
  EXPECT_TRUE(global_cached());
  EXPECT_EQ(coherence_->global_salt(), salt);
}

}  // namespace
}  // namespace vmm86
