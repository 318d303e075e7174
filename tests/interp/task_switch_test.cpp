// Hardware task switches (SDM Vol. 3 §7.3): call/jmp to a TSS and through task gates,
// events through IDT task gates (with the error code on the new stack, #DF as Linux
// handles it), iret along the back link, busy bits, NT, CR0.TS, CR3, the T bit, and the
// faults before and after the commit point with their error codes.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

// GDT entries past the test machine's own.
constexpr uint16_t kTss2Sel = 0x60;       ///< 32-bit TSS of the second task (at kTss2)
constexpr uint16_t kTaskGateSel = 0x68;   ///< task gate to kTss2Sel, DPL 3
constexpr uint16_t kConforming = 0x70;    ///< conforming code, DPL 0
constexpr uint16_t kTss16Sel = 0x78;      ///< 16-bit TSS (at kTss16)
constexpr uint16_t kShortTssSel = 0x80;   ///< 32-bit TSS with limit 0x66
constexpr uint16_t kAbsentTssSel = 0x88;  ///< 32-bit TSS, not present
constexpr uint32_t kTss2 = 0x7000;        // past the I/O bitmap of the main TSS
constexpr uint32_t kTss16 = 0x7800;
constexpr uint32_t kTask2Code = 0x20000;
constexpr uint32_t kTask2Stack = 0x70000;

/// Offsets in a 32-bit TSS.
namespace tss {
constexpr uint32_t Link = 0x00, Esp0 = 0x04, Ss0 = 0x08, Cr3 = 0x1C, Eip = 0x20, Eflags = 0x24, Eax = 0x28, Esp = 0x38,
                   Es = 0x48, Cs = 0x4C, Ss = 0x50, Ds = 0x54, Fs = 0x58, Gs = 0x5C, Ldt = 0x60, Trap = 0x64;
}

class TaskMachine : public Machine {
 public:
  TaskMachine() {
    cpu.gdtr.limit = 0xFF;
    set_descriptor(kTssSel / 8, kTss, 0x68 + 0x2000, 0x8B, 0x0);  // the running task: busy
    set_descriptor(kTss2Sel / 8, kTss2, 0x67, 0x89, 0x0);
    set_gate(kGdt, kTaskGateSel / 8, kTss2Sel, 0, 0xE5);
    set_descriptor(kConforming / 8, 0, 0xFFFFF, 0x9E, 0xC);
    set_descriptor(kTss16Sel / 8, kTss16, 0x2B, 0x81, 0x0);
    set_descriptor(kShortTssSel / 8, kTss2, 0x66, 0x89, 0x0);
    set_descriptor(kAbsentTssSel / 8, kTss2, 0x67, 0x09, 0x0);
    // The second task: flat ring 0, its own stack and code.
    poke32(kTss2 + tss::Esp0, kRing0Stack - 0x1000);
    poke32(kTss2 + tss::Ss0, kData32);
    poke32(kTss2 + tss::Eip, kTask2Code);
    poke32(kTss2 + tss::Eflags, flags::Reserved1);
    poke32(kTss2 + tss::Esp, kTask2Stack);
    set_task_segments(kCode32, kData32);
    poke32(kTss2 + tss::Ldt, 0);  // no LDT
    poke32(kTss2 + tss::Trap, 0x68u << 16);
    poke32(kTss2 + tss::Link, 0xBEEF);   // a sentinel: only nesting switches write it
    poke32(kTss2 + tss::Cr3, kPageDir);  // the identity tables of enable_paging()
    poke(kTask2Code, {0xF4});
  }

  void set_task_segments(uint16_t cs, uint16_t data) {
    poke32(kTss2 + tss::Cs, cs);
    for (uint32_t off : {tss::Es, tss::Ss, tss::Ds, tss::Fs, tss::Gs}) poke32(kTss2 + off, data);
  }
  void task2_code(const std::function<void(Asm&)>& body) {
    std::vector<uint8_t> b = assemble(body, kTask2Code);
    b.push_back(0xF4);
    poke(kTask2Code, b);
  }
  /// The type nibble of a GDT descriptor (9 available, B busy).
  [[nodiscard]] uint32_t gdt_type(uint16_t sel) const { return (peek32(kGdt + (sel & 0xFFF8u) + 4) >> 8) & 0xF; }
};

