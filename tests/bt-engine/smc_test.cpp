// Self-modifying code: writes to guest code — from translated code, through another linear
// alias of the page, by a string instruction, or by an instruction the interpreter runs —
// must make the new bytes take effect the next time they execute. Every program also runs
// on the interpreter alone (TwoRuns), which must agree on the state and the instruction count.
#include <gtest/gtest.h>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

TEST(SelfModifyingCode, PatchesTheImmediateOfTheNextInstruction) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel(), patched = a.newLabel();
    a.xor_(x86::edx, x86::edx);
    a.mov(x86::ecx, 5);
    a.bind(top);
    a.mov(x86::byte_ptr(patched, 1), x86::cl);  // the low byte of the next instruction's imm32
    a.bind(patched);
    a.mov(x86::eax, 0x11111100);
    a.add(x86::edx, x86::eax);
    a.loop(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Edx), 5u * 0x11111100u + (5 + 4 + 3 + 2 + 1));
  EXPECT_GE(m.engine().fault_stats().code_writes, 1u) << "the stores did not come from translated code";
  EXPECT_GE(m.tstats().invalidated_blocks, 5u);
}

/// A rep movs that overwrites the next instructions of its own block (found by the wide
/// differential test): the new bytes must run, paging off and on.
class RepMovsOverItsOwnBlock : public ::testing::TestWithParam<bool> {};

TEST_P(RepMovsOverItsOwnBlock, RunsTheNewBytes) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label target = a.newLabel();
    a.mov(x86::esi, kData);
    a.lea(x86::edi, x86::ptr(target));
    a.mov(x86::ecx, 5);
    a.rep().movsb();  // copies "mov eax, 0x22222222" over the instruction below
    a.bind(target);
    a.mov(x86::eax, 0x11111111);
    a.hlt();
    m.load(c);
    const uint8_t replacement[] = {0xB8, 0x22, 0x22, 0x22, 0x22};
    m.poke(kData, replacement, sizeof replacement);
    m.start(kCode, kStackTop, false, GetParam());
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Eax), 0x22222222u);
}

TEST_P(RepMovsOverItsOwnBlock, RewritesTheModRmOfAnX87Instruction) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    // mov ecx, 3; mov esi, kData+0xD09; mov edi, kCode+0x1D; rep movsb (66: ignored);
    // mov ecx, 0x22; mov ebx, kData+0x2CC6; fbstp [ebx+ecx*2-0x32]; fsincos; int1; hlt.
    // The copy turns "fbstp [...]" (df 74 4b ce) into "ffreep st0; nop; nop" (df c0 90 90).
    const uint8_t code[] = {0xB9, 0x03, 0x00, 0x00, 0x00, 0xBE, 0x09, 0x0D, 0x20, 0x00, 0xBF, 0x1D,
                            0x00, 0x10, 0x00, 0xF3, 0x66, 0xA4, 0xB9, 0x22, 0x00, 0x00, 0x00, 0xBB,
                            0xC6, 0x2C, 0x20, 0x00, 0xDF, 0x74, 0x4B, 0xCE, 0x66, 0xD9, 0xF6, 0xF4};
    m.poke(kCode, code, sizeof code);
    const uint8_t replacement[] = {0xC0, 0x90, 0x90};
    m.poke(kData + 0xD09, replacement, sizeof replacement);
    m.start(kCode, kStackTop, false, GetParam());
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.peek32(kData + 0x2CC6 + 0x44 - 0x32), runs.ref.peek32(kData + 0x2CC6 + 0x44 - 0x32));
}

