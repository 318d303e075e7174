// Lookups in the inline indirect-branch table (translator/indirect_table.h).
#include "tests/translator/translator_fixture.h"

namespace vmm86::translator_test {
namespace {

// The inline table (indirect_table.h) as the dispatcher reads it: a remembered block is
// found in its mode and address space only, and forgetting it removes it.
TEST_F(TranslatorTest, IndirectTableHitsOnlyInItsModeAndSpace) {
  load([](x86::Assembler& a) { a.hlt(); });
  load(
      [](x86::Assembler& a) {
        a.nop();
        a.hlt();
      },
      kCodeBase + 0x100);
  ctx_->cpu.eip = kCodeBase + 0x100;
  Block* block = nullptr;
  ASSERT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::Ok);
  const uint32_t eip = block->key.eip;
  EXPECT_EQ(translator_->indirect_target(eip), nullptr);
  translator_->remember_indirect_target(eip, block);
  EXPECT_EQ(translator_->indirect_target(eip), block->host_code);
  EXPECT_EQ(translator_->indirect_target(eip + (1u << 20)), nullptr) << "another EIP in the same slot";
  ctx_->lookup_salt += 1;  // another translation mode
  EXPECT_EQ(translator_->indirect_target(eip), nullptr);
  ctx_->lookup_salt -= 1;
  translator_->code_tlb().flush_all();  // the page maps to other code now
  EXPECT_EQ(translator_->indirect_target(eip), nullptr);
  ASSERT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::Ok);  // refills the code TLB
  EXPECT_EQ(translator_->indirect_target(eip), block->host_code);
  translator_->forget_indirect_target(eip);
  EXPECT_EQ(translator_->indirect_target(eip), nullptr);
}

}  // namespace
}  // namespace vmm86::translator_test
