// Translator tests on flat protected-mode guest code (paging off, identity window): guest
// programs are assembled as 32-bit code with asmjit, run in the code cache until they
// reach `hlt`, and the final state is compared with values computed here.
#include <Zydis/Zydis.h>

#include <cerrno>
#include <cstring>

#include "tests/host_code_check.h"
#include "tests/translator/translator_fixture.h"

namespace vmm86::translator_test {
namespace {

// A code cache the host refuses (an empty arena: mmap says EINVAL): init says which host call
// failed and why, rather than only that something did.
TEST(TranslatorInit, SaysWhyTheCodeCacheCouldNotBeMade) {
  ExecContextPtr ctx = create_exec_context();
  ASSERT_TRUE(ctx);
  Translator translator(*ctx, 0);
  const Status ready = translator.init();
  ASSERT_FALSE(ready);
  EXPECT_NE(ready.error().find("code cache"), std::string::npos) << ready.error();
  EXPECT_NE(ready.error().find("mmap"), std::string::npos) << ready.error();
  EXPECT_NE(ready.error().find(std::strerror(EINVAL)), std::string::npos) << ready.error();
}

TEST_F(TranslatorTest, StraightLineArithmetic) {
  load([](x86::Assembler& a) {
    a.mov(x86::eax, 1000);
    a.mov(x86::ebx, 7);
    a.imul(x86::eax, x86::ebx);
    a.sub(x86::eax, 3);
    a.mov(x86::ecx, x86::eax);
    a.shl(x86::ecx, 4);
    a.xor_(x86::edx, x86::edx);
    a.lea(x86::esi, x86::ptr(x86::eax, x86::ecx, 2, 5));
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Eax), 6997u);
  EXPECT_EQ(reg(Gpr::Ecx), 6997u << 4);
  EXPECT_EQ(reg(Gpr::Esi), 6997u + (6997u << 4) * 4 + 5);
  EXPECT_EQ(reg(Gpr::Edx), 0u);
  EXPECT_EQ(ctx_->cpu.eflags & flags::ZF, flags::ZF);  // from xor edx, edx
  EXPECT_EQ(ctx_->retired, 8u);
}

TEST_F(TranslatorTest, LeaOfAnAbsoluteAddressAboveTwoGiB) {
  // lea r, [disp32] becomes mov r, imm32; a disp32 with bit 31 set once made the encoder
  // refuse it, and the instruction ran as a callout (one per process start in busybox).
  load([](x86::Assembler& a) {
    a.lea(x86::edi, x86::ptr(0xFFFFBCD4u));
    a.lea(x86::esi, x86::ptr(0x7FFFFFFFu));
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Edi), 0xFFFFBCD4u);
  EXPECT_EQ(reg(Gpr::Esi), 0x7FFFFFFFu);
  EXPECT_EQ(translator_->stats().callout_sites, 0u);
  EXPECT_EQ(ctx_->retired, 2u) << "both lea translated (hlt leaves)";
}

TEST_F(TranslatorTest, LoopChainsBlocks) {
  load([](x86::Assembler& a) {
    Label loop = a.newLabel();
    a.xor_(x86::eax, x86::eax);
    a.mov(x86::ecx, 1000);
    a.bind(loop);
    a.add(x86::eax, x86::ecx);
    a.dec(x86::ecx);
    a.jnz(loop);
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Eax), 500500u);
  EXPECT_EQ(reg(Gpr::Ecx), 0u);
  EXPECT_GE(translator_->stats().chains, 1u);
  // Chained: the loop runs without coming back to the dispatcher each iteration.
  EXPECT_LT(translator_->stats().enters, 10u);
}

TEST_F(TranslatorTest, MemoryOperandsAndStack) {
  load([](x86::Assembler& a) {
    a.mov(x86::dword_ptr(0x20000), 0x11223344);  // [disp32]
    a.mov(x86::ebx, 0x20000);
    a.mov(x86::eax, x86::dword_ptr(x86::ebx));
    a.add(x86::dword_ptr(x86::ebx, 4), x86::eax);  // [base+disp]
    a.mov(x86::edi, 2);
    a.mov(x86::dword_ptr(x86::ebx, x86::edi, 2, 8), 5);  // [base+index*4+disp] = 0x20010
    a.mov(x86::esi, x86::dword_ptr(0, x86::edi, 3));     // [index*8] = 16 -> 0
    a.push(x86::eax);
    a.push(0x1234);
    a.push(x86::dword_ptr(x86::ebx));
    a.pop(x86::ecx);
    a.pop(x86::edx);
    a.mov(x86::ebp, x86::dword_ptr(x86::esp));  // [esp]: the first push
    a.mov(x86::byte_ptr(x86::esp, -1), 0x77);   // below ESP, via r12
    a.movzx(x86::edi, x86::byte_ptr(x86::esp, -1));
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(read32(0x20000), 0x11223344u);
  EXPECT_EQ(read32(0x20004), 0x11223344u);
  EXPECT_EQ(read32(0x20010), 5u);
  EXPECT_EQ(reg(Gpr::Eax), 0x11223344u);
  EXPECT_EQ(reg(Gpr::Ecx), 0x11223344u);
  EXPECT_EQ(reg(Gpr::Edx), 0x1234u);
  EXPECT_EQ(reg(Gpr::Ebp), 0x11223344u);
  EXPECT_EQ(reg(Gpr::Edi), 0x77u);
  EXPECT_EQ(reg(Gpr::Esp), kStackTop - 4);
  EXPECT_EQ(read32(kStackTop - 4), 0x11223344u);
}

/// Recursive fib(15): 1973 calls and as many returns, exercising call/ret, the stack and
/// the inline indirect table.
void load_fib15(x86::Assembler& a) {
  Label fib = a.newLabel(), base = a.newLabel();
  a.mov(x86::eax, 15);
  a.call(fib);
  a.hlt();
  a.bind(fib);  // eax = fib(eax)
  a.cmp(x86::eax, 2);
  a.jb(base);
  a.push(x86::eax);
  a.dec(x86::eax);
  a.call(fib);
  a.pop(x86::ecx);
  a.push(x86::eax);
  a.lea(x86::eax, x86::ptr(x86::ecx, -2));
  a.call(fib);
  a.pop(x86::ecx);
  a.add(x86::eax, x86::ecx);
  a.bind(base);
  a.ret();
}

TEST_F(TranslatorTest, CallsReturnsAndIndirectLookups) {
  load(load_fib15);
  translator_->count_indirect_lookups(true);
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Eax), 610u);
  EXPECT_EQ(reg(Gpr::Esp), kStackTop);
  // Return prediction pairs each guest ret with its call's host call: only returns whose
  // host call was lost (every entry from here resets the return stack, as the dispatcher
  // does, and the first pass leaves at each new block) consult the table.
  EXPECT_LT(translator_->stats().indirect_misses, 20u);
  EXPECT_LT(ctx_->indirect_lookups, 20u);
  EXPECT_GT(translator_->stats().chains, 0u);
}

TEST_F(TranslatorTest, CallsReturnsAndIndirectLookupsWithoutReturnPrediction) {
  load(load_fib15);
  translator_->count_indirect_lookups(true);
  translator_->predict_returns(false);
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Eax), 610u);
  EXPECT_EQ(reg(Gpr::Esp), kStackTop);
  // Most returns hit the inline table instead of leaving translated code: fib(15) makes
  // 1973 calls, so 1973 returns consult the table.
  EXPECT_LT(translator_->stats().indirect_misses, 20u);
  EXPECT_EQ(ctx_->indirect_lookups, 1973u);
}

