#include "vmm/arch/cpu_state.h"

#include <gtest/gtest.h>

namespace vmm86 {
namespace {

TEST(CpuState, ResetMatchesTheSdm) {
  CpuState cpu;
  cpu.gpr[0] = 123;
  cpu.cr0 = cr0::PE | cr0::PG;
  cpu.reset();
  EXPECT_EQ(cpu.eip, 0xFFF0u);
  EXPECT_EQ(cpu.sreg(SegReg::Cs).selector, 0xF000);
  EXPECT_EQ(cpu.sreg(SegReg::Cs).base + cpu.eip, 0xFFFFFFF0u);
  EXPECT_EQ(cpu.eflags, flags::Reserved1);
  EXPECT_EQ(cpu.gpr[0], 0u);
  EXPECT_FALSE(cpu.protected_mode());
  EXPECT_EQ(cpu.cpl(), 0);
  EXPECT_EQ(cpu.cr0 & (cr0::PE | cr0::PG), 0u);
  EXPECT_EQ(cpu.fxsave[0] | (cpu.fxsave[1] << 8), 0x037F);  // FCW
}

TEST(CpuState, CplComesFromCsInProtectedMode) {
  CpuState cpu;
  cpu.reset();
  cpu.cr0 |= cr0::PE;
  cpu.sreg(SegReg::Cs).selector = 0x23;
  EXPECT_EQ(cpu.cpl(), 3);
  cpu.eflags |= flags::VM;
  EXPECT_EQ(cpu.cpl(), 3);
  cpu.eflags &= ~flags::VM;
  cpu.sreg(SegReg::Cs).selector = 0x10;
  EXPECT_EQ(cpu.cpl(), 0);
}

TEST(SegmentCache, AttributeAccessors) {
  SegmentCache code{0x10, 0, 0xFFFFFFFF, 0xC09B};  // 32-bit ring-0 code, 4 KiB granular
  EXPECT_TRUE(code.is_code());
  EXPECT_TRUE(code.default_big());
  EXPECT_TRUE(code.granularity());
  EXPECT_EQ(code.dpl(), 0);
  SegmentCache stack_down{0x18, 0, 0xFFF, 0x4097};  // expand-down writable data
  EXPECT_TRUE(stack_down.expand_down());
  EXPECT_FALSE(stack_down.is_code());
}

}  // namespace
}  // namespace vmm86
