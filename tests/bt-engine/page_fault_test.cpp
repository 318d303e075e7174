// Precise exceptions raised inside translated code: a #PF on the third instruction of a
// block (load, store, read-modify-write, push, pop, call, x87 store), in the middle of a
// rep movsd, on the fetch of the next instruction, and a #DE from a divide. The guest
// handler (an IDT gate to ring-0 code) records CR2, the error code, the faulting EIP and
// the registers, and — for #PF — maps the page and irets so the instruction is retried.
// Each program also runs on the interpreter alone (TwoRuns), the reference for every
// record and for the retired-instruction count. And TLB maintenance: INVLPG and a CR3
// reload must make translated code see a remapped page.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <tuple>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kHole = kData + 0x10000;  ///< a page the tests make not present (or read-only)
constexpr uint32_t kHoleWord = 0x5A5A5A5A;   ///< what kHole+12 holds physically

/// Initial registers of the fault programs.
constexpr uint32_t kEax = 0x100, kEbx = 0x200, kEcx = 0xC0FFEE, kEdx = 0x400, kEsi = 0x500, kEbp = 0x600;

// ---- #PF in the middle of a block ----

struct PageFaultCase {
  const char* name;
  bool user;
  uint32_t hole_pte;                                             ///< the PTE of kHole before the fault (0: not present)
  uint32_t esp;                                                  ///< ESP of the program
  uint32_t error;                                                ///< expected #PF error code
  uint32_t cr2;                                                  ///< expected CR2
  std::function<void(x86::Assembler&, const Label& sub)> third;  ///< the faulting instruction
  std::function<void(BtMachine&)> check_after;                   ///< effects of its retry
};

std::ostream& operator<<(std::ostream& os, const PageFaultCase& c) { return os << c.name; }

class PageFaultInBlock : public ::testing::TestWithParam<PageFaultCase> {};

TEST_P(PageFaultInBlock, IsPreciseAndRetriedAfterTheHandlerMapsThePage) {
  const PageFaultCase& pc = GetParam();
  TwoRuns runs;
  uint32_t third_eip = 0, hlt_eip = 0;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label block = a.newLabel(), third = a.newLabel(), end = a.newLabel(), sub = a.newLabel();
    a.mov(x86::eax, kEax);
    a.mov(x86::ebx, kEbx);
    a.mov(x86::ecx, kEcx);
    a.mov(x86::edx, kEdx);
    a.mov(x86::esi, kEsi);
    a.mov(x86::edi, kHole);
    a.mov(x86::ebp, kEbp);
    a.fninit();
    a.fld1();  // for the x87 case
    a.jmp(block);
    a.bind(block);  // a block of its own: the fault is on its third instruction
    a.inc(x86::eax);
    a.add(x86::ebx, 5);
    a.bind(third);
    pc.third(a, sub);
    a.inc(x86::edx);
    a.add(x86::esi, 7);
    a.bind(end);
    a.hlt();  // CPL 3: #GP, recorded; CPL 0: the end
    a.bind(sub);
    a.ret();
    m.load(c);
    third_eip = c.addr(third);
    hlt_eip = c.addr(end);
    m.poke32(kHole + 12, kHoleWord);
    m.make_hole(kHole, pc.hole_pte);
    m.start(kCode, pc.esp, pc.user);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());

  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), pc.user ? 2u : 1u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.error, pc.error);
  EXPECT_EQ(pf.cr2, pc.cr2);
  EXPECT_EQ(pf.eip, third_eip) << "faulting EIP";
  // Everything before the faulting instruction retired; nothing after it.
  EXPECT_EQ(pf.eax, kEax + 1);
  EXPECT_EQ(pf.ebx, kEbx + 5);
  EXPECT_EQ(pf.ecx, kEcx);
  EXPECT_EQ(pf.edx, kEdx);
  EXPECT_EQ(pf.esi, kEsi);
  EXPECT_EQ(pf.edi, kHole);
  EXPECT_EQ(pf.ebp, kEbp);
  if (pc.user) {
    EXPECT_EQ(pf.outer_esp, pc.esp) << "ESP at the fault";
  }
  EXPECT_GE(m.engine().fault_stats().page_faults, 1u) << "the #PF did not come from translated code";

  // After iret the instruction retried and the rest of the block ran.
  uint32_t edx = 0, esi = 0, eip = 0;
  if (pc.user) {
    const ExceptionRecord gp = m.record(1);
    EXPECT_EQ(gp.vector, 13u);
    edx = gp.edx, esi = gp.esi, eip = gp.eip;
  } else {
    edx = m.cpu().reg(Gpr::Edx), esi = m.cpu().reg(Gpr::Esi), eip = m.cpu().eip - 1;
  }
  EXPECT_EQ(edx, kEdx + 1);
  EXPECT_EQ(esi, kEsi + 7);
  EXPECT_EQ(eip, hlt_eip);
  if (pc.check_after) pc.check_after(m);
}

