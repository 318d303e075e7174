// x87/MMX/SSE through the host FPU: results in guest registers and memory, GPR and
// EFLAGS outputs, and the exceptions the interpreter decides (#NM, #MF, #XM, #GP).
#include <gtest/gtest.h>

#include <cstring>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

void enable_sse(Machine& m) { m.cpu.cr4 |= vmm86::cr4::OSFXSR | vmm86::cr4::OSXMMEXCPT; }

TEST(Fpu, X87ArithmeticToMemory) {
  Machine m;
  m.code([](Asm& a) {
    a.fninit();
    a.fld1();
    a.fadd(st0, st0);
    a.fild(dword_ptr(kData + 8));
    a.fmulp(st1);
    a.fistp(dword_ptr(kData));
  });
  m.poke32(kData + 8, 21);
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData), 42u);
}

TEST(Fpu, FnstswAxAndFcomiFlags) {
  Machine m;
  m.code([](Asm& a) {
    a.fninit();
    a.fld1();
    a.fldz();
    a.fcomi(st1);  // 0 < 1: CF=1, ZF=0
    a.fnstsw(ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_NE(m.cpu.eflags & flags::CF, 0u);
  EXPECT_EQ(m.cpu.eflags & flags::ZF, 0u);
  EXPECT_EQ((m.cpu.reg(Gpr::Eax) >> 11) & 7, 6u) << "TOP after two loads";
}

TEST(Fpu, TsRaisesNm) {
  Machine m;
  m.cpu.cr0 |= vmm86::cr0::TS;
  m.code([](Asm& a) { a.fld1(); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 7);
}

TEST(Fpu, PendingX87ErrorRaisesMfOnNextWaitingInstruction) {
  Machine m;
  m.cpu.cr0 |= vmm86::cr0::NE;
  m.poke32(kData, 0x037B);  // zero-divide unmasked
  m.code([](Asm& a) {
    a.fninit();
    a.fldcw(word_ptr(kData));
    a.fld1();
    a.fldz();
    a.fdivp(st1);  // sets ES, does not trap itself
    a.fnstsw(ax);  // no-wait: fine
    a.fld1();      // #MF
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 16);
  EXPECT_NE(m.cpu.reg(Gpr::Eax) & 0x80, 0u);
}

TEST(Fpu, SsePackedAddAndAlignment) {
  Machine m;
  enable_sse(m);
  const float in[4] = {1.5f, 2.0f, -3.0f, 4.25f};
  std::vector<uint8_t> bytes(16);
  std::memcpy(bytes.data(), in, 16);
  m.poke(kData, bytes);
  m.code([](Asm& a) {
    a.movups(xmm0, ptr(kData));
    a.addps(xmm0, xmm0);
    a.movaps(ptr(kData + 0x10), xmm0);
    a.cvttss2si(ebx, xmm0);
    a.movaps(xmm1, ptr(kData + 4));  // misaligned: #GP(0)
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  float out[4];
  std::memcpy(out, m.mem.host_ptr(GuestPhys{kData + 0x10}, 16), 16);
  EXPECT_EQ(out[0], 3.0f);
  EXPECT_EQ(out[3], 8.5f);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 3u);
  EXPECT_EQ(m.vector(), 13);
}

TEST(Fpu, SseWithoutOsfxsrIsUd) {
  Machine m;
  m.code([](Asm& a) { a.xorps(xmm0, xmm0); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 6);
}

TEST(Fpu, UnmaskedSimdExceptionIsXmAndWritesNothing) {
  Machine m;
  enable_sse(m);
  m.poke32(kData, 0x1F80 & ~0x200u);  // divide-by-zero unmasked
  const float one[4] = {1, 1, 1, 1};
  std::vector<uint8_t> bytes(16);
  std::memcpy(bytes.data(), one, 16);
  m.poke(kData + 0x10, bytes);
  m.code([](Asm& a) {
    a.ldmxcsr(dword_ptr(kData));
    a.movaps(xmm0, ptr(kData + 0x10));
    a.xorps(xmm1, xmm1);
    a.divps(xmm0, xmm1);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 19);
  float x0;
  std::memcpy(&x0, m.cpu.fxsave.data() + 160, 4);  // XMM0 in the FXSAVE image
  EXPECT_EQ(x0, 1.0f) << "destination unchanged";
  uint32_t mxcsr;
  std::memcpy(&mxcsr, m.cpu.fxsave.data() + 24, 4);
  EXPECT_NE(mxcsr & 0x4, 0u) << "ZE flag recorded";
}

// A wide-differential find: with underflow unmasked, an exact tiny result still raises #XM
// (SDM vol. 1, 11.5.2.4); the interpreter runs SSE masked and that run flags underflow only
// when tiny and inexact. The host CPU (translated code) raised it.
TEST(Fpu, UnmaskedUnderflowOnAnExactTinyResultIsXm) {
  for (bool packed : {false, true}) {
    Machine m;
    enable_sse(m);
    m.poke32(kData, 0x1F80 & ~0x800u);                               // underflow unmasked
    const uint32_t smallest_normal = 0x00800000, half = 0x3F000000;  // product 0x00400000: exact, tiny
    for (uint32_t i = 0; i < 4; ++i) {
      m.poke32(kData + 0x10 + 4 * i, smallest_normal);
      m.poke32(kData + 0x20 + 4 * i, half);
    }
    m.code([packed](Asm& a) {
      a.ldmxcsr(dword_ptr(kData));
      a.movaps(xmm0, ptr(kData + 0x10));
      a.movaps(xmm1, ptr(kData + 0x20));
      if (packed) {
        a.mulps(xmm0, xmm1);
      } else {
        a.mulss(xmm0, xmm1);
      }
    });
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    EXPECT_EQ(m.vector(), 19) << (packed ? "mulps" : "mulss");
    uint32_t x0 = 0, mxcsr = 0;
    std::memcpy(&x0, m.cpu.fxsave.data() + 160, 4);
    std::memcpy(&mxcsr, m.cpu.fxsave.data() + 24, 4);
    EXPECT_EQ(x0, smallest_normal) << "destination unchanged";
    EXPECT_NE(mxcsr & 0x10, 0u) << "UE recorded";
  }
}

TEST(Fpu, MaskedUnderflowOnAnExactTinyResultIsNoException) {
  Machine m;
  enable_sse(m);
  m.poke32(kData, 0x1F80);
  m.poke32(kData + 0x10, 0x00800000);
  m.poke32(kData + 0x20, 0x3F000000);
  m.code([](Asm& a) {
    a.ldmxcsr(dword_ptr(kData));
    a.movss(xmm0, dword_ptr(kData + 0x10));
    a.movss(xmm1, dword_ptr(kData + 0x20));
    a.mulss(xmm0, xmm1);
    a.stmxcsr(dword_ptr(kData + 4));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData + 4) & 0x10, 0u) << "exact: UE stays clear when masked";
  uint32_t x0 = 0;
  std::memcpy(&x0, m.cpu.fxsave.data() + 160, 4);
  EXPECT_EQ(x0, 0x00400000u);
}

TEST(Fpu, FxsaveLayoutAndAlignment) {
  Machine m;
  enable_sse(m);
  m.code([](Asm& a) {
    a.fninit();
    a.fxsave(ptr(kData));
    a.fxsave(ptr(kData + 8));  // misaligned
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.peek32(kData) & 0xFFFF, 0x037Fu);
  EXPECT_EQ(m.peek32(kData + 24), 0x1F80u);
  EXPECT_EQ(m.vector(), 13);
}

TEST(Fpu, MmxThroughGprs) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, 21);
    a.movd(mm0, eax);
    a.paddd(mm0, mm0);
    a.movd(ebx, mm0);
    a.emms();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 42u);
}

TEST(Fpu, StoreToMissingPageFaultsBeforeRunning) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData, 0);
  m.code([](Asm& a) {
    a.fninit();
    a.fld1();
    a.fstp(dword_ptr(kData));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.stack(0), 2u) << "write, supervisor, not present";
  uint16_t fsw;
  std::memcpy(&fsw, m.cpu.fxsave.data() + 2, 2);
  EXPECT_EQ((fsw >> 11) & 7, 7u) << "the fstp did not pop";
}

// Found by the wide differential test (tests/differential/wide.h): the interpreter had no
// maskmovq/maskmovdqu (implicit DS:EDI operand) and raised a pending #MF on the no-wait
// 287 leftovers, which the host CPU (and so the translator) does not.
TEST(Fpu, MaskmovqStoresTheSelectedBytes) {
  Machine m;
  enable_sse(m);
  m.poke(kData, {1, 2, 3, 4, 5, 6, 7, 8});
  m.poke(kData + 0x10, {0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8});  // source
  m.poke(kData + 0x18, {0x80, 0, 0xFF, 0x7F, 0, 0, 0, 0x81});              // mask
  m.code([](Asm& a) {
    a.movq(mm1, ptr(kData + 0x10));
    a.movq(mm2, ptr(kData + 0x18));
    a.mov(edi, kData);
    a.maskmovq(mm1, mm2);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData), 0x04A302A1u);
  EXPECT_EQ(m.peek32(kData + 4), 0xA8070605u);
}

TEST(Fpu, MaskmovqFindsMmRegistersWhateverTheTop) {
  Machine m;
  enable_sse(m);
  m.poke(kData + 0x10, {0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8});
  m.poke(kData + 0x18, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80});
  m.code([](Asm& a) {
    a.movq(mm1, ptr(kData + 0x10));
    a.movq(mm2, ptr(kData + 0x18));
    a.fld1();  // TOP = 7: ST(i) is no longer MMi
    a.mov(edi, kData);
    a.maskmovq(mm1, mm2);
    a.fnstsw(ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData), 0xB4B3B2B1u);
  EXPECT_EQ(m.peek32(kData + 4), 0xB8B7B6B5u);
  EXPECT_EQ((m.cpu.reg(Gpr::Eax) >> 11) & 7, 0u) << "an MMX instruction sets TOP to 0";
}

TEST(Fpu, FaultingMaskmovqHasSwitchedToMmxState) {
  Machine m;
  enable_sse(m);
  m.enable_paging();
  m.set_pte_flags(kData, 0);  // not present
  m.code([](Asm& a) {
    a.fld1();  // TOP = 7
    a.mov(edi, kData);
    a.maskmovq(mm1, mm1);  // #PF, but TOP is 0 by then
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ((m.cpu.fxsave[3] >> 3) & 7, 0) << "TOP";
  EXPECT_EQ(m.cpu.fxsave[4], 0xFF) << "tags";
}

TEST(Fpu, ConversionToMmxThatRaisesXmHasSwitchedToMmxState) {
  Machine m;
  enable_sse(m);
  m.poke32(kData, 0x1F80 & ~0x80u);    // invalid unmasked
  m.poke32(kData + 0x14, 0x7FF80000);  // a quiet NaN (double) in both lanes
  m.poke32(kData + 0x1C, 0x7FF80000);
  m.code([](Asm& a) {
    a.fld1();  // TOP = 7
    a.movupd(xmm0, ptr(kData + 0x10));
    a.ldmxcsr(dword_ptr(kData));
    a.cvttpd2pi(mm0, xmm0);  // #XM
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 19);
  EXPECT_EQ((m.cpu.fxsave[3] >> 3) & 7, 0) << "TOP";
  EXPECT_EQ(m.cpu.fxsave[4], 0xFF) << "tags";
}

TEST(Fpu, MaskmovdquStoresTheSelectedBytes) {
  Machine m;
  enable_sse(m);
  std::vector<uint8_t> src(16, 0xEE), mask(16, 0);
  mask[0] = 0x80;
  mask[15] = 0xC0;
  m.poke(kData + 0x20, src);
  m.poke(kData + 0x30, mask);
  m.code([](Asm& a) {
    a.movdqu(xmm3, ptr(kData + 0x20));
    a.movdqu(xmm4, ptr(kData + 0x30));
    a.mov(edi, kData + 0x40);
    a.maskmovdqu(xmm3, xmm4);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData + 0x40), 0x000000EEu);
  EXPECT_EQ(m.peek32(kData + 0x4C), 0xEE000000u);
}

TEST(Fpu, NoWaitNopsLeaveAPendingErrorPending) {
  Machine m;
  m.cpu.cr0 |= vmm86::cr0::NE;
  m.poke32(kData, 0x037B);  // zero-divide unmasked
  m.code([](Asm& a) {
    a.fninit();
    a.fldcw(word_ptr(kData));
    a.fld1();
    a.fldz();
    a.fdivp(st1);            // error pending
    a.db(0xDB), a.db(0xE1);  // fndisi
    a.db(0xDB), a.db(0xE0);  // fneni
    a.db(0xDB), a.db(0xE4);  // fnsetpm
    a.mov(eax, 0x1234);
    a.fld1();  // #MF here
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 16);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x1234u);
}

TEST(Fpu, StmxcsrAndLdmxcsrWithUnmaskedExceptions) {
  Machine m;
  enable_sse(m);
  m.poke32(kData, 0xF923);  // masks partly clear, flags set
  m.poke32(kData + 8, 0x1D00);
  m.code([](Asm& a) {
    a.ldmxcsr(dword_ptr(kData));
    a.stmxcsr(dword_ptr(kData + 4));  // as loaded, not masked
    a.ldmxcsr(dword_ptr(kData + 8));  // replaces it (not the old value kept)
    a.stmxcsr(dword_ptr(kData + 12));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData + 4), 0xF923u);
  EXPECT_EQ(m.peek32(kData + 12), 0x1D00u);
}

// A wide-differential find: with exceptions unmasked in MXCSR, fxrstor kept the old MXCSR
// and fxsave stored a masked one (both ran through the path that masks SIMD exceptions).
TEST(Fpu, FxsaveAndFxrstorWithUnmaskedExceptions) {
  Machine m;
  enable_sse(m);
  m.poke32(kData + 24, 0x8E90);  // MXCSR of an image: masks partly clear, FZ, a flag
  m.poke32(kData + 512 + 24, 0x0000);
  m.code([](Asm& a) {
    a.fxrstor(ptr(kData));
    a.fxsave(ptr(kData + 1024));  // as loaded, not masked
    a.fxrstor(ptr(kData + 512));  // replaces it (not the old value kept)
    a.stmxcsr(dword_ptr(kData + 2048));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData + 1024 + 24), 0x8E90u);
  EXPECT_EQ(m.peek32(kData + 2048), 0u);
}

// A wide-differential find: the interpreter refused DAZ (a P6 without it), translated code
// loads MXCSR natively and fxsave reports the host's MXCSR_MASK. The reserved bits are
// those the mask leaves clear, in both engines.
TEST(Fpu, LdmxcsrReservedBitsAreThoseMxcsrMaskLeavesClear) {
  alignas(16) uint8_t host[512] = {};
  asm volatile("fxsave %0" : "=m"(host));
  uint32_t host_mask = 0;
  std::memcpy(&host_mask, host + 28, 4);
  if (host_mask == 0) host_mask = 0xFFBF;
  for (uint32_t value : {0x1FC0u, 0x11F80u}) {  // DAZ; a bit above 15
    Machine m;
    enable_sse(m);
    m.poke32(kData, value);
    m.code([](Asm& a) {
      a.fxsave(ptr(kData + 512));
      a.ldmxcsr(dword_ptr(kData));
    });
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    EXPECT_EQ(m.peek32(kData + 512 + 28), host_mask) << "MXCSR_MASK as the host's fxsave reports it";
    EXPECT_EQ(m.vector(), (value & ~host_mask) != 0 ? 13 : -1) << std::hex << value;
  }
}

TEST(Fpu, UnmaskedOverflowOnStoreLeavesTheDestination) {
  Machine m;
  m.cpu.cr0 |= vmm86::cr0::NE;
  m.poke32(kData, 0x0377);          // overflow unmasked
  m.poke32(kData + 4, 0x7F7FFFFF);  // FLT_MAX
  m.poke32(kData + 8, 0xCAFEBABE);
  m.code([](Asm& a) {
    a.fninit();
    a.fldcw(word_ptr(kData));
    a.fld(dword_ptr(kData + 4));
    a.fmul(st0, st0);              // FLT_MAX^2: fine in 80 bits
    a.fstp(dword_ptr(kData + 8));  // overflows single: no store, error pending
    a.fnstsw(ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.peek32(kData + 8), 0xCAFEBABEu);
  EXPECT_NE(m.cpu.reg(Gpr::Eax) & 0x8, 0u) << "OE";
}

TEST(Fpu, MovntiIgnoresTsAndEm) {
  Machine m;
  m.cpu.cr0 |= vmm86::cr0::TS | vmm86::cr0::EM;
  m.code([](Asm& a) {
    a.mov(eax, 0x12345678);
    a.movnti(dword_ptr(kData), eax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.peek32(kData), 0x12345678u);
}

}  // namespace
}  // namespace vmm86::test
