// Control flow and stack instructions, including privilege changes through call gates,
// interrupt gates with the TSS stack switch, far returns/iret to ring 3, sysenter/sysexit.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(Control, CallRetPushPop) {
  Machine m;
  m.code([](Asm& a) {
    asmjit::Label f = a.newLabel(), done = a.newLabel();
    a.push(0x1234);
    a.call(f);
    a.pop(ebx);
    a.jmp(done);
    a.bind(f);
    a.mov(eax, dword_ptr(esp, 4));
    a.ret();
    a.bind(done);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x1234u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0x1234u);
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kStackTop);
}

TEST(Control, RetImmAndIndirectCall) {
  Machine m;
  m.code([](Asm& a) {
    asmjit::Label f = a.newLabel(), done = a.newLabel();
    a.push(1);
    a.push(2);
    a.lea(eax, ptr(f));
    a.call(eax);
    a.jmp(done);
    a.bind(f);
    a.ret(8);
    a.bind(done);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kStackTop);
}

TEST(Control, PushaPopaAndPushEsp) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, 1);
    a.mov(ecx, 2);
    a.mov(edx, 3);
    a.mov(ebx, 4);
    a.mov(ebp, 6);
    a.mov(esi, 7);
    a.mov(edi, 8);
    a.pushad();
    a.mov(esi, dword_ptr(esp, 12));  // saved ESP
    a.mov(dword_ptr(esp), 0x88);     // becomes EDI
    a.popad();
    a.push(esp);
    a.pop(ecx);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), 0x88u);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), 7u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), kStackTop) << "push esp pushes the value before the decrement";
}

TEST(Control, EnterLeaveNested) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(ebp, 0x7FF00);
    a.mov(dword_ptr(0x7FF00 - 4), 0xAAAA);
    a.enter(16, 2);
    a.mov(eax, ebp);
    a.mov(ebx, esp);
    a.mov(ecx, dword_ptr(ebp, -4));  // copied outer frame pointer
    a.mov(edx, dword_ptr(ebp, -8));  // this frame
    a.leave();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), kStackTop - 4);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), kStackTop - 4 - 8 - 16);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0xAAAAu);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), kStackTop - 4);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebp), 0x7FF00u);
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kStackTop);
}

TEST(Control, LoopAndJecxz) {
  Machine m;
  m.code([](Asm& a) {
    asmjit::Label top = a.newLabel(), skip = a.newLabel();
    a.mov(ecx, 5);
    a.xor_(eax, eax);
    a.bind(top);
    a.add(eax, 2);
    a.loop(top);
    a.jecxz(skip);
    a.mov(eax, 0xBAD);
    a.bind(skip);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 10u);
}

TEST(Control, JumpBeyondCsLimitFaults) {
  Machine m;
  m.load_seg(SegReg::Cs, kCode16);  // 16-bit code segment, limit 0xFFFF
  m.cpu.eip = 0;
  m.poke(0, {0x66, 0xE9, 0x00, 0x00, 0x01, 0x00});  // jmp rel32 to 0x10006
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
}

TEST(Control, IntFromRing3SwitchesStackAndIretReturns) {
  Machine m;
  // Handler for int 0x80 at kGateTarget: records the frame, returns with iret.
  m.poke(kGateTarget, m.assemble(
                          [](Asm& a) {
                            a.mov(eax, dword_ptr(esp, 4));   // CS
                            a.mov(ebx, dword_ptr(esp, 16));  // SS
                            a.mov(ecx, esp);
                            a.iretd();
                          },
                          kGateTarget));
  m.set_gate(kIdt, 0x80, kCode32, kGateTarget, 0xEE);
  m.code([](Asm& a) {
    a.int_(0x80);
    a.mov(edx, esp);
    a.cli();
  });
  m.enter_ring3();
  const RunResult r = m.run();
  ASSERT_EQ(r.status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13) << "cli at CPL 3 with IOPL 0";
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), kUserCode);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), kUserData);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), kRing0Stack - 20);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), kStackTop) << "back on the user stack";
}

TEST(Control, IntGateDplBlocksRing3) {
  Machine m;
  m.set_gate(kIdt, 0x81, kCode32, kGateTarget, 0x8E);  // DPL 0
  m.code([](Asm& a) { a.int_(0x81); });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), 0x81u * 8 + 2) << "error code names the IDT entry";
}