constexpr uint32_t kW = 2, kU = 4, kP = 1;
constexpr uint32_t kHoleStack = kHole + 0x100;

const PageFaultCase kPageFaultCases[] = {
    {"UserStore", true, 0, kStackTop, kU | kW, kHole + 8,
     [](x86::Assembler& a, const Label&) { a.mov(x86::dword_ptr(x86::edi, 8), x86::ecx); },
     [](BtMachine& m) { EXPECT_EQ(m.peek32(kHole + 8), kEcx); }},
    {"UserLoad", true, 0, kStackTop, kU, kHole + 12,
     [](x86::Assembler& a, const Label&) { a.mov(x86::ebp, x86::dword_ptr(x86::edi, 12)); },
     [](BtMachine& m) { EXPECT_EQ(m.record(1).ebp, kHoleWord); }},
    {"UserReadModifyWrite", true, 0, kStackTop, kU | kW, kHole + 12,
     [](x86::Assembler& a, const Label&) { a.add(x86::dword_ptr(x86::edi, 12), x86::ecx); },
     [](BtMachine& m) { EXPECT_EQ(m.peek32(kHole + 12), kHoleWord + kEcx); }},
    {"UserStoreToReadOnlyPage", true, kHole | kP | kU, kStackTop, kU | kW | kP, kHole + 8,
     [](x86::Assembler& a, const Label&) { a.mov(x86::dword_ptr(x86::edi, 8), x86::ecx); },
     [](BtMachine& m) { EXPECT_EQ(m.peek32(kHole + 8), kEcx); }},
    {"UserPush", true, 0, kHoleStack, kU | kW, kHoleStack - 4,
     [](x86::Assembler& a, const Label&) { a.push(x86::ecx); },
     [](BtMachine& m) {
       EXPECT_EQ(m.peek32(kHoleStack - 4), kEcx);
       EXPECT_EQ(m.record(1).outer_esp, kHoleStack - 4);
     }},
    {"UserPop", true, 0, kHole + 12, kU, kHole + 12, [](x86::Assembler& a, const Label&) { a.pop(x86::ebp); },
     [](BtMachine& m) {
       EXPECT_EQ(m.record(1).ebp, kHoleWord);
       EXPECT_EQ(m.record(1).outer_esp, kHole + 16);
     }},
    {"UserCall", true, 0, kHoleStack, kU | kW, kHoleStack - 4, [](x86::Assembler& a, const Label& sub) { a.call(sub); },
     [](BtMachine& m) { EXPECT_EQ(m.record(1).outer_esp, kHoleStack); }},
    {"UserFpuStore", true, 0, kStackTop, kU | kW, kHole + 8,
     [](x86::Assembler& a, const Label&) { a.fstp(x86::dword_ptr(x86::edi, 8)); },
     [](BtMachine& m) {
       EXPECT_EQ(m.peek32(kHole + 8), 0x3F800000u) << "1.0f";
       uint16_t fsw = 0;
       std::memcpy(&fsw, &m.cpu().fxsave[2], 2);
       EXPECT_EQ((fsw >> 11) & 7, 0) << "x87 TOP: fstp must pop exactly once";
     }},
    {"KernelStore", false, 0, kStackTop, kW, kHole + 8,
     [](x86::Assembler& a, const Label&) { a.mov(x86::dword_ptr(x86::edi, 8), x86::ecx); },
     [](BtMachine& m) { EXPECT_EQ(m.peek32(kHole + 8), kEcx); }},
    {"KernelLoad", false, 0, kStackTop, 0, kHole + 12,
     [](x86::Assembler& a, const Label&) { a.mov(x86::ebp, x86::dword_ptr(x86::edi, 12)); },
     [](BtMachine& m) { EXPECT_EQ(m.cpu().reg(Gpr::Ebp), kHoleWord); }},
};

INSTANTIATE_TEST_SUITE_P(BtEngine, PageFaultInBlock, ::testing::ValuesIn(kPageFaultCases),
                         [](const ::testing::TestParamInfo<PageFaultCase>& p) { return p.param.name; });