/// call far / jmp far sel:0 as raw bytes (9A/EA ptr16:32).
void far_branch(Asm& a, bool call, uint16_t sel) {
  a.db(call ? 0x9A : 0xEA);
  a.dd(0);
  a.dw(sel);
}

TEST(TaskSwitch, CallNestsAndIretReturns) {
  TaskMachine m;
  m.task2_code([](Asm& a) {
    a.mov(dword_ptr(kData), 0x1234);
    a.iretd();
  });
  m.code([](Asm& a) {
    a.mov(eax, 0xAAAA);
    far_branch(a, true, kTss2Sel);
    a.mov(ebx, dword_ptr(kData));
  });
  m.cpu.cr0 &= ~cr0::TS;
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);  // the call
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_EQ(m.cpu.eip, kTask2Code);
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kTask2Stack);
  EXPECT_NE(m.cpu.eflags & flags::NT, 0u) << "a call nests: NT set";
  EXPECT_NE(m.cpu.cr0 & cr0::TS, 0u);
  EXPECT_EQ(m.peek32(kTss2 + tss::Link) & 0xFFFF, kTssSel) << "back link to the caller";
  EXPECT_EQ(m.gdt_type(kTss2Sel), 0xBu);
  EXPECT_EQ(m.gdt_type(kTssSel), 0xBu) << "the caller stays busy";
  EXPECT_EQ(m.peek32(kTss + tss::Eip), kCode + 12) << "the old task resumes after the call";
  EXPECT_EQ(m.peek32(kTss + tss::Eax), 0xAAAAu);
  EXPECT_EQ(m.peek32(kTss + tss::Cs), kCode32);

  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.cpu.tr.selector, kTssSel);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xAAAAu) << "registers of the old task reloaded";
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0x1234u);
  EXPECT_EQ(m.cpu.eflags & flags::NT, 0u);
  EXPECT_EQ(m.gdt_type(kTss2Sel), 0x9u) << "iret frees the task it leaves";
  EXPECT_EQ(m.peek32(kTss2 + tss::Eflags) & flags::NT, 0u) << "NT cleared in the image iret saves";
}

TEST(TaskSwitch, JmpDoesNotNest) {
  TaskMachine m;
  m.task2_code([](Asm& a) { a.nop(); });
  m.code([](Asm& a) { far_branch(a, false, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.eip, kTask2Code + 2);
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_EQ(m.cpu.eflags & flags::NT, 0u);
  EXPECT_EQ(m.peek32(kTss2 + tss::Link), 0xBEEFu) << "no back link";
  EXPECT_EQ(m.gdt_type(kTssSel), 0x9u) << "jmp frees the old task";
  EXPECT_EQ(m.gdt_type(kTss2Sel), 0xBu);
}

TEST(TaskSwitch, CallThroughTaskGateFromRing3) {
  TaskMachine m;
  m.task2_code([](Asm& a) { a.nop(); });
  m.code([](Asm& a) { far_branch(a, true, kTaskGateSel | 3); });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_EQ(m.cpu.cpl(), 0) << "the gate's DPL 3 lets ring 3 reach a ring-0 task";
  EXPECT_EQ(m.peek32(kTss + tss::Cs), uint32_t{kUserCode});
}

TEST(TaskSwitch, DirectTssBelowCplIsGp) {
  TaskMachine m;
  m.code([](Asm& a) { far_branch(a, true, kTss2Sel | 3); });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), uint32_t{kTss2Sel});
}

TEST(TaskSwitch, BusyTaskIsGp) {
  TaskMachine m;
  m.code([](Asm& a) { far_branch(a, false, kTssSel); });  // the running task
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), uint32_t{kTssSel});
}