TEST(Control, CallGateFromRing3AndRetfToOuterLevel) {
  Machine m;
  m.poke(kGateTarget, m.assemble(
                          [](Asm& a) {
                            a.mov(eax, dword_ptr(esp, 8));   // first copied parameter
                            a.mov(ebx, dword_ptr(esp, 12));  // second
                            a.mov(ecx, cs);
                            a.retf(8);
                          },
                          kGateTarget));
  m.code_bytes({0x6A, 0x22,                          // push 0x22
                0x6A, 0x11,                          // push 0x11
                0xFF, 0x1D, 0x00, 0x00, 0x20, 0x00,  // call far [kData]
                0x89, 0xE2});                        // mov edx, esp
  m.poke32(kData, 0);
  m.poke32(kData + 4, kUserCallGate);
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x11u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0x22u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), kCode32);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), kStackTop) << "retf 8 also pops the parameters off the user stack";
  EXPECT_EQ(m.vector(), 13) << "the final hlt runs at CPL 3";
}

TEST(Control, FarJumpThroughCallGateSamePrivilege) {
  Machine m;
  m.poke(kGateTarget, {0xB8, 0x55, 0, 0, 0, 0xF4});               // mov eax, 0x55; hlt
  m.code_bytes({0xEA, 0x00, 0x00, 0x00, 0x00, kCallGate, 0x00});  // jmp far 0x50:0
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x55u);
  EXPECT_EQ(m.cpu.sreg(SegReg::Cs).selector, kCode32);
}

TEST(Control, FarJumpToTheRunningTssIsGp) {
  // Task switches themselves are in task_switch_test.cpp; the running task is busy.
  Machine m;
  m.set_descriptor(kTssSel / 8, kTss, 0x68 + 0x2000, 0x8B, 0x0);
  m.code_bytes({0xEA, 0x00, 0x00, 0x00, 0x00, kTssSel, 0x00});
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), uint32_t{kTssSel});
  EXPECT_EQ(m.stack(1), kCode);
}

TEST(Control, SysenterSysexit) {
  Machine m;
  m.cpu.msr.sysenter_cs = kCode32;
  m.cpu.msr.sysenter_esp = kRing0Stack;
  m.cpu.msr.sysenter_eip = kGateTarget;
  m.poke(kGateTarget, m.assemble(
                          [](Asm& a) {
                            a.mov(eax, cs);
                            a.mov(ebx, ss);
                            a.mov(esi, esp);
                            a.mov(edx, kCode + 2);  // after sysenter
                            a.mov(ecx, 0x7000);
                            a.sysexit();
                          },
                          kGateTarget));
  m.code([](Asm& a) {
    a.sysenter();
    a.mov(edi, cs);
  });
  m.enter_ring3();
  m.cpu.eflags |= flags::IF;
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), kCode32);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), kData32);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), kRing0Stack);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), kUserCode) << "sysexit returns to CS = sysenter_cs + 16 | 3";
  EXPECT_EQ(m.stack(4), 0x7000u) << "user ESP = ECX, seen in the #GP frame of the final hlt";
  EXPECT_EQ(m.vector(), 13) << "the final hlt at CPL 3";
}

TEST(Control, PopfAtRing3CannotChangeIoplOrIf) {
  Machine m;
  m.code([](Asm& a) {
    a.push(flags::IOPL | flags::IF | flags::CF | flags::Reserved1);
    a.popfd();
    a.pushfd();
    a.pop(eax);
  });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax) & (flags::IOPL | flags::IF | flags::CF), flags::CF);
}

TEST(Control, IretToRing3RestoresUserStack) {
  Machine m;
  m.code([](Asm& a) {
    a.push(kUserData);
    a.push(0x6000);
    a.push(flags::Reserved1);
    a.push(kUserCode);
    a.push(kCode + 0x40);
    a.iretd();
  });
  m.poke(kCode + 0x40, {0x8C, 0xD8, 0xF4});  // mov eax, ds; hlt
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.cpl(), 0) << "the hlt at CPL 3 faulted into the ring-0 handler";
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(2), kUserCode);
  EXPECT_EQ(m.stack(4), 0x6000u) << "user ESP in the frame";
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0u) << "iret to ring 3 nulls the DPL-0 data segments";
}

}  // namespace
}  // namespace vmm86::test
