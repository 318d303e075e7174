// Exceptions and interrupts: segment faults, page faults (CR2, error codes, A/D),
// double and triple faults, single step, #UD, external interrupts and shadows.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(Segmentation, DataLimitViolationIsGp) {
  Machine m;
  m.load_seg(SegReg::Ds, kSmallData);  // base kData, limit 0xFFF
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(0xFFC));
    a.mov(ebx, dword_ptr(0xFFE));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), 0u);
  EXPECT_EQ(m.stack(1), kCode + 5) << "faulting instruction is the second mov";
}

TEST(Segmentation, StackLimitViolationIsSs) {
  Machine m;
  m.load_seg(SegReg::Ss, kSmallData);
  m.cpu.reg(Gpr::Esp) = 0x800;
  m.code([](Asm& a) {
    a.xor_(ebp, ebp);
    a.mov(eax, dword_ptr(ebp, 0x1000));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 12);
  EXPECT_EQ(m.peek32(kData + 0x800 - 16), 0u) << "#SS(0) error code on the stack";
}

TEST(Segmentation, ExpandDown) {
  Machine m;
  m.load_seg(SegReg::Ds, kExpandDown);  // valid offsets 0x10000..0xFFFFFFFF
  m.poke32(0x20000, 0xCAFE);
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(0x20000));
    a.mov(ebx, dword_ptr(0xFFFC));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xCAFEu);
  EXPECT_EQ(m.vector(), 13);
}

TEST(Segmentation, WriteToReadOnlyAndNullSegment) {
  Machine m;
  m.load_seg(SegReg::Es, kReadOnly);
  m.code_bytes({0x26, 0xA3, 0x00, 0x00, 0x20, 0x00});
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);

  Machine n;
  n.code([](Asm& a) {
    a.xor_(eax, eax);
    a.mov(ds, ax);
    a.mov(ebx, dword_ptr(0));
  });
  ASSERT_EQ(n.run().status, StepStatus::Halted);
  EXPECT_EQ(n.vector(), 13) << "null DS loads fine, faults on use";
  EXPECT_EQ(n.cpu.sreg(SegReg::Ds).selector, 0);
}

TEST(Segmentation, Ring3CannotLoadRing0Data) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, kData32);
    a.mov(ds, ax);
  });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), kData32) << "error code is the selector";
}

TEST(Segmentation, NullSsIsGp) {
  Machine m;
  m.code([](Asm& a) {
    a.xor_(eax, eax);
    a.mov(ss, ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
}

TEST(Paging, NotPresentReadSetsCr2AndErrorCode) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData + 0x1000, 0);  // not present
  m.code([](Asm& a) { a.mov(eax, dword_ptr(kData + 0x1004)); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.cpu.cr2, kData + 0x1004);
  EXPECT_EQ(m.stack(0), 0u);
  EXPECT_EQ(m.stack(1), kCode);
}

TEST(Paging, UserWriteToReadOnlyPage) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData, 0x5);  // present, user, read-only
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(kData));
    a.mov(dword_ptr(kData + 8), eax);
  });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.stack(0), 7u) << "present | write | user";
  EXPECT_EQ(m.cpu.cr2, kData + 8);
}

TEST(Paging, SupervisorWriteHonoursWp) {
  for (bool wp : {true, false}) {
    Machine m;
    m.enable_paging(wp);
    m.set_pte_flags(kData, 0x1);  // present, supervisor, read-only
    m.code([](Asm& a) { a.mov(dword_ptr(kData), 1); });
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    if (wp) {
      EXPECT_EQ(m.vector(), 14);
      EXPECT_EQ(m.stack(0), 3u);
    } else {
      EXPECT_EQ(m.vector(), -1);
      EXPECT_EQ(m.peek32(kData), 1u);
    }
  }
}

TEST(Paging, RmwChecksWriteBeforeReading) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData, 0x5);
  m.code([](Asm& a) { a.add(dword_ptr(kData), 1); });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.stack(0), 7u);
}

TEST(Paging, AccessedAndDirtyBits) {
  Machine m;
  m.enable_paging();
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(kData));
    a.mov(dword_ptr(kData + 0x1000), eax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.pte(kData) & 0x60, 0x20u) << "read: A only";
  EXPECT_EQ(m.pte(kData + 0x1000) & 0x60, 0x60u) << "write: A and D";
}

TEST(Paging, FetchAcrossIntoMissingPage) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData + 0x1000, 0);
  m.poke(kData + 0xFFE, {0xB8, 0x01});  // mov eax, imm32 split over the page boundary
  m.cpu.eip = kData + 0xFFE;
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.cpu.cr2, kData + 0x1000);
  EXPECT_EQ(m.stack(1), kData + 0xFFE);
}

TEST(Paging, InvlpgDropsStaleTranslation) {
  Machine m;
  m.enable_paging();
  m.poke32(kData, 0xAAAA);
  m.poke32(kData + 0x5000, 0xBBBB);
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(kData));
    // Remap the page to kData + 0x5000 behind the TLB's back, then invalidate it.
    a.mov(dword_ptr(kPageTables + (kData >> 12) * 4), (kData + 0x5000) | 7);
    a.invlpg(dword_ptr(kData));
    a.mov(ebx, dword_ptr(kData));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xAAAAu);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0xBBBBu);
}

