// System instructions: descriptor-table registers, lldt/ltr, CR/DR moves, MSRs, CPUID,
// RDTSC, lar/lsl/verr/verw/arpl, privilege checks.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(System, LgdtSgdtLidtSidt) {
  Machine m;
  m.poke(kData, {0x7F, 0x00, 0x00, 0x10, 0x00, 0x00});  // limit 0x7F, base 0x1000
  m.code([](Asm& a) {
    a.lgdt(ptr(kData));
    a.sgdt(ptr(kData + 0x10));
    a.sidt(ptr(kData + 0x20));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.gdtr.limit, 0x7F);
  EXPECT_EQ(m.peek32(kData + 0x12), kGdt);
  EXPECT_EQ(m.peek32(kData + 0x22), kIdt);
  EXPECT_EQ(m.peek8(kData + 0x20), 0xFF);
}

TEST(System, LtrMarksBusyAndStrReads) {
  Machine m;
  m.cpu.tr = SegmentCache{0, 0, 0, 0};
  m.code([](Asm& a) {
    a.mov(eax, kTssSel);
    a.ltr(ax);
    a.str(ebx);
    a.ltr(ax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), kTssSel);
  EXPECT_EQ((m.peek32(kGdt + kTssSel + 4) >> 8) & 0xF, 0xBu);
  EXPECT_EQ(m.vector(), 13) << "loading a busy TSS faults";
}

TEST(System, LldtAndLdtSegment) {
  Machine m;
  m.cpu.gdtr.limit = 0xFF;
  m.set_descriptor(13, kData + 0x800, 0xF, 0x82, 0);  // LDT with two entries
  m.poke32(kData + 0x808, 0x0000FFFF);                // LDT[1]: flat data DPL 0
  m.poke32(kData + 0x80C, 0x00CF9200);
  m.code([](Asm& a) {
    a.mov(eax, 13 * 8);
    a.lldt(ax);
    a.sldt(ecx);
    a.mov(eax, 0x0C);  // LDT[1], RPL 0
    a.mov(es, ax);
    a.mov(edx, es);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 13u * 8);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), 0x0Cu);
  EXPECT_EQ(m.cpu.sreg(SegReg::Es).limit, 0xFFFFFFFFu);
}

TEST(System, ControlRegisters) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, asmjit::x86::cr0);
    a.or_(eax, vmm86::cr0::TS);
    a.mov(asmjit::x86::cr0, eax);
    a.smsw(ebx);
    a.clts();
    a.mov(ecx, asmjit::x86::cr0);
    a.mov(eax, vmm86::cr4::PSE | vmm86::cr4::PGE);
    a.mov(asmjit::x86::cr4, eax);
    a.mov(edx, asmjit::x86::cr4);
    a.mov(eax, 1u << 20);  // reserved CR4 bit
    a.mov(asmjit::x86::cr4, eax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_NE(m.cpu.reg(Gpr::Ebx) & vmm86::cr0::TS, 0u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx) & vmm86::cr0::TS, 0u);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), vmm86::cr4::PSE | vmm86::cr4::PGE);
  EXPECT_EQ(m.vector(), 13);
}

TEST(System, PagingEnabledThroughCr0WithoutPeFaults) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, cr0::PG);
    a.mov(asmjit::x86::cr0, eax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
}

// PAE (SDM Vol. 3 §4.4.1): the PDPTEs are registers loaded by MOV to CR3 (and by the MOVs
// to CR0/CR4 that turn PAE paging on); a present PDPTE with a reserved bit makes the MOV
// raise #GP(0) and leaves CR3 as it was. QEMU 7.2 does neither (tests/conformance/pae.c).
constexpr uint32_t kPdpt = 0x300000, kBadPdpt = 0x300020, kDirectory = 0x301000;

TEST(System, PaeLoadsPdptesOnMovToCr3AndFaultsOnReservedBits) {
  Machine m;
  for (uint32_t i = 0; i < 8; ++i) {  // 0-16 MiB identity in 2 MiB pages
    m.poke32(kDirectory + 8 * i, (i << 21) | 0x87);
    m.poke32(kDirectory + 8 * i + 4, 0);
  }
  m.poke32(kPdpt, kDirectory | 1);
  m.poke32(kBadPdpt, kDirectory | 1);
  m.poke32(kBadPdpt + 8, kDirectory | 1 | 0x20);  // bit 5 of a present PDPTE is reserved
  m.code([](Asm& a) {
    a.mov(eax, kPdpt);
    a.mov(asmjit::x86::cr3, eax);
    a.mov(eax, vmm86::cr4::PAE);
    a.mov(asmjit::x86::cr4, eax);
    a.mov(eax, asmjit::x86::cr0);
    a.or_(eax, vmm86::cr0::PG);
    a.mov(asmjit::x86::cr0, eax);  // loads the PDPTEs: paging on
    a.mov(eax, kBadPdpt);
    a.mov(asmjit::x86::cr3, eax);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 13);
  EXPECT_EQ(m.stack(0), 0u) << "#GP(0)";
  EXPECT_EQ(m.cpu.cr3, kPdpt) << "CR3 unchanged";
  EXPECT_EQ(m.cpu.pdpte[0], uint64_t{kDirectory | 1});
  EXPECT_EQ(m.cpu.pdpte[1], 0u) << "the PDPTEs of the refused PDPT were not loaded";
}

TEST(System, DebugRegisters) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, 0x1234);
    a.mov(dr0, eax);
    a.mov(ebx, dr0);
    a.mov(ecx, dr6);
    a.mov(edx, dr7);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0x1234u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ecx), 0xFFFF0FF0u);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), 0x400u);
}