INSTANTIATE_TEST_SUITE_P(BtEngine, RepMovsOverItsOwnBlock, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Paging" : "Flat"; });

/// Calls `g` (mov eax, 1; ret) 100 times, patches its immediate to 2, calls it 100 more.
void patch_hot_callee(bool same_page) {
  constexpr uint32_t kFar = kCode + 0x1000;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode far(kFar);
    far.a().mov(x86::eax, 1);
    far.a().ret();
    m.load(far);

    GuestCode c(kCode);
    auto& a = c.a();
    Label l1 = a.newLabel(), l2 = a.newLabel(), near_g = a.newLabel();
    auto call_g = [&] {
      if (same_page) {
        a.call(near_g);
      } else {
        a.call(Imm(kFar));
      }
    };
    const x86::Mem imm_byte = same_page ? x86::byte_ptr(near_g, 1) : x86::byte_ptr(kFar + 1);
    a.xor_(x86::esi, x86::esi);
    a.mov(x86::ecx, 100);
    a.bind(l1);
    call_g();
    a.add(x86::esi, x86::eax);
    a.loop(l1);
    a.mov(imm_byte, 2);
    a.mov(x86::ecx, 100);
    a.bind(l2);
    call_g();
    a.add(x86::esi, x86::eax);
    a.loop(l2);
    a.hlt();
    a.bind(near_g);
    a.mov(x86::eax, 1);
    a.ret();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 100u * 1 + 100u * 2);
  EXPECT_GE(runs.bt.engine().fault_stats().code_writes, 1u);
}

TEST(SelfModifyingCode, PatchesAHotCalleeOnTheSamePage) { patch_hot_callee(true); }

TEST(SelfModifyingCode, PatchesAHotCalleeOnAnotherPage) { patch_hot_callee(false); }

TEST(SelfModifyingCode, PatchThroughAnotherLinearAliasTakesEffect) {
  constexpr uint32_t kPage = kCode + 0x2000, kAlias = 0x600000;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kAlias, kPage, kPresent | kWritable);
    GuestCode g(kPage);
    g.a().mov(x86::eax, 1);
    g.a().ret();
    m.load(g);

    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::dword_ptr(kAlias + 0x800), 0);  // the alias is mapped writable before g is code
    a.call(Imm(kPage));
    a.mov(x86::esi, x86::eax);
    a.mov(x86::byte_ptr(kAlias + 1), 2);  // patch g through the alias
    a.call(Imm(kPage));
    a.mov(x86::edi, x86::eax);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 1u);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Edi), 2u);
}

constexpr uint32_t kCopyDst = kCode + 0x3000, kCopySrcA = kData + 0x100, kCopySrcB = kData + 0x200;
constexpr uint8_t kRoutineA[] = {0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3};  // mov eax, 1; ret
constexpr uint8_t kRoutineB[] = {0xB8, 0x02, 0x00, 0x00, 0x00, 0xC3};  // mov eax, 2; ret

/// The guest copies routine A into a fresh page with rep movsb, calls it (it is then
/// translated), replaces it with `patch`, and calls it again: it must return 2.
void copy_call_patch_call(const std::function<void(x86::Assembler&)>& patch) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.poke(kCopySrcA, kRoutineA, sizeof kRoutineA);
    m.poke(kCopySrcB, kRoutineB, sizeof kRoutineB);
    GuestCode c(kCode);
    auto& a = c.a();
    a.cld();
    a.mov(x86::esi, kCopySrcA);
    a.mov(x86::edi, kCopyDst);
    a.mov(x86::ecx, sizeof kRoutineA);
    a.rep().movsb();
    a.call(Imm(kCopyDst));
    a.mov(x86::dword_ptr(kData), x86::eax);
    patch(a);
    a.call(Imm(kCopyDst));
    a.mov(x86::dword_ptr(kData + 4), x86::eax);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.peek32(kData), 1u);
  EXPECT_EQ(runs.bt.peek32(kData + 4), 2u) << "the old translation of the routine ran";
}

TEST(SelfModifyingCode, CodeCopiedAgainByAStringInstructionReplacesOldCode) {
  copy_call_patch_call([](x86::Assembler& a) {
    a.mov(x86::esi, kCopySrcB);
    a.mov(x86::edi, kCopyDst);
    a.mov(x86::ecx, sizeof kRoutineB);
    a.rep().movsb();
  });
}

