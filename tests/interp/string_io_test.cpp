// String instructions (rep prefixes, DF, 16-bit address wrap, faults mid-way) and port
// I/O with IOPL and the TSS I/O permission bitmap.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(String, RepMovsbForward) {
  Machine m;
  m.poke(kData, {1, 2, 3, 4, 5});
  m.code([](Asm& a) {
    a.mov(esi, kData);
    a.mov(edi, kData + 0x100);
    a.mov(ecx, 5);
    a.rep().movsb();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.peek8(kData + 0x104), 5);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0u);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), kData + 5);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData + 0x105);
}

TEST(String, RepStosdBackwardWithDf) {
  Machine m;
  m.code([](Asm& a) {
    a.std();
    a.mov(edi, kData + 8);
    a.mov(ecx, 3);
    a.mov(eax, 0xDEADBEEF);
    a.rep().stosd();
    a.cld();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.peek32(kData), 0xDEADBEEFu);
  EXPECT_EQ(m.peek32(kData + 8), 0xDEADBEEFu);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData - 4);
}

TEST(String, RepeCmpsbStopsAtDifference) {
  Machine m;
  m.poke(kData, {'a', 'b', 'c', 'd'});
  m.poke(kData + 0x10, {'a', 'b', 'x', 'd'});
  m.code([](Asm& a) {
    a.mov(esi, kData);
    a.mov(edi, kData + 0x10);
    a.mov(ecx, 4);
    a.repe().cmpsb();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 1u);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), kData + 3);
  EXPECT_EQ(m.cpu.eflags & flags::ZF, 0u);
}

TEST(String, RepneScasbFindsByte) {
  Machine m;
  m.poke(kData, {'h', 'e', 'l', 'l', 'o', 0});
  m.code([](Asm& a) {
    a.mov(edi, kData);
    a.mov(ecx, -1);
    a.xor_(eax, eax);
    a.repne().scasb();
    a.not_(ecx);
    a.dec(ecx);  // strlen
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 5u);
}

TEST(String, LodsAndSegmentOverride) {
  Machine m;
  m.load_seg(SegReg::Fs, kSmallData);  // base kData
  m.poke32(kData + 0x10, 0x5555);
  m.code_bytes({0xBE, 0x10, 0, 0, 0,  // mov esi, 0x10
                0x64, 0xAD});         // lodsd fs:[esi]
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x5555u);
}

TEST(String, SixteenBitAddressingWrapsSiDi) {
  Machine m;
  m.cpu.gdtr.limit = 0xFF;
  m.set_descriptor(12, kData, 0xFFFF, 0x92, 0x0);
  m.load_seg(SegReg::Ds, 12 * 8);
  m.load_seg(SegReg::Es, 12 * 8);
  m.poke(kData + 0xFFFF, {0xAB});
  m.poke(kData, {0xCD});
  // a16 rep movsb with SI = 0xFFFF, DI = 0x100, CX = 2: SI wraps to 0.
  m.code_bytes({0x66, 0xBE, 0xFF, 0xFF,  // mov si, 0xffff
                0x66, 0xBF, 0x00, 0x01,  // mov di, 0x100
                0x66, 0xB9, 0x02, 0x00,  // mov cx, 2
                0x67, 0xF3, 0xA4});      // a16 rep movsb
  m.cpu.reg(Gpr::Esi) = 0xAAAA0000u;
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek8(kData + 0x100), 0xAB);
  EXPECT_EQ(m.peek8(kData + 0x101), 0xCD);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), 0xAAAA0001u) << "only SI wrapped; the high half is untouched";
}

TEST(String, FaultMidwayKeepsProgress) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData + 0x1000, 0);
  m.code([](Asm& a) {
    a.mov(edi, kData + 0xFF8);
    a.mov(ecx, 4);
    a.xor_(eax, eax);
    a.rep().stosd();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 2u) << "two iterations completed";
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData + 0x1000);
  EXPECT_EQ(m.stack(1), kCode + 12) << "EIP still at the rep stosd";
}

