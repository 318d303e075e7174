// cli/sti/pushf/popf translated inline (rewrite_flags.cpp): the virtual IF, the pushf
// image, popf's masking, and when translated code must leave (the sti shadow with a
// request waiting, popf turning on IF or TF).
#include "tests/translator/translator_fixture.h"

namespace vmm86::translator_test {
namespace {

constexpr uint32_t kSystem = flags::IOPL | flags::NT | flags::AC | flags::ID;

class FlagsTest : public TranslatorTest {
 protected:
  void set_eflags(uint32_t v) { ctx_->cpu.eflags = v | flags::Reserved1; }
  [[nodiscard]] uint32_t eflags() const { return ctx_->cpu.eflags; }
  void request_waiting(bool waiting) { ctx_->cpu.pending.external_interrupt = waiting; }
  [[nodiscard]] uint8_t shadow() const { return ctx_->cpu.pending.interrupt_shadow; }
};

TEST_F(FlagsTest, CliAndStiRunInlineAndKeepTheStatusFlags) {
  set_eflags(flags::IF);
  request_waiting(false);
  load([](x86::Assembler& a) {
    a.mov(x86::eax, 0xFFFFFFFF);
    a.add(x86::eax, 1);  // CF ZF AF PF
    a.cli();
    a.pushfd();
    a.pop(x86::ebx);
    a.sti();
    a.nop();
    a.pushfd();
    a.pop(x86::ecx);
    a.cli();
    a.sti();  // IF already 1: no shadow
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  constexpr uint32_t kStatus = flags::CF | flags::ZF | flags::AF | flags::PF;
  EXPECT_EQ(reg(Gpr::Ebx), kStatus | flags::Reserved1);
  EXPECT_EQ(reg(Gpr::Ecx), kStatus | flags::Reserved1 | flags::IF);
  EXPECT_EQ(eflags(), kStatus | flags::Reserved1 | flags::IF);
  EXPECT_EQ(shadow(), 0);
  EXPECT_EQ(ctx_->retired, 11u);
  EXPECT_EQ(translator_->stats().enters, 1u) << "cli/sti/pushf must not leave translated code";
}

TEST_F(FlagsTest, PushfImageHasTheVirtualAndSystemFlagsButNotRfOrVm) {
  set_eflags(kSystem | flags::IF | flags::RF | flags::VIP | flags::CF);
  load([](x86::Assembler& a) {
    a.mov(x86::eax, 0x7FFFFFFF);
    a.add(x86::eax, 1);  // OF SF AF PF, CF=0 ZF=0
    a.std();
    a.pushfd();
    a.pop(x86::ebx);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  const uint32_t status = flags::OF | flags::SF | flags::AF | flags::PF | flags::DF;
  EXPECT_EQ(reg(Gpr::Ebx), status | kSystem | flags::IF | flags::VIP | flags::Reserved1);
  EXPECT_EQ(read32(kStackTop - 4), reg(Gpr::Ebx));
  // RF is not changed by these instructions (the interpreter keeps it too).
  EXPECT_EQ(eflags(), status | kSystem | flags::IF | flags::RF | flags::VIP | flags::Reserved1);
}

TEST_F(FlagsTest, PopfLoadsWhatCpl0MayWriteAndClearsRf) {
  set_eflags(flags::RF | flags::VIF | flags::VIP);
  load([](x86::Assembler& a) {
    a.push(static_cast<int32_t>(~flags::TF));  // every bit but TF, reserved ones included
    a.popfd();
    a.pushfd();
    a.pop(x86::eax);
    a.setc(x86::bl);  // the status flags really are in RFLAGS
    a.seto(x86::bh);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  const uint32_t want = flags::Status | flags::DF | flags::IF | kSystem | flags::VIF | flags::VIP | flags::Reserved1;
  EXPECT_EQ(eflags(), want);  // VM, RF, reserved bits: not loaded
  EXPECT_EQ(reg(Gpr::Eax), want);
  EXPECT_EQ(reg(Gpr::Ebx) & 0xFFFF, 0x0101u);
  EXPECT_EQ(reg(Gpr::Esp), kStackTop);
}

TEST_F(FlagsTest, PopfOfZeroClearsTheWritableFlags) {
  set_eflags(flags::Status | flags::DF | flags::IF | kSystem | flags::VIF);
  load([](x86::Assembler& a) {
    a.push(0);
    a.popfd();
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(eflags(), flags::VIF | flags::Reserved1);
}

TEST_F(FlagsTest, PopfSettingTfLeavesForTheInterpreter) {
  set_eflags(0);
  load([](x86::Assembler& a) {
    a.push(static_cast<int32_t>(flags::TF | flags::CF));
    a.popfd();
    a.nop();
    a.hlt();
  });
  ExitRecord* exit = run_translated();
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->kind, ExitKind::Callout);
  EXPECT_EQ(ctx_->cpu.eip, kCodeBase + 6);  // push imm32 (5) + popfd (1)
  EXPECT_EQ(eflags(), flags::TF | flags::CF | flags::Reserved1);
  EXPECT_EQ(ctx_->retired, 2u);
  EXPECT_EQ(translator_->current_mode(), Translator::kNotTranslatable);
}

TEST_F(FlagsTest, StiWithARequestWaitingLeavesAtTheShadowedInstruction) {
  set_eflags(0);
  request_waiting(true);
  load([](x86::Assembler& a) {
    a.nop();
    a.sti();
    a.inc(x86::eax);  // in the shadow: the interpreter runs it before the interrupt
    a.inc(x86::eax);
    a.hlt();
  });
  ctx_->cpu.reg(Gpr::Eax) = 0;
  ExitRecord* exit = run_translated();
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->kind, ExitKind::Interpret);
  EXPECT_EQ(ctx_->cpu.eip, kCodeBase + 2);
  EXPECT_EQ(shadow(), 1);
  EXPECT_EQ(eflags(), flags::IF | flags::Reserved1);
  EXPECT_EQ(ctx_->retired, 2u);  // nop, sti: the rest of the block did not run
  EXPECT_EQ(reg(Gpr::Eax), 0u);
}

TEST_F(FlagsTest, StiWithIfAlreadySetHasNoShadow) {
  set_eflags(flags::IF);
  request_waiting(true);
  load([](x86::Assembler& a) {
    a.sti();
    a.inc(x86::eax);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(shadow(), 0);
  EXPECT_EQ(ctx_->retired, 2u);
}

TEST_F(FlagsTest, StiWithNothingWaitingStaysInline) {
  set_eflags(0);
  request_waiting(false);
  load([](x86::Assembler& a) {
    a.sti();
    a.inc(x86::eax);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(eflags() & flags::IF, flags::IF);
  EXPECT_EQ(shadow(), 0);
  EXPECT_EQ(ctx_->retired, 2u);
}

TEST_F(FlagsTest, PopfTurningOnIfWithARequestWaitingLeavesRightAfter) {
  set_eflags(0);
  request_waiting(true);
  load([](x86::Assembler& a) {
    a.push(static_cast<int32_t>(flags::IF));
    a.popfd();
    a.inc(x86::eax);  // no shadow after popf: the interrupt comes before this
    a.hlt();
  });
  ExitRecord* exit = run_translated();
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->kind, ExitKind::Callout);
  EXPECT_EQ(ctx_->cpu.eip, kCodeBase + 6);  // push imm32 (5) + popfd (1)
  EXPECT_EQ(ctx_->retired, 2u);
  EXPECT_EQ(shadow(), 0);
  EXPECT_EQ(eflags(), flags::IF | flags::Reserved1);
}

TEST_F(FlagsTest, PopfWithIfAlreadySetStaysInline) {
  set_eflags(flags::IF);
  request_waiting(true);
  load([](x86::Assembler& a) {
    a.push(static_cast<int32_t>(flags::IF | flags::ZF));
    a.popfd();
    a.inc(x86::eax);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(ctx_->retired, 3u);
}

TEST_F(FlagsTest, StiAtTheEndOfABlockIsLeftToTheInterpreter) {
  // sti in the last byte of a page: the shadowed instruction is in the next block.
  constexpr uint32_t kBase = kCodeBase + kPageSize - 4;
  set_eflags(0);
  request_waiting(false);
  load(
      [](x86::Assembler& a) {
        a.nop();
        a.nop();
        a.nop();
        a.sti();
        a.inc(x86::eax);
        a.hlt();
      },
      kBase);
  ctx_->cpu.eip = kBase;
  ExitRecord* exit = run_translated();
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->kind, ExitKind::Interpret);
  EXPECT_EQ(ctx_->cpu.eip, kBase + 3);
  Block* block = nullptr;
  EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::NeedsInterpreter);
}

TEST_F(FlagsTest, AtCpl3OnlyPushfIsTranslated) {
  // cli/sti/popf depend on IOPL at CPL 3: the interpreter runs them.
  for (auto& s : ctx_->cpu.seg) s = SegmentCache{0x23, 0, 0xFFFFFFFF, 0xC0F3};
  ctx_->cpu.sreg(SegReg::Cs) = SegmentCache{0x1B, 0, 0xFFFFFFFF, 0xC0FB};
  set_eflags(flags::IF);
  load([](x86::Assembler& a) {
    a.pushfd();
    a.pop(x86::eax);
    a.cli();
    a.hlt();
  });
  ExitRecord* exit = run_translated();
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->kind, ExitKind::Interpret);
  EXPECT_EQ(ctx_->cpu.eip, kCodeBase + 2);
  EXPECT_EQ(reg(Gpr::Eax), flags::IF | flags::Reserved1);
  for (const uint8_t op : {0xFA /* cli */, 0xFB /* sti */, 0x9D /* popfd */}) {
    *mem_->host_ptr(GuestPhys{kCodeBase + 2}) = op;
    translator_->flush();
    Block* block = nullptr;
    EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::NeedsInterpreter) << int(op);
  }
}

TEST_F(FlagsTest, SingleSteppingIsNotTranslated) {
  set_eflags(flags::TF);
  load([](x86::Assembler& a) {
    a.nop();
    a.hlt();
  });
  Block* block = nullptr;
  EXPECT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::NeedsInterpreter);
}

}  // namespace
}  // namespace vmm86::translator_test