TEST(SelfModifyingCode, CopiedCodePatchedByAStoreReplacesOldCode) {
  copy_call_patch_call([](x86::Assembler& a) { a.mov(x86::byte_ptr(kCopyDst + 1), 2); });
}

/// rep stosb overwrites the rest of its own block (and the next one) with nops.
TEST(SelfModifyingCode, RepStosOverwritesTheCodeAhead) {
  TwoRuns runs;
  uint32_t start = 0, end = 0;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label block = a.newLabel(), ahead = a.newLabel(), ahead_end = a.newLabel(), join = a.newLabel();
    a.xor_(x86::edx, x86::edx);
    a.xor_(x86::esi, x86::esi);
    a.cld();
    a.jmp(block);
    a.bind(block);
    a.inc(x86::esi);
    a.mov(x86::al, 0x90);
    a.rep().stosb();
    a.bind(ahead);
    for (int i = 0; i < 8; ++i) a.inc(x86::edx);  // 1-byte incs in 32-bit code: become nops
    a.jmp(join);
    a.bind(join);
    for (int i = 0; i < 8; ++i) a.inc(x86::edx);
    a.bind(ahead_end);
    a.add(x86::esi, 2);
    a.hlt();
    m.load(c);
    start = c.addr(ahead);
    end = c.addr(ahead_end);
    // ECX/EDI come from the host: the assembler does not know the addresses up front.
    m.start(kCode, kStackTop, false);
    m.cpu().reg(Gpr::Edi) = start;
    m.cpu().reg(Gpr::Ecx) = end - start;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Edx), 0u) << "old code ran after it was overwritten";
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), 3u);
  EXPECT_EQ(m.cpu().reg(Gpr::Ecx), 0u);
  EXPECT_EQ(m.cpu().reg(Gpr::Edi), end);
}

/// A hot loop on another page (chained to itself, its return in the inline table) gets a
/// new immediate from a translated store between two calls.
TEST(SelfModifyingCode, HotLoopOnAnotherPageSeesItsNewCode) {
  constexpr uint32_t kLoopPage = kCode + 0x1000;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode l(kLoopPage);
    Label imm_end = l.a().newLabel(), top = l.a().newLabel();
    l.a().mov(x86::ecx, 1000);
    l.a().bind(top);
    l.a().add(x86::eax, 1);  // 83 C0 01: the immediate is the last byte
    l.a().bind(imm_end);
    l.a().loop(top);
    l.a().ret();
    m.load(l);

    GuestCode c(kCode);
    auto& a = c.a();
    a.xor_(x86::eax, x86::eax);
    a.call(Imm(kLoopPage));
    a.mov(x86::esi, x86::eax);
    a.mov(x86::byte_ptr(l.addr(imm_end) - 1), 3);
    a.call(Imm(kLoopPage));
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 1000u);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Eax), 1000u + 3000u);
}

/// A counter on the same page as the loop that updates it: every store is a write to
/// translated code (the page's blocks are dropped each time, and the store runs in the
/// interpreter); the result must not suffer.
void count_on_the_code_page(bool read_modify_write) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel(), counter = a.newLabel();
    a.mov(x86::ecx, 300);
    a.bind(top);
    if (read_modify_write) {
      a.inc(x86::dword_ptr(counter));
    } else {
      a.mov(x86::eax, x86::dword_ptr(counter));
      a.inc(x86::eax);
      a.mov(x86::dword_ptr(counter), x86::eax);
    }
    a.add(x86::esi, x86::ecx);
    a.loop(top);
    a.mov(x86::eax, x86::dword_ptr(counter));
    a.hlt();
    a.align(AlignMode::kData, 4);
    a.bind(counter);
    a.embedUInt32(0);
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Eax), 300u);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 300u * 301u / 2);
  // After a few invalidations the page stops being write-protected and its blocks check
  // their code at entry instead: the 300 stores do not all fault.
  EXPECT_GE(runs.bt.engine().stats().volatile_pages, 1u);
  EXPECT_LT(runs.bt.engine().fault_stats().code_writes, 300u);
}