TEST_F(TranslatorTest, FlagsSurviveBlockExits) {
  load([](x86::Assembler& a) {
    Label next = a.newLabel();
    a.mov(x86::eax, 0xFFFFFFFF);
    a.add(x86::eax, 1);  // CF=1, ZF=1
    a.jmp(next);         // block boundary: flags live across the exit
    a.bind(next);
    a.mov(x86::ebx, 0);
    a.adc(x86::ebx, 0);  // takes CF
    a.std();
    a.hlt();
  });
  ASSERT_TRUE(run_to_hlt());
  EXPECT_EQ(reg(Gpr::Ebx), 1u);
  EXPECT_NE(ctx_->cpu.eflags & flags::DF, 0u);
  EXPECT_EQ(ctx_->cpu.eflags & (flags::CF | flags::ZF), 0u);  // from adc: 0 + 0 + 1
}

TEST_F(TranslatorTest, EmittedMemoryAccessesUseTheWindow) {
  // Every memory access in a translated block is either gs:-relative with 32-bit
  // addressing (the guest window), reaches the monitor's own structures through R15 (the
  // context) or R9 (the indirect table), uses the host stack (pushfq/popfq around flags),
  // or is a host string instruction recorded as a HostPointerSite, whose RSI/RDI are
  // window_base + a 32-bit guest value (it can only walk into the window's guard regions).
  // The guest can reach nothing else.
  load([](x86::Assembler& a) {
    a.mov(x86::eax, x86::dword_ptr(x86::ebx, x86::esi, 1, 0x7FFFFFF0));
    a.mov(x86::dword_ptr(x86::esp, 8), x86::eax);
    a.add(x86::eax, x86::dword_ptr(0xC0000000));
    a.cli();
    a.pushfd();
    a.sti();
    a.popfd();
    a.rep().movsd();
    a.repne().scasb();
    a.push(x86::dword_ptr(x86::eax, 4));
    a.ret();
  });
  Block* block = nullptr;
  ASSERT_EQ(translator_->block_for_current(*source_, &block), TranslateStatus::Ok);
  testing_support::HostAccessCount count;
  EXPECT_EQ(testing_support::unwindowed_accesses(*block, &count), "");
  const int guest_accesses = count.guest, string_accesses = count.string;
  EXPECT_GE(guest_accesses, 8);
  EXPECT_EQ(string_accesses, 3);  // movsd: two, scasb: one
}

}  // namespace
}  // namespace vmm86::translator_test
