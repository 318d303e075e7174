// Real mode: segment arithmetic, the IVT, 16-bit code with 32-bit prefixes, far
// transfers, and the switch into protected mode.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

TEST(RealMode, IvtInterruptIretAndSegments) {
  Machine m(Mode::Real);
  m.poke(0x600, {0x05, 0x01, 0x00, 0xCF});  // handler: add ax, 1; iret
  m.poke32(0x21 * 4, 0x00000600);
  m.code_bytes({
      0xB8, 0x34, 0x12,                    // mov ax, 0x1234
      0xCD, 0x21,                          // int 0x21
      0xBB, 0x00, 0x20,                    // mov bx, 0x2000
      0x8E, 0xDB,                          // mov ds, bx
      0xA3, 0x10, 0x00,                    // mov [0x10], ax
      0x66, 0xB9, 0x78, 0x56, 0x34, 0x12,  // mov ecx, 0x12345678
      0x66, 0xC1, 0xE9, 0x10,              // shr ecx, 16
      0x31, 0xD2,                          // xor dx, dx
      0xB3, 0x00,                          // mov bl, 0
      0xF6, 0xF3,                          // div bl -> #DE through IVT[0]
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax) & 0xFFFF, 0x1235u);
  EXPECT_EQ(m.peek32(0x20010) & 0xFFFF, 0x1235u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0x1234u);
  EXPECT_EQ(m.vector(), 0);
  // The #DE frame: IP of the div, CS, FLAGS on SS:SP.
  const uint32_t sp = m.cpu.sreg(SegReg::Ss).base + (m.cpu.reg(Gpr::Esp) & 0xFFFF);
  EXPECT_EQ(m.peek32(sp) & 0xFFFF, 27u);
  EXPECT_EQ(m.peek32(sp + 2) & 0xFFFF, kCode >> 4);
}

TEST(RealMode, FarCallAndRetf) {
  Machine m(Mode::Real);
  m.poke(0x20000, {0xB8, 0x77, 0x00, 0xCB});   // 2000:0000 mov ax, 0x77; retf
  m.code_bytes({0x9A, 0x00, 0x00, 0x00, 0x20,  // call 0x2000:0000
                0x8C, 0xCB});                  // mov bx, cs
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax) & 0xFFFF, 0x77u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx) & 0xFFFF, kCode >> 4);
}

TEST(RealMode, SegmentWrapAtOffsetLimitFaults) {
  Machine m(Mode::Real);
  m.code_bytes({0x8B, 0x1E, 0xFF, 0xFF});  // mov bx, [0xffff]: crosses the 64 KiB limit
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
}

TEST(RealMode, SwitchToProtectedMode) {
  Machine m(Mode::Real);
  // A GDT at 0x500: null, flat code, flat data.
  m.poke32(0x508, 0x0000FFFF);
  m.poke32(0x50C, 0x00CF9A00);
  m.poke32(0x510, 0x0000FFFF);
  m.poke32(0x514, 0x00CF9200);
  m.poke(0x580, {0x17, 0x00, 0x00, 0x05, 0x00, 0x00});  // limit 0x17, base 0x500
  m.code_bytes({
      0x0F, 0x01, 0x16, 0x80, 0x05,                    // lgdt [0x580] (DS base 0)
      0x0F, 0x20, 0xC0,                                // mov eax, cr0
      0x0C, 0x01,                                      // or al, 1
      0x0F, 0x22, 0xC0,                                // mov cr0, eax
      0x66, 0xEA, 0x15, 0x00, 0x01, 0x00, 0x08, 0x00,  // jmp dword 0x08:0x10015
      // 32-bit code at 0x10015:
      0xB8, 0x10, 0x00, 0x00, 0x00,                                // mov eax, 0x10
      0x8E, 0xD8,                                                  // mov ds, ax
      0xC7, 0x05, 0x00, 0x00, 0x20, 0x00, 0x44, 0x33, 0x22, 0x11,  // mov dword [0x200000], 0x11223344
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_TRUE(m.cpu.protected_mode());
  EXPECT_TRUE(m.cpu.sreg(SegReg::Cs).default_big());
  EXPECT_EQ(m.peek32(0x200000), 0x11223344u);
  EXPECT_EQ(m.cpu.sreg(SegReg::Ds).limit, 0xFFFFFFFFu);
}

}  // namespace
}  // namespace vmm86::test