TEST(Faults, DoubleFaultOnContributoryDuringDelivery) {
  Machine m;
  m.set_gate(kIdt, 13, kCode32, kVectorStubs + 13 * 8, 0x6E);  // #GP gate not present
  m.code([](Asm& a) {
    a.xor_(eax, eax);
    a.mov(ss, ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 8);
  EXPECT_EQ(m.stack(0), 0u) << "#DF error code is 0";
}

TEST(Faults, NotPresentGateDuringPageFaultIsDoubleFault) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData, 0);
  m.set_gate(kIdt, 14, kCode32, kVectorStubs + 14 * 8, 0x6E);  // #PF gate not present: #NP
  m.code([](Asm& a) { a.mov(eax, dword_ptr(kData)); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 8);
  EXPECT_EQ(m.cpu.cr2, kData);
}

TEST(Faults, TripleFaultIsAStatus) {
  Machine m;
  m.cpu.idtr.limit = 0;
  m.code([](Asm& a) { a.int3(); });
  const RunResult r = m.run();
  EXPECT_EQ(r.status, StepStatus::TripleFault);
  EXPECT_EQ(m.shutdowns, 1);
  EXPECT_EQ(m.interp.step(), StepStatus::TripleFault) << "stays shut down";
  m.interp.reset();
  EXPECT_EQ(m.cpu.eip, 0xFFF0u);
}

TEST(Faults, SingleStepTrap) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, 1);
    a.mov(ebx, 2);
  });
  m.cpu.eflags |= flags::TF;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 1u);
  EXPECT_EQ(m.stack(0), kCode + 5) << "#DB is a trap: return to the next instruction";
  EXPECT_NE(m.cpu.dr[6] & (1u << 14), 0u);
  EXPECT_EQ(m.cpu.eflags & flags::TF, 0u);
}

TEST(Faults, VexInstructionIsUd) {
  Machine m;
  m.code_bytes({0xC5, 0xF0, 0x58, 0xC2});  // vaddps xmm0, xmm1, xmm2
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 6);
}

TEST(Faults, RaiseExceptionApi) {
  Machine m;
  m.code([](Asm& a) { a.nop(); });
  EXPECT_EQ(m.interp.raise_exception(14, true, 6), StepStatus::EventDelivered);
  EXPECT_EQ(m.stack(0), 6u);
  EXPECT_EQ(m.stack(1), kCode);
}

TEST(Interrupts, StiShadowThenDelivery) {
  Machine m;
  m.code([](Asm& a) {
    a.sti();
    a.nop();
    a.nop();
  });
  m.irq = 0x30;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // sti
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // nop in the shadow
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.stack(0), kCode + 2) << "return to the second nop";
  EXPECT_EQ(m.cpu.eip, kVectorStubs + 0x30 * 8);
  EXPECT_EQ(m.cpu.eflags & flags::IF, 0u) << "interrupt gate clears IF";
  EXPECT_NE(m.stack(2) & flags::IF, 0u);
}

TEST(Interrupts, MovSsShadow) {
  Machine m;
  m.cpu.eflags |= flags::IF;
  m.code([](Asm& a) {
    a.mov(eax, kData32);
    a.mov(ss, ax);
    a.nop();
  });
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // mov ss
  m.irq = 0x31;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // nop, still shadowed
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
}

TEST(Interrupts, MovSsHoldsSingleStepToTheNextInstruction) {
  // SDM Vol. 3 §6.8.3: no #DB between mov ss and the next instruction; the single-step trap
  // comes after that one (so mov ss; mov esp is never split).
  Machine m;
  m.cpu.reg(Gpr::Eax) = kData32;
  m.code_bytes({0x8E, 0xD0,                    // mov ss, eax
                0xBC, 0x00, 0xFF, 0x07, 0x00,  // mov esp, 0x7FF00
                0x90});
  m.cpu.eflags |= flags::TF;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.eip, kCode + 2) << "no trap after mov ss";
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.eip, kVectorStubs + 8) << "the trap after the next instruction";
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), 0x7FF00u - 12);
  EXPECT_EQ(m.stack(0), kCode + 7);
}

TEST(Interrupts, PopSsHoldsSingleStepToo) {
  Machine m;
  m.code([](Asm& a) {
    a.pop(ss);
    a.nop();
  });
  m.poke32(kStackTop, kData32);
  m.cpu.eflags |= flags::TF;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.eip, kCode + 1);
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.stack(0), kCode + 2);
}

TEST(Interrupts, StiDoesNotHoldSingleStep) {
  Machine m;
  m.code([](Asm& a) { a.sti(); });
  m.cpu.eflags |= flags::TF;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.stack(0), kCode + 1) << "the #DB trap follows sti itself";
}

