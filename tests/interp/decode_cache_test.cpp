// The decoded-instruction cache must never run stale code: guest stores into code and
// writes from outside the CPU (DMA, a harness) both take effect on the next fetch.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(DecodeCache, GuestStoreIntoCodeRunsTheNewBytes) {
  Machine m;
  m.code([](Asm& a) {
    asmjit::Label loop = a.newLabel(), patched = a.newLabel();
    a.mov(ecx, 2);
    a.xor_(ebx, ebx);
    a.bind(loop);
    a.bind(patched);
    a.mov(eax, 1);  // B8 imm32: the second pass sees imm32 = 5
    a.add(ebx, eax);
    a.mov(dword_ptr(patched, 1), 5);
    a.dec(ecx);
    a.jnz(loop);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 6u);
}

TEST(DecodeCache, OutsideWriteBetweenRunsIsSeen) {
  Machine m;
  const auto rerun = [&m] {
    m.cpu.halted = false;
    m.cpu.eip = kCode;
    return m.run().status;
  };
  m.code([](Asm& a) { a.mov(eax, 1); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 1u);
  // Same address, same length, different immediate; then a different instruction.
  m.code([](Asm& a) { a.mov(eax, 2); });
  ASSERT_EQ(rerun(), StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 2u);
  m.code([](Asm& a) { a.lea(eax, ptr(eax, eax)); });
  ASSERT_EQ(rerun(), StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 4u);
}

}  // namespace
}  // namespace vmm86::test