/// rep movsd from a present page into one that is not present: the copy stops at the
/// first dword of the hole with ECX/ESI/EDI precise, the handler maps it, iret resumes it.
TEST(PageFaultInString, RepMovsdIntoANotPresentPageResumesPrecisely) {
  constexpr uint32_t kSrc = kData + 0x100, kDst = kHole - 16, kCount = 8;
  TwoRuns runs;
  uint32_t movs_eip = 0;
  runs.setup([&](BtMachine& m) {
    for (uint32_t i = 0; i < kCount; ++i) m.poke32(kSrc + 4 * i, 0x1000 + i);
    GuestCode c(kCode);
    auto& a = c.a();
    Label block = a.newLabel(), movs = a.newLabel();
    a.cld();
    a.mov(x86::esi, kSrc);
    a.mov(x86::edi, kDst);
    a.mov(x86::ecx, kCount);
    a.xor_(x86::edx, x86::edx);
    a.jmp(block);
    a.bind(block);
    a.inc(x86::edx);
    a.bind(movs);
    a.rep().movsd();
    a.inc(x86::edx);
    a.hlt();
    m.load(c);
    movs_eip = c.addr(movs);
    m.make_hole(kHole);
    m.start(kCode, kStackTop, true);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), 2u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.error, kU | kW);
  EXPECT_EQ(pf.cr2, kHole);
  EXPECT_EQ(pf.eip, movs_eip);
  EXPECT_EQ(pf.ecx, 4u);
  EXPECT_EQ(pf.esi, kSrc + 16);
  EXPECT_EQ(pf.edi, kHole);
  EXPECT_EQ(pf.edx, 1u);
  const ExceptionRecord gp = m.record(1);
  EXPECT_EQ(gp.ecx, 0u);
  EXPECT_EQ(gp.edx, 2u);
  for (uint32_t i = 0; i < kCount; ++i) EXPECT_EQ(m.peek32(kDst + 4 * i), 0x1000 + i) << i;
}

/// Code runs into a page that is not present: #PF on the fetch, with EIP and CR2 at the
/// instruction (or, when it straddles the boundary, at the page); the handler maps the
/// page and the instruction runs.
void run_into_a_hole(uint32_t straddle) {
  // Four 1-byte incs, then mov ecx, imm32 starting `straddle` bytes before kHole.
  const uint32_t start = kHole - 4 - straddle;
  uint32_t mov_eip = 0;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(start);
    auto& a = c.a();
    Label mov = a.newLabel();
    a.inc(x86::eax);
    a.inc(x86::ebx);
    a.inc(x86::edx);
    a.inc(x86::esi);
    a.bind(mov);
    a.mov(x86::ecx, 0x12345678);
    a.inc(x86::edx);
    a.hlt();
    m.load(c);
    mov_eip = c.addr(mov);
    m.make_hole(kHole);
    m.start(start, kStackTop, true);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), 2u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.cr2, kHole);
  EXPECT_EQ(pf.eip, straddle ? mov_eip : kHole);
  EXPECT_EQ(mov_eip, kHole - straddle);
  EXPECT_EQ(pf.esi, 1u) << "the instructions before the hole retired";
  EXPECT_EQ(pf.ecx, 0u);
  const ExceptionRecord gp = m.record(1);
  EXPECT_EQ(gp.vector, 13u);
  EXPECT_EQ(gp.ecx, 0x12345678u);
  EXPECT_EQ(gp.edx, pf.edx + 1);
}

TEST(PageFaultOnFetch, NextInstructionOnANotPresentPage) { run_into_a_hole(0); }

TEST(PageFaultOnFetch, InstructionStraddlingIntoANotPresentPage) { run_into_a_hole(3); }

// ---- #DE ----

struct DivideCase {
  const char* name;
  uint32_t eax, edx, ecx;
  std::function<void(x86::Assembler&)> divide;
};

std::ostream& operator<<(std::ostream& os, const DivideCase& c) { return os << c.name; }

class DivideErrorInBlock : public ::testing::TestWithParam<std::tuple<DivideCase, bool>> {};