TEST(Interrupts, MovSsHoldsNmiButStiDoesNot) {
  Machine m;
  m.cpu.reg(Gpr::Eax) = kData32;
  m.code([](Asm& a) {
    a.mov(ss, ax);
    a.nop();
  });
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  m.cpu.pending.nmi = true;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired) << "the nop runs in the shadow";
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.cpu.eip, kVectorStubs + 2 * 8);

  Machine n;
  n.code([](Asm& a) {
    a.sti();
    a.nop();
  });
  EXPECT_EQ(n.interp.step(), StepStatus::Retired);
  n.cpu.pending.nmi = true;
  EXPECT_EQ(n.interp.step(), StepStatus::EventDelivered) << "STI blocks only maskable interrupts";
}

TEST(Interrupts, NmiBlockedUntilIret) {
  Machine m;
  constexpr uint32_t kHandler = kCode + 0x100;
  m.poke(kHandler, m.assemble(
                       [](Asm& a) {
                         a.nop();
                         a.iretd();
                       },
                       kHandler));
  m.set_gate(kIdt, 2, kCode32, kHandler, 0x8E);
  m.code([](Asm& a) {
    a.nop();
    a.nop();
  });
  m.cpu.pending.nmi = true;
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_TRUE(m.cpu.pending.nmi_blocked);
  m.cpu.pending.nmi = true;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired) << "a second NMI waits for the handler's iret";
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // iret
  EXPECT_FALSE(m.cpu.pending.nmi_blocked);
  EXPECT_EQ(m.cpu.eip, kCode);
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.cpu.eip, kHandler);
}

TEST(Interrupts, ExternalInterruptFaultingIsNotDoubleFault) {
  // SDM Vol. 3 Table 6-5 classes exceptions only: an external interrupt on vector 13 (IRQ 5
  // under a BIOS's real-mode mapping) whose delivery faults gives that fault, not #DF.
  Machine m;
  m.set_gate(kIdt, 13, kCode32, kVectorStubs + 13 * 8, 0x6E);  // not present
  m.cpu.eflags |= flags::IF;
  m.code([](Asm& a) { a.nop(); });
  m.irq = 13;
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.cpu.eip, kVectorStubs + 11 * 8) << "#NP";
  EXPECT_EQ(m.stack(0), 13u * 8 + 2 + 1) << "IDT bit and EXT";
}

TEST(Faults, FaultDuringDoubleFaultShutsDown) {
  Machine m;
  m.set_gate(kIdt, 13, kCode32, kVectorStubs + 13 * 8, 0x6E);
  m.set_gate(kIdt, 8, kCode32, kVectorStubs + 8 * 8, 0x6E);  // #DF gate absent too
  m.code([](Asm& a) {
    a.xor_(eax, eax);
    a.mov(ss, ax);
  });
  EXPECT_EQ(m.run().status, StepStatus::TripleFault);
  EXPECT_EQ(m.shutdowns, 1);
}

TEST(Faults, BenignThenContributoryIsSerial) {
  // #NP while delivering #BP (benign): the #NP is delivered alone (Table 6-5).
  Machine m;
  m.set_gate(kIdt, 3, kCode32, kVectorStubs + 3 * 8, 0x6E);
  m.code([](Asm& a) { a.int3(); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 11);
  EXPECT_EQ(m.stack(0), 3u * 8 + 2);
}

TEST(Interrupts, HaltUntilInterrupt) {
  Machine m;
  m.cpu.eflags |= flags::IF;
  m.code([](Asm& a) {
    a.hlt();
    a.mov(eax, 1);
  });
  EXPECT_EQ(m.interp.step(), StepStatus::Halted);
  EXPECT_EQ(m.interp.step(), StepStatus::Halted);
  m.irq = 0x20;
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_FALSE(m.cpu.halted);
  EXPECT_EQ(m.stack(0), kCode + 1) << "resumes after the hlt";
}

TEST(Interrupts, NmiIgnoresIf) {
  Machine m;
  m.code([](Asm& a) { a.nop(); });
  m.cpu.pending.nmi = true;
  EXPECT_EQ(m.interp.step(), StepStatus::EventDelivered);
  EXPECT_EQ(m.cpu.eip, kVectorStubs + 2 * 8);
}

// An event's frame holds EFLAGS, so status flags the SDM left undefined (imul's SF ZF AF
// PF) become visible in memory: the reference counts an SDM-undefined outcome, as for a
// pushf, and the differential tools do not report the frame's byte as a divergence.
TEST(Events, FramePushingUndefinedFlagsIsAnUndefinedOutcome) {
  for (const bool undefined : {true, false}) {
    Machine m;
    m.code([&](Asm& a) {
      a.mov(eax, 7);
      if (undefined) {
        a.imul(eax, eax, 3);
      } else {
        a.add(eax, 3);
      }
      a.int3();
    });
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    EXPECT_EQ(m.vector(), 3);
    EXPECT_EQ(m.interp.undefined_results(), undefined ? 1u : 0u) << (undefined ? "imul" : "add");
  }
}

}  // namespace
}  // namespace vmm86::test
