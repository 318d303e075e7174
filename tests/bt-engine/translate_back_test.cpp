// Translate-back (translator/translate_back.h) over made-up blocks: a host PC map as the
// translator would build it, and the corrections applied to a made-up signal context.
#include "translator/translate_back.h"

#include <gtest/gtest.h>

namespace vmm86 {
namespace {

/// A block at guest 0x1000: a 16-byte prologue, then `inc eax` (host 0x10), an inlined
/// PC-thunk call that retires three instructions (0x20), `rep movsb` as a host string
/// instruction (0x40), and `jmp` (0x50). One count segment counted all six at the start.
Block make_block() {
  Block b;
  b.key.eip = 0x1000;
  b.pc_map = {{0x10, 0x1000, 0, 6}, {0x20, 0x1001, 1, 6}, {0x40, 0x1006, 4, 6}, {0x50, 0x1008, 5, 6}};
  b.host_pointer_sites = {{0x40, host_ptr::Rsi | host_ptr::Rdi}};
  return b;
}

TEST(TranslateBack, PrologueIsTheBlockStartWithNothingCounted) {
  GuestLocation at;
  ASSERT_TRUE(translate_back(make_block(), 0x4, &at));
  EXPECT_EQ(at.eip, 0x1000u);
  EXPECT_EQ(at.not_retired, 0u);
  EXPECT_EQ(at.host_pointer_regs, 0u);
}

TEST(TranslateBack, EveryHostByteBelongsToTheInstructionBeforeIt) {
  const Block b = make_block();
  GuestLocation at;
  ASSERT_TRUE(translate_back(b, 0x10, &at));
  EXPECT_EQ(at.eip, 0x1000u);
  EXPECT_EQ(at.not_retired, 6u);
  ASSERT_TRUE(translate_back(b, 0x3F, &at));
  EXPECT_EQ(at.eip, 0x1001u);
  EXPECT_EQ(at.not_retired, 5u);
  ASSERT_TRUE(translate_back(b, 0x1000, &at));  // past the last entry: the last instruction
  EXPECT_EQ(at.eip, 0x1008u);
  EXPECT_EQ(at.not_retired, 1u);
}

TEST(TranslateBack, PointerRegistersOnlyAtTheStringInstructionItself) {
  const Block b = make_block();
  GuestLocation at;
  ASSERT_TRUE(translate_back(b, 0x40, &at));
  EXPECT_EQ(at.eip, 0x1006u);
  EXPECT_EQ(at.not_retired, 2u);
  EXPECT_EQ(at.host_pointer_regs, host_ptr::Rsi | host_ptr::Rdi);
  ASSERT_TRUE(translate_back(b, 0x41, &at));  // after it: the guest registers are the guest's
  EXPECT_EQ(at.host_pointer_regs, 0u);
}

// A block of a page that is not write-protected checks its guest bytes on entry, in code
// placed after the body and run before anything is counted. A fault in one of its guest
// loads (the window lost the page and the guest's tables no longer allow it) is at the
// block's start, not at its last instruction.
TEST(TranslateBack, TheEntryCodeCheckIsTheBlockStart) {
  Block b = make_block();
  b.verifies_code = true;
  b.code_check_offset = 0x60;
  GuestLocation at;
  ASSERT_TRUE(translate_back(b, 0x64, &at));
  EXPECT_EQ(at.eip, 0x1000u);
  EXPECT_EQ(at.not_retired, 0u);
  ASSERT_TRUE(translate_back(b, 0x5F, &at));  // before it: still the last instruction
  EXPECT_EQ(at.eip, 0x1008u);
}

TEST(TranslateBack, ABlockWithoutPcMapCannotBeTranslatedBack) {
  GuestLocation at;
  EXPECT_FALSE(translate_back(Block{}, 0, &at));
}

TEST(TranslateBack, ApplyCorrectsTheRetiredCountAndWindowPointers) {
  constexpr uint64_t kWindow = 0x7f0000000000;
  gregset_t regs{};
  regs[REG_R14] = 100;
  regs[REG_RSI] = static_cast<greg_t>(kWindow + 0x2000);
  regs[REG_RDI] = static_cast<greg_t>(kWindow + 0xFFFFF000);
  regs[REG_RCX] = 7;
  GuestLocation{0x1006, 2, host_ptr::Rsi | host_ptr::Rdi}.apply(regs, kWindow);
  EXPECT_EQ(regs[REG_R14], 98);
  EXPECT_EQ(regs[REG_RSI], 0x2000);
  EXPECT_EQ(regs[REG_RDI], 0xFFFFF000);
  EXPECT_EQ(regs[REG_RCX], 7);  // the remaining count already
}

TEST(TranslateBack, ApplyLeavesGuestRegistersAlone) {
  gregset_t regs{};
  regs[REG_R14] = 5;
  regs[REG_RSI] = 0x1234;
  regs[REG_RDI] = 0x5678;
  GuestLocation{0x1000, 0, 0}.apply(regs, 0x7f0000000000);
  EXPECT_EQ(regs[REG_R14], 5);
  EXPECT_EQ(regs[REG_RSI], 0x1234);
  EXPECT_EQ(regs[REG_RDI], 0x5678);
}

}  // namespace
}  // namespace vmm86