TEST_P(DivideErrorInBlock, IsDeliveredPrecisely) {
  // Named variables, not a structured binding: the lambda below captures them (clang 14,
  // which clang-tidy runs on, cannot capture a binding).
  const DivideCase& dc = std::get<0>(GetParam());
  const bool user = std::get<1>(GetParam());
  TwoRuns runs;
  uint32_t div_eip = 0;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label block = a.newLabel(), div = a.newLabel();
    a.mov(x86::eax, dc.eax);
    a.mov(x86::edx, dc.edx);
    a.mov(x86::ecx, dc.ecx);
    a.mov(x86::esi, kEsi);
    a.mov(x86::edi, 0);
    a.jmp(block);
    a.bind(block);
    a.inc(x86::esi);
    a.add(x86::edi, 3);
    a.bind(div);
    dc.divide(a);
    a.inc(x86::esi);
    a.add(x86::edi, 3);
    a.hlt();
    m.load(c);
    div_eip = c.addr(div);
    m.start(kCode, kStackTop, user);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), 1u);
  const ExceptionRecord de = m.record(0);
  EXPECT_EQ(de.vector, 0u);
  EXPECT_EQ(de.eip, div_eip);
  EXPECT_EQ(de.esi, kEsi + 1);
  EXPECT_EQ(de.edi, 3u);
  EXPECT_EQ(de.eax, dc.eax);
  EXPECT_EQ(de.edx, dc.edx);
  EXPECT_EQ(de.ecx, dc.ecx);
  EXPECT_GE(m.engine().fault_stats().other, 1u) << "the #DE did not come from translated code";
}

const DivideCase kDivideCases[] = {
    {"DivByZero", 100, 0, 0, [](x86::Assembler& a) { a.div(x86::ecx); }},
    {"IdivOverflow", 0x80000000u, 0xFFFFFFFFu, 0xFFFFFFFFu, [](x86::Assembler& a) { a.idiv(x86::ecx); }},
    {"Div8QuotientTooLarge", 0x1000, 0, 0x10, [](x86::Assembler& a) { a.div(x86::cl); }},
    {"DivMemoryByZero", 7, 0, 0, [](x86::Assembler& a) { a.div(x86::dword_ptr(kData + 0x100)); }},
};

INSTANTIATE_TEST_SUITE_P(BtEngine, DivideErrorInBlock,
                         ::testing::Combine(::testing::ValuesIn(kDivideCases), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<DivideCase, bool>>& p) {
                           return std::string(std::get<0>(p.param).name) + (std::get<1>(p.param) ? "User" : "Kernel");
                         });

// ---- TLB maintenance ----

constexpr uint32_t kRemapped = 0x600000, kPhysA = 0x700000, kPhysB = 0x701000;

/// Reads kRemapped (mapped to kPhysA) in translated code, remaps it to kPhysB with a PTE
/// write and `flush`, reads it again. The second read must see kPhysB's contents.
void remap_and_read(const std::function<void(x86::Assembler&)>& flush) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kRemapped, kPhysA, kPresent | kWritable);
    m.poke32(kPhysA, 0xAAAA);
    m.poke32(kPhysB, 0xBBBB);
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, x86::dword_ptr(kRemapped));
    a.mov(x86::dword_ptr(kData), x86::eax);
    a.mov(x86::dword_ptr(m.pte_addr(kPageDir, kRemapped)), kPhysB | kPresent | kWritable);
    flush(a);
    a.mov(x86::eax, x86::dword_ptr(kRemapped));
    a.mov(x86::dword_ptr(kData + 4), x86::eax);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kData), 0xAAAAu);
  EXPECT_EQ(m.peek32(kData + 4), 0xBBBBu) << "translated code read through a stale shadow mapping";
}

TEST(TlbMaintenance, InvlpgMakesTranslatedCodeSeeTheNewMapping) {
  remap_and_read([](x86::Assembler& a) { a.invlpg(x86::ptr(kRemapped)); });
}

TEST(TlbMaintenance, Cr3ReloadMakesTranslatedCodeSeeTheNewMapping) {
  remap_and_read([](x86::Assembler& a) {
    a.mov(x86::ecx, x86::cr3);
    a.mov(x86::cr3, x86::ecx);
  });
}

TEST(TlbMaintenance, Cr3SwitchMakesTranslatedCodeSeeTheOtherSpace) {
  // The control: a real CR3 change is noticed (a second directory with the other frame).
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kRemapped, kPhysA, kPresent | kWritable);
    const uint32_t other = m.new_directory();
    m.identity_map(other, kIdentityBytes, kPresent | kWritable);
    m.map_page(other, kRemapped, kPhysB, kPresent | kWritable);
    m.poke32(kPhysA, 0xAAAA);
    m.poke32(kPhysB, 0xBBBB);
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, x86::dword_ptr(kRemapped));
    a.mov(x86::dword_ptr(kData), x86::eax);
    a.mov(x86::ecx, other);
    a.mov(x86::cr3, x86::ecx);
    a.mov(x86::eax, x86::dword_ptr(kRemapped));
    a.mov(x86::dword_ptr(kData + 4), x86::eax);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kData), 0xAAAAu);
  EXPECT_EQ(m.peek32(kData + 4), 0xBBBBu);
}

}  // namespace
}  // namespace vmm86::bttest