TEST(System, CpuidRdtscMsrs) {
  Machine m;
  m.code([](Asm& a) {
    a.xor_(eax, eax);
    a.cpuid();
    a.mov(esi, ebx);
    a.mov(ecx, 0x174);
    a.mov(eax, 0x60);
    a.xor_(edx, edx);
    a.wrmsr();
    a.xor_(eax, eax);
    a.rdmsr();
    a.mov(edi, eax);
    a.rdtsc();
    a.mov(ecx, 0x12345);  // unknown MSR: the hook says no
    a.rdmsr();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Esi), 0x756E6547u);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), 0x60u);
  EXPECT_EQ(m.cpu.msr.sysenter_cs, 0x60u);
  EXPECT_GT(m.cpu.reg(Gpr::Eax), 0u);
  EXPECT_EQ(m.vector(), 13);
}

TEST(System, TscMsrWriteSetsOffset) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(ecx, 0x10);
    a.mov(eax, 0);
    a.mov(edx, 1);
    a.wrmsr();
    a.rdtsc();
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx), 1u);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 1000u) << "one clock tick (1000) after the write";
}

TEST(System, WrmsrReservedBitsAndMemoryTypesAreGp) {
  // SDM Vol. 2 WRMSR: #GP(0) for reserved bits; Vol. 3 §11.11.2 (MTRRs), §11.12.2 (PAT).
  struct Case {
    uint32_t index;
    uint64_t value;
    bool faults;
  };
  const Case cases[] = {
      {0x277, 0x0007040600070406ULL, false},  // Linux's PAT
      {0x277, 0x0007040600070402ULL, true},   // type 2 is reserved
      {0x277, 0x0007040600070408ULL, true},   // bits 7:3 of an entry
      {0x2FF, 0xC06, false},                  // E, FE, WB
      {0x2FF, 0x100, true},                   // bit 8 reserved
      {0x2FF, 0x802, true},                   // type 2
      {0x200, 0xF0000006ULL, false},          // PHYSBASE0
      {0x200, 0x1000000006ULL, true},         // beyond 36 physical bits
      {0x201, 0xFF0000800ULL, false},         // PHYSMASK0, valid
      {0x201, 0xFF0000801ULL, true},          // bits 10:0 reserved
      {0x250, 0x0606060606060606ULL, false},  // FIX64K
      {0x268, 0x0606060606060603ULL, true},   // FIX4K with type 3
  };
  for (const Case& k : cases) {
    Machine m;
    m.cpu.reg(Gpr::Ecx) = k.index;
    m.cpu.reg(Gpr::Eax) = static_cast<uint32_t>(k.value);
    m.cpu.reg(Gpr::Edx) = static_cast<uint32_t>(k.value >> 32);
    m.code([](Asm& a) { a.wrmsr(); });
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    EXPECT_EQ(m.vector(), k.faults ? 13 : -1) << std::hex << k.index << " " << k.value;
    if (k.faults) {
      EXPECT_EQ(m.stack(0), 0u);
    }
  }
}

TEST(System, PrivilegedInstructionsFaultAtRing3) {
  const std::vector<std::vector<uint8_t>> cases = {
      {0xF4},              // hlt
      {0x0F, 0x20, 0xC0},  // mov eax, cr0
      {0x0F, 0x01, 0x10},  // lgdt [eax]
      {0x0F, 0x32},        // rdmsr
      {0x0F, 0x06},        // clts
      {0x0F, 0x09},        // wbinvd
      {0xFA},              // cli (IOPL 0)
      {0x0F, 0x01, 0x38},  // invlpg [eax]
  };
  for (const auto& bytes : cases) {
    Machine m;
    m.code_bytes(bytes);
    m.enter_ring3();
    ASSERT_EQ(m.run().status, StepStatus::Halted);
    EXPECT_EQ(m.vector(), 13) << "opcode " << std::hex << int{bytes[0]} << " " << int{bytes[1 % bytes.size()]};
    EXPECT_EQ(m.stack(1), kCode);
  }
}

TEST(System, LarLslVerrVerwArpl) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(ecx, kCode32);
    a.lar(eax, ecx);
    a.lsl(ebx, ecx);
    a.mov(ecx, kReadOnly);
    a.verr(cx);
    a.setz(dl);
    a.verw(cx);
    a.setz(dh);
    a.mov(ecx, 0x7F8);  // beyond the GDT limit: ZF=0, no fault
    a.lsl(esi, ecx);
    a.setz(byte_ptr(kData));
    a.mov(edi, 0x10);
    a.mov(ecx, 3);
    a.arpl(di, cx);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), -1);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x00C09A00u) << "attribute bits of the descriptor as stored";
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0xFFFFFFFFu);
  EXPECT_EQ(m.cpu.reg(Gpr::Edx) & 0xFFFF, 0x0001u) << "read-only: verr yes, verw no";
  EXPECT_EQ(m.peek8(kData), 0);
  EXPECT_EQ(m.cpu.reg(Gpr::Edi), 0x13u);
  EXPECT_NE(m.cpu.eflags & flags::ZF, 0u);
}

TEST(System, RsmOutsideSmmIsUd) {
  Machine m;
  m.code_bytes({0x0F, 0xAA});
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 6);
}

}  // namespace
}  // namespace vmm86::test