TEST(TaskSwitch, ShortOrAbsentTss) {
  TaskMachine m;
  m.code([](Asm& a) { far_branch(a, true, kShortTssSel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 10) << "limit below 67h: #TS";
  EXPECT_EQ(m.stack(0), uint32_t{kShortTssSel});
  EXPECT_EQ(m.cpu.tr.selector, kTssSel) << "before the commit point: nothing changed";

  TaskMachine n;
  n.code([](Asm& a) { far_branch(a, true, kAbsentTssSel); });
  ASSERT_EQ(n.run().status, StepStatus::Halted);
  EXPECT_EQ(n.vector(), 11);
  EXPECT_EQ(n.stack(0), uint32_t{kAbsentTssSel});
}

TEST(TaskSwitch, SoftwareInterruptThroughIdtTaskGate) {
  TaskMachine m;
  m.set_gate(kIdt, 0x40, kTss2Sel, 0, 0xE5);
  m.task2_code([](Asm& a) { a.iretd(); });
  m.code([](Asm& a) {
    a.int_(0x40);
    a.mov(ecx, 7);
  });
  EXPECT_EQ(m.interp.step(), StepStatus::Retired);
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_NE(m.cpu.eflags & flags::NT, 0u);
  EXPECT_EQ(m.peek32(kTss + tss::Eip), kCode + 2) << "INT n saves the address after it";
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 7u);
  EXPECT_EQ(m.cpu.tr.selector, kTssSel);
}

TEST(TaskSwitch, FaultPushesErrorCodeOnNewTaskStack) {
  TaskMachine m;
  m.set_gate(kIdt, 13, kTss2Sel, 0, 0x85);
  m.code([](Asm& a) {
    a.mov(eax, 0x1000);  // beyond the GDT limit
    a.mov(ds, ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kTask2Stack - 4);
  EXPECT_EQ(m.peek32(kTask2Stack - 4), 0x1000u) << "#GP(selector) on the new task's stack";
  EXPECT_EQ(m.peek32(kTss + tss::Eip), kCode + 5) << "a fault saves the faulting instruction";
}

TEST(TaskSwitch, DoubleFaultThroughTaskGate) {
  // Linux's 32-bit #DF handler is a task gate: its own TSS and stack survive a broken one.
  TaskMachine m;
  m.set_gate(kIdt, 8, kTss2Sel, 0, 0x85);
  m.enable_paging();
  m.set_pte_flags(kStackTop - 4, 0);  // the stack page is gone: #PF, then #PF pushing it
  m.code([](Asm& a) { a.push(eax); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
  EXPECT_EQ(m.peek32(kTask2Stack - 4), 0u) << "#DF pushes 0";
  EXPECT_EQ(m.peek32(kTss + tss::Eip), kCode);
  EXPECT_EQ(m.peek32(kTss + tss::Esp), kStackTop) << "the broken stack pointer is saved as it was";
  EXPECT_EQ(m.cpu.cr2, kStackTop - 4);
}

TEST(TaskSwitch, ConformingCodeSegmentBelowRpl) {
  // CS = conforming DPL 0 with RPL 3: valid, the new task runs at CPL 3 (kvm-unit-tests'
  // taskswitch2 checks this on hardware; the SDM's Table 7-1 reads as if DPL had to equal RPL).
  TaskMachine m;
  m.set_task_segments(kConforming | 3, kUserData);
  m.set_gate(kIdt, 0x41, kCode32, kVectorStubs + 0x41 * 8, 0xEE);
  m.task2_code([](Asm& a) { a.int_(0x41); });
  m.code([](Asm& a) { far_branch(a, true, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 0x41);
  EXPECT_EQ(m.stack(1), uint32_t{kConforming | 3}) << "interrupted at CPL 3";
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), kRing0Stack - 0x1000 - 20) << "ring-0 stack from the new TSS";
}

TEST(TaskSwitch, NonConformingCsWithWrongRplFaultsInNewTask) {
  TaskMachine m;
  m.set_task_segments(kCode32 | 3, kUserData);
  m.code([](Asm& a) { far_branch(a, true, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 10);
  EXPECT_EQ(m.stack(0), uint32_t{kCode32}) << "#TS(new CS)";
  EXPECT_EQ(m.stack(1), kTask2Code) << "after the commit point: delivered at the new task's EIP";
  EXPECT_EQ(m.cpu.tr.selector, kTss2Sel);
}

TEST(TaskSwitch, AbsentStackSegmentIsSs) {
  TaskMachine m;
  m.set_descriptor(0x90 / 8, 0, 0xFFFFF, 0x12, 0xC);  // writable data, not present
  m.poke32(kTss2 + tss::Ss, 0x90);
  m.code([](Asm& a) { far_branch(a, true, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 12);
}

TEST(TaskSwitch, TrapBitRaisesDebugBeforeFirstInstruction) {
  TaskMachine m;
  m.poke32(kTss2 + tss::Trap, (0x68u << 16) | 1);
  m.task2_code([](Asm& a) { a.nop(); });
  m.code([](Asm& a) { far_branch(a, true, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 1);
  EXPECT_EQ(m.stack(0), kTask2Code);
  EXPECT_NE(m.cpu.dr[6] & (1u << 15), 0u) << "DR6.BT";
}

TEST(TaskSwitch, TrapBitIntoItsOwnBusyTaskGateIsGp) {
  // The #DB of the T bit goes through a task gate to the task just entered: busy, so
  // #GP(selector + EXT), delivered normally (a hostile chain of such gates ends).
  TaskMachine m;
  m.poke32(kTss2 + tss::Trap, (0x68u << 16) | 1);
  m.set_gate(kIdt, 1, kTss2Sel, 0, 0x85);
  m.code([](Asm& a) { far_branch(a, false, kTss2Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), kTss2Sel + 1u);
  EXPECT_EQ(m.stack(1), kTask2Code);
}

TEST(TaskSwitch, LoadsCr3OfTheNewTask) {
  TaskMachine m;
  m.enable_paging();
  // A second page directory whose first table maps kData to kData + 0x1000.
  constexpr uint32_t kDir2 = 0x110000, kTable2 = 0x111000;
  for (uint32_t p = 0; p < 1024; ++p) m.poke32(kTable2 + p * 4, (p << 12) | 7);
  m.poke32(kTable2 + ((kData >> 12) & 0x3FF) * 4, (kData + 0x1000) | 7);
  for (uint32_t t = 0; t < 4; ++t) m.poke32(kDir2 + t * 4, (kPageTables + t * 0x1000) | 7);
  m.poke32(kDir2 + (kData >> 22) * 4, kTable2 | 7);
  m.poke32(kData, 1);
  m.poke32(kData + 0x1000, 2);
  m.poke32(kTss2 + tss::Cr3, kDir2);
  m.task2_code([](Asm& a) { a.mov(eax, dword_ptr(kData)); });
  m.code([](Asm& a) {
    a.mov(ebx, dword_ptr(kData));  // fills the TLB with the old mapping
    far_branch(a, false, kTss2Sel);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.cr3, kDir2);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 2u);
  EXPECT_EQ(m.peek32(kTss + tss::Cr3), 0u) << "CR3 is static: never saved";
}

TEST(TaskSwitch, IretWithNtToFreeTaskIsTs) {
  TaskMachine m;
  m.poke32(kTss + tss::Link, kTss2Sel);  // available, not busy
  m.code([](Asm& a) { a.iretd(); });
  m.cpu.eflags |= flags::NT;
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 10);
  EXPECT_EQ(m.stack(0), uint32_t{kTss2Sel});
}

TEST(TaskSwitch, SixteenBitTss) {
  TaskMachine m;
  // 16-bit TSS: IP 0E, FLAGS 10, AX..DI 12..20, ES CS SS DS 22..28, LDT 2A.
  m.poke(kTss16 + 0x0E, {0x00, 0x00});  // IP: kTask2Code is beyond 64 KiB: use a CS base
  m.set_descriptor(0x98 / 8, kTask2Code, 0xFFFF, 0x9A, 0x4);
  const std::vector<uint8_t> words = {0x02, 0x00,  // FLAGS
                                      0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44,
                                      0x00, 0x80, 0x66, 0x66, 0x77, 0x77, 0x88, 0x88,  // AX CX DX BX SP BP SI DI
                                      0x10, 0x00, 0x98, 0x00, 0x10, 0x00, 0x10, 0x00,  // ES CS SS DS
                                      0x00, 0x00};                                     // LDT
  m.poke(kTss16 + 0x10, words);
  m.task2_code([](Asm& a) { a.nop(); });
  m.code([](Asm& a) { far_branch(a, false, kTss16Sel); });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.tr.selector, kTss16Sel);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xFFFF1111u) << "high halves read as ones";
  EXPECT_EQ(m.cpu.reg(Gpr::Esp), 0xFFFF8000u);
  EXPECT_EQ(m.cpu.sreg(SegReg::Fs).selector, 0u) << "a 16-bit TSS has no FS/GS";
  EXPECT_EQ(m.cpu.eip, 2u);
}

}  // namespace
}  // namespace vmm86::test
