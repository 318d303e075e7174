// Per-instruction tests of the arithmetic/data families, as data: code + expected
// registers and flags. The flag functions themselves are tested in tests/alu/.
#include <gtest/gtest.h>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;
constexpr uint32_t CF = flags::CF, PF = flags::PF, AF = flags::AF, ZF = flags::ZF, SF = flags::SF, OF = flags::OF;

struct RegExpect {
  Gpr reg;
  uint32_t value;
};

struct Case {
  const char* name;
  std::function<void(Asm&)> body;
  std::vector<RegExpect> regs;
  uint32_t flag_mask = 0;  ///< flags to compare
  uint32_t flag_values = 0;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class AluCases : public ::testing::TestWithParam<Case> {};

TEST_P(AluCases, Run) {
  const Case& c = GetParam();
  Machine m;
  m.code(c.body);
  const RunResult r = m.run();
  ASSERT_EQ(r.status, StepStatus::Halted);
  ASSERT_EQ(m.vector(), -1) << "unexpected exception";
  for (const RegExpect& e : c.regs) {
    EXPECT_EQ(m.cpu.reg(e.reg), e.value) << "register " << static_cast<int>(e.reg);
  }
  EXPECT_EQ(m.cpu.eflags & c.flag_mask, c.flag_values) << std::hex << "eflags=" << m.cpu.eflags;
}

// clang-format off
const Case kCases[] = {
    {"add_overflow", [](Asm& a) { a.mov(eax, 0x7FFFFFFF); a.add(eax, 1); },
     {{Gpr::Eax, 0x80000000u}}, CF | PF | AF | ZF | SF | OF, SF | OF | AF | PF},
    {"sub_borrow", [](Asm& a) { a.xor_(eax, eax); a.sub(eax, 1); },
     {{Gpr::Eax, 0xFFFFFFFFu}}, CF | ZF | SF | OF, CF | SF},
    {"adc_sbb_chain", [](Asm& a) { a.stc(); a.mov(eax, 5); a.adc(eax, 5); a.stc(); a.sbb(eax, 1); },
     {{Gpr::Eax, 9}}, CF, 0},
    {"byte_regs", [](Asm& a) { a.mov(eax, 0x11223344); a.mov(ah, 0x99); a.add(al, ah); },
     {{Gpr::Eax, 0x112299DDu}}, CF, 0},
    {"word_ops_keep_high", [](Asm& a) { a.mov(ebx, 0xABCD0000); a.mov(bx, 0xFFFF); a.inc(bx); },
     {{Gpr::Ebx, 0xABCD0000u}}, ZF, ZF},
    {"inc_keeps_cf", [](Asm& a) { a.stc(); a.mov(ecx, 0xFFFFFFFF); a.inc(ecx); },
     {{Gpr::Ecx, 0}}, CF | ZF, CF | ZF},
    {"neg_not", [](Asm& a) { a.mov(eax, 1); a.neg(eax); a.mov(ebx, 0xF0F0F0F0); a.not_(ebx); },
     {{Gpr::Eax, 0xFFFFFFFFu}, {Gpr::Ebx, 0x0F0F0F0Fu}}, CF, CF},
    {"shl_by_zero_keeps_flags", [](Asm& a) { a.stc(); a.mov(eax, 0x80000000); a.xor_(ecx, ecx); a.stc(); a.shl(eax, cl); },
     {{Gpr::Eax, 0x80000000u}}, CF | ZF, CF | ZF},
    {"shl_count_masked_to_5_bits", [](Asm& a) { a.mov(eax, 1); a.mov(ecx, 33); a.shl(eax, cl); },
     {{Gpr::Eax, 2}}, CF, 0},
    {"sar_negative", [](Asm& a) { a.mov(eax, 0x80000001); a.sar(eax, 1); },
     {{Gpr::Eax, 0xC0000000u}}, CF, CF},
    {"rcl_through_carry", [](Asm& a) { a.stc(); a.mov(eax, 0); a.rcl(eax, 1); },
     {{Gpr::Eax, 1}}, CF, 0},
    {"shld_shrd", [](Asm& a) { a.mov(eax, 0x12345678); a.mov(ebx, 0x9ABCDEF0); a.shld(eax, ebx, 8);
                               a.mov(edx, 0x12345678); a.shrd(edx, ebx, 4); },
     {{Gpr::Eax, 0x3456789Au}, {Gpr::Edx, 0x01234567u}}, 0, 0},
    {"mul_wide", [](Asm& a) { a.mov(eax, 0xFFFFFFFF); a.mov(ebx, 2); a.mul(ebx); },
     {{Gpr::Eax, 0xFFFFFFFEu}, {Gpr::Edx, 1}}, CF | OF, CF | OF},
    {"mul_byte", [](Asm& a) { a.mov(eax, 0xFFFF0010); a.mov(bl, 0x10); a.mul(bl); },
     {{Gpr::Eax, 0xFFFF0100u}}, CF | OF, CF | OF},
    {"imul_three_operand", [](Asm& a) { a.mov(ebx, 7); a.imul(eax, ebx, -3); },
     {{Gpr::Eax, static_cast<uint32_t>(-21)}}, CF | OF, 0},
    {"div", [](Asm& a) { a.mov(edx, 1); a.mov(eax, 5); a.mov(ecx, 2); a.div(ecx); },
     {{Gpr::Eax, 0x80000002u}, {Gpr::Edx, 1}}, 0, 0},
    {"idiv_negative", [](Asm& a) { a.mov(eax, -7); a.cdq(); a.mov(ecx, 2); a.idiv(ecx); },
     {{Gpr::Eax, static_cast<uint32_t>(-3)}, {Gpr::Edx, static_cast<uint32_t>(-1)}}, 0, 0},
    {"bt_family", [](Asm& a) { a.mov(eax, 0x10); a.bts(eax, 1); a.btr(eax, 4); a.btc(eax, 31); a.bt(eax, 1); },
     {{Gpr::Eax, 0x80000002u}}, CF, CF},
    {"bt_memory_negative_offset",
     [](Asm& a) { a.mov(dword_ptr(kData), 0); a.mov(dword_ptr(kData - 4), 0); a.mov(ecx, -1);
                  a.bts(dword_ptr(kData), ecx); a.mov(eax, dword_ptr(kData - 4)); },
     {{Gpr::Eax, 0x80000000u}}, CF, 0},
    {"bsf_bsr", [](Asm& a) { a.mov(ebx, 0x00F00000); a.bsf(eax, ebx); a.bsr(ecx, ebx); a.mov(edx, 5); a.xor_(ebx, ebx);
                             a.bsf(edx, ebx); },
     {{Gpr::Eax, 20}, {Gpr::Ecx, 23}, {Gpr::Edx, 5}}, ZF, ZF},
    {"setcc_cmov", [](Asm& a) { a.mov(eax, 1); a.cmp(eax, 2); a.setl(bl); a.setg(bh); a.mov(ecx, 9); a.cmovl(edx, ecx);
                                a.cmovg(esi, ecx); },
     {{Gpr::Ebx, 0x0001}, {Gpr::Edx, 9}, {Gpr::Esi, 0}}, 0, 0},
    {"cmpxchg_equal", [](Asm& a) { a.mov(dword_ptr(kData), 5); a.mov(eax, 5); a.mov(ecx, 7);
                                   a.cmpxchg(dword_ptr(kData), ecx); a.mov(ebx, dword_ptr(kData)); },
     {{Gpr::Ebx, 7}, {Gpr::Eax, 5}}, ZF, ZF},
    {"cmpxchg_not_equal", [](Asm& a) { a.mov(dword_ptr(kData), 6); a.mov(eax, 5); a.mov(ecx, 7);
                                       a.cmpxchg(dword_ptr(kData), ecx); a.mov(ebx, dword_ptr(kData)); },
     {{Gpr::Ebx, 6}, {Gpr::Eax, 6}}, ZF, 0},
    {"cmpxchg8b", [](Asm& a) { a.mov(dword_ptr(kData), 1); a.mov(dword_ptr(kData + 4), 2); a.mov(eax, 1); a.mov(edx, 2);
                               a.mov(ebx, 3); a.mov(ecx, 4); a.cmpxchg8b(qword_ptr(kData));
                               a.mov(esi, dword_ptr(kData)); a.mov(edi, dword_ptr(kData + 4)); },
     {{Gpr::Esi, 3}, {Gpr::Edi, 4}}, ZF, ZF},
    {"xadd", [](Asm& a) { a.mov(eax, 3); a.mov(ebx, 4); a.xadd(eax, ebx); },
     {{Gpr::Eax, 7}, {Gpr::Ebx, 3}}, 0, 0},
    {"bswap", [](Asm& a) { a.mov(eax, 0x11223344); a.bswap(eax); }, {{Gpr::Eax, 0x44332211u}}, 0, 0},
    {"conversions", [](Asm& a) { a.mov(eax, 0x80); a.cbw(); a.cwde(); a.cdq(); },
     {{Gpr::Eax, 0xFFFFFF80u}, {Gpr::Edx, 0xFFFFFFFFu}}, 0, 0},
    {"movzx_movsx", [](Asm& a) { a.mov(ebx, 0x80FF); a.movzx(eax, bl); a.movsx(ecx, bx); a.movsx(edx, bl); },
     {{Gpr::Eax, 0xFF}, {Gpr::Ecx, 0xFFFF80FFu}, {Gpr::Edx, 0xFFFFFFFFu}}, 0, 0},
    {"lea_scaled", [](Asm& a) { a.mov(ebx, 0x100); a.mov(ecx, 3); a.lea(eax, ptr(ebx, ecx, 2, -4)); },
     {{Gpr::Eax, 0x108}}, 0, 0},
    {"xchg_memory", [](Asm& a) { a.mov(dword_ptr(kData), 1); a.mov(eax, 2); a.xchg(dword_ptr(kData), eax);
                                 a.mov(ebx, dword_ptr(kData)); },
     {{Gpr::Eax, 1}, {Gpr::Ebx, 2}}, 0, 0},
    {"lahf_sahf", [](Asm& a) { a.mov(eax, 0); a.stc(); a.lahf(); a.mov(ebx, eax); a.mov(ah, 0xC1); a.sahf(); },
     {{Gpr::Ebx, 0x0300}}, CF | ZF | SF, CF | ZF | SF},
    {"daa", [](Asm& a) { a.mov(eax, 0x19); a.add(al, 0x28); a.daa(); }, {{Gpr::Eax, 0x47}}, CF, 0},
    {"aam_aad", [](Asm& a) { a.mov(eax, 79); a.aam(10); a.mov(ebx, eax); a.aad(10); },
     {{Gpr::Ebx, 0x0709}, {Gpr::Eax, 79}}, 0, 0},
    {"xlat", [](Asm& a) { a.mov(byte_ptr(kData + 5), 0x77); a.mov(ebx, kData); a.mov(eax, 5); a.xlatb(); },
     {{Gpr::Eax, 0x77}}, 0, 0},
    {"operand_size_prefix_16bit_add", [](Asm& a) { a.mov(eax, 0x1234FFFF); a.add(ax, 1); },
     {{Gpr::Eax, 0x12340000u}}, CF | ZF, CF | ZF},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Interp, AluCases, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(AluOps, DivideOverflowDeliversDivideError) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(edx, 2);
    a.mov(eax, 0);
    a.mov(ecx, 1);
    a.div(ecx);  // quotient does not fit: #DE
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 0);
  EXPECT_EQ(m.stack(0), kCode + 15) << "#DE is a fault: the saved EIP is the div itself";
  EXPECT_EQ(m.stack(1), kCode32);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0u) << "nothing written";
}

TEST(AluOps, DivideByZeroWord) {
  Machine m;
  m.code([](Asm& a) {
    a.xor_(ecx, ecx);
    a.div(cx);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 0);
}

TEST(AluOps, BoundRaisesBr) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(dword_ptr(kData), 0);
    a.mov(dword_ptr(kData + 4), 10);
    a.mov(eax, 11);
    a.bound(eax, qword_ptr(kData));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 5);
}

TEST(AluOps, LockedAddWorks) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(dword_ptr(kData), 1);
    a.lock().add(dword_ptr(kData), 2);
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.peek32(kData), 3u);
}

TEST(AluOps, LockOnRegisterFormIsUd) {
  Machine m;
  m.code_bytes({0xF0, 0x01, 0xC0});  // lock add eax, eax
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 6);
}

}  // namespace
}  // namespace vmm86::test