/// On a page that checks its code at entry, code that patches the instruction it runs
/// next, again and again, still sees every patch.
TEST(SelfModifyingCode, PatchingTheNextInstructionOnAnUnprotectedPage) {
  TwoRuns runs;
  runs.setup([](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel(), patched = a.newLabel();
    a.mov(x86::ecx, 50);
    a.xor_(x86::esi, x86::esi);
    a.bind(top);
    a.mov(x86::dword_ptr(patched, 1), x86::ecx);  // the imm32 of the mov below
    a.bind(patched);
    a.mov(x86::eax, 0);
    a.add(x86::esi, x86::eax);
    a.loop(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 50u * 51u / 2);
  EXPECT_GE(runs.bt.engine().stats().volatile_pages, 1u);
}

/// A page patched many times goes volatile (its blocks check their bytes at entry); once
/// its probation is over and the dispatcher runs, it is write-protected again, and a later
/// patch still takes effect. This is kernel text after boot-time patching.
TEST(SelfModifyingCode, AVolatilePageIsProtectedAgainAfterItsProbation) {
  TwoRuns runs;
  runs.setup([](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label patch_loop = a.newLabel(), quiet_loop = a.newLabel(), patched = a.newLabel(), f = a.newLabel();
    Label fpu_area = a.newLabel();
    a.mov(x86::ecx, 20);  // 20 patches: volatile after 8
    a.xor_(x86::esi, x86::esi);
    a.bind(patch_loop);
    a.mov(x86::dword_ptr(patched, 1), x86::ecx);
    a.call(f);
    a.loop(patch_loop);
    a.mov(x86::ecx, 2000);  // no writes for a while: the probation ends
    a.bind(quiet_loop);
    a.call(f);
    a.loop(quiet_loop);
    a.fnsave(x86::ptr(fpu_area));                // ends the block: the dispatcher runs between blocks
    a.mov(x86::dword_ptr(patched, 1), 1000000);  // the page is protected again: this faults
    a.call(f);
    a.hlt();
    a.bind(f);
    a.bind(patched);
    a.mov(x86::eax, 0);
    a.add(x86::esi, x86::eax);
    a.ret();
    a.align(AlignMode::kData, 16);
    a.bind(fpu_area);
    a.embed(std::string(112, '\0').data(), 112);
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.engine().smc_policy().set_probation(1000);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 20u * 21u / 2 + 2000u * 1u + 1000000u);
  EXPECT_GE(runs.bt.engine().stats().volatile_pages, 1u);
  EXPECT_GE(runs.bt.engine().stats().probations_ended, 1u);
}

TEST(SelfModifyingCode, LoadsAndStoresOnACodePageKeepWorking) { count_on_the_code_page(false); }

// The interpreter's read-modify-write of a watched (code) page reads real RAM.
TEST(SelfModifyingCode, ReadModifyWriteOnACodePageKeepsWorking) { count_on_the_code_page(true); }

/// The stack lives on the code page: every push and call writes to translated code.
TEST(SelfModifyingCode, StackOnACodePageKeepsWorking) {
  TwoRuns runs;
  runs.setup([](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel(), f = a.newLabel();
    a.mov(x86::esp, kCode + 0xF00);
    a.mov(x86::ecx, 100);
    a.bind(top);
    a.push(x86::ecx);
    a.call(f);
    a.pop(x86::edx);
    a.add(x86::edi, x86::edx);
    a.loop(top);
    a.hlt();
    a.bind(f);
    a.add(x86::esi, x86::dword_ptr(x86::esp, 4));
    a.ret();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi), 100u * 101u / 2);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Edi), 100u * 101u / 2);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esp), kCode + 0xF00);
}

}  // namespace
}  // namespace vmm86::bttest