TEST(String, LongRepPausesBetweenIterationsWithoutRetiring) {
  // A long rep is done a bounded number of iterations per step, EIP staying on it, as a
  // CPU between iterations: ECX/EDI say where it is, and it retires once, at the end.
  static constexpr uint32_t kCount = 10000;
  Machine m;
  m.code([](Asm& a) {
    a.mov(edi, kData);
    a.mov(ecx, kCount);
    a.mov(eax, 0x5A);
    a.rep().stosb();
  });
  for (int i = 0; i < 3; ++i) ASSERT_EQ(m.interp.step(), StepStatus::Retired);
  const uint32_t rep_eip = m.cpu.eip;
  const uint64_t retired = m.interp.retired();
  ASSERT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.eip, rep_eip) << "paused on the instruction";
  const uint32_t left = m.cpu.reg(Gpr::Ecx);
  EXPECT_GT(left, 0u);
  EXPECT_LT(left, kCount);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData + (kCount - left)) << "EDI matches the iterations done";
  EXPECT_EQ(m.peek8(kData + (kCount - left) - 1), 0x5A);
  EXPECT_EQ(m.peek8(kData + (kCount - left)), 0) << "nothing beyond them";
  EXPECT_EQ(m.interp.retired(), retired) << "a paused rep has not retired";
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0u);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData + kCount);
  EXPECT_EQ(m.peek8(kData + kCount - 1), 0x5A);
  EXPECT_EQ(m.peek8(kData + kCount), 0);
  EXPECT_EQ(m.interp.retired(), retired + 2) << "the rep and the hlt";
}

TEST(String, InterruptTakenBetweenIterationsReturnsToTheRep) {
  static constexpr uint32_t kCount = 20000;
  Machine m;
  m.code([](Asm& a) {
    a.mov(esi, kData);
    a.mov(edi, kData + 0x10000);
    a.mov(ecx, kCount);
    a.sti();
    a.nop();  // the sti shadow ends here
    a.rep().movsb();
  });
  for (int i = 0; i < 5; ++i) ASSERT_EQ(m.interp.step(), StepStatus::Retired);
  const uint32_t rep_eip = m.cpu.eip;
  ASSERT_EQ(m.interp.step(), StepStatus::Retired);
  const uint32_t left = m.cpu.reg(Gpr::Ecx);
  ASSERT_LT(left, kCount);
  m.irq = 0x40;
  ASSERT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.stack(0), rep_eip) << "the interrupt returns to the rep, which goes on";
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), left);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), kData + (kCount - left));
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kData + 0x10000 + (kCount - left));
}

TEST(String, RepWithTrapFlagCompletesInOneStep) {
  // Single-stepping keeps its one trap after the whole instruction.
  static constexpr uint32_t kCount = 10000;
  Machine m;
  m.code([](Asm& a) {
    a.mov(edi, kData);
    a.mov(ecx, kCount);
    a.pushfd();
    a.or_(dword_ptr(esp), flags::TF);
    a.popfd();
    a.rep().stosb();
  });
  for (int i = 0; i < 6; ++i) ASSERT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0u);
  ASSERT_EQ(m.interp.step(), StepStatus::Halted);
  EXPECT_EQ(m.vector(), 1) << "#DB after the whole rep";
}

TEST(Io, InOutAtRing0) {
  Machine m;
  m.port_values[0x60] = 0xFA;
  m.code([](Asm& a) {
    a.in(al, 0x60);
    a.mov(dx, 0xE9);
    a.mov(al, 'O');
    a.out(dx, al);
    a.mov(al, 'K');
    a.out(0xE9, al);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.e9, "OK");
}

TEST(Io, Ring3NeedsBitmapPermission) {
  Machine m;
  m.poke(kIoBitmap + 0xE9 / 8, {static_cast<uint8_t>(~(1u << (0xE9 % 8)))});  // allow 0xE9 only
  m.code([](Asm& a) {
    a.mov(al, 'x');
    a.out(0xE9, al);
    a.out(0xEA, al);
  });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.e9, "x");
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(1), kCode + 4);
}

TEST(Io, IoplThreeAllowsAll) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(al, 'y');
    a.out(0xE9, al);
  });
  m.enter_ring3();
  m.cpu.eflags |= flags::IOPL;
  m.run();
  EXPECT_EQ(m.e9, "y");
}

TEST(Io, RepOutsb) {
  Machine m;
  m.poke(kData, {'P', 'A', 'S', 'S'});
  m.code([](Asm& a) {
    a.mov(esi, kData);
    a.mov(ecx, 4);
    a.mov(edx, 0xE9);
    a.db(0xF3);
    a.db(0x6E);  // rep outsb
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.e9, "PASS");
}

}  // namespace
}  // namespace vmm86::test
