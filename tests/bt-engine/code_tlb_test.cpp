// The code TLB (translator/code_tlb.h): blocks are keyed by guest-physical address and the
// inline indirect table by linear EIP alone, so after a CR3 switch, a PTE change + INVLPG,
// a CR3 reload or a CR4 change, the table may lead to a block translated from a frame the
// linear page no longer maps. Its checked entry must then miss, and the guest must run
// the code (or take the #PF) the current page tables say. The guest reaches the code
// through `call reg`, cross-page direct calls, `ret` and `iret`, which all go through the
// table; a ring-0 service (int 0x80, callable from ring 3) does the paging changes.
#include <gtest/gtest.h>

#include <functional>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kShared = 0x800000;  ///< linear code page; PDE 2, outside the identity map
constexpr uint32_t kFrameA = 0x700000, kFrameB = 0x701000;
/// What the routine in each frame returns in EAX: sums of them count the calls per frame.
constexpr uint32_t kRetA = 1, kRetB = 0x10000;
constexpr uint32_t kGlobal = 0x100, kLargePage = 0x80;
constexpr uint32_t kRounds = 400;  ///< even: every loop ends back in its first state

/// `mov eax, value; ret` for linear `linear`, stored at `phys`.
void load_routine(BtMachine& m, uint32_t phys, uint32_t value, uint32_t linear = kShared) {
  GuestCode c(linear);
  c.a().mov(x86::eax, value);
  c.a().ret();
  m.load_at(c, phys);
}

/// kRounds times: `call ebp; add esi, eax` (and `call kShared; add esi, eax` when
/// `direct_too`), then int 0x80. Then hlt (at CPL 3: #GP, recorded).
void load_call_loop(BtMachine& m, bool user, bool direct_too) {
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel();
  a.mov(x86::ecx, kRounds);
  a.xor_(x86::esi, x86::esi);
  a.mov(x86::ebp, kShared);
  a.bind(top);
  a.call(x86::ebp);
  a.add(x86::esi, x86::eax);
  if (direct_too) {
    a.call(Imm(kShared));  // cross-page direct call: through the table too
    a.add(x86::esi, x86::eax);
  }
  a.int_(kServiceVector);
  a.dec(x86::ecx);
  a.jnz(top);
  a.hlt();
  m.load(c);
  m.start(kCode, kStackTop, user);
}

/// Registers at the final hlt (at CPL 3 it raises #GP, whose handler clobbers ESI/EDI/ECX
/// but records them), after checking that the run ended there.
struct EndRegs {
  uint32_t ebx, esi, edi;
};
EndRegs end_regs(BtMachine& m, bool user, uint32_t earlier_records = 0) {
  EXPECT_EQ(m.record_count(), earlier_records + (user ? 1 : 0));
  if (!user) return {m.cpu().reg(Gpr::Ebx), m.cpu().reg(Gpr::Esi), m.cpu().reg(Gpr::Edi)};
  const ExceptionRecord gp = m.record(earlier_records);
  EXPECT_EQ(gp.vector, 13u) << "the #GP of hlt at CPL 3";
  return {gp.ebx, gp.esi, gp.edi};
}

// ---- two address spaces ----

/// Two address spaces map kShared to different frames: every call after a switch finds
/// the other space's block in the table and must not run it.
void other_frame_per_space(bool user) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.two_spaces(kShared, kFrameA, kFrameB);
    load_routine(m, kFrameA, kRetA);
    load_routine(m, kFrameB, kRetB);
    load_call_loop(m, user, true);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(end_regs(m, user).esi, kRounds * kRetA + kRounds * kRetB) << "low half: calls that ran A's code";
  // The inline lookup compares the code TLB itself (a miss there is an indirect miss); a
  // block's checked entry does it for the dispatcher and chained jumps.
  EXPECT_GT(m.tstats().code_tlb_misses + m.tstats().indirect_misses, 0u)
      << "the table never refused the other space's block";
}

TEST(CodeTlb, OtherFrameAtTheSameLinearPageKernel) { other_frame_per_space(false); }
TEST(CodeTlb, OtherFrameAtTheSameLinearPageUser) { other_frame_per_space(true); }

/// Both spaces map kShared to the same frame: the block stays valid across switches, and
/// the refill on CR3 writes keeps the checked entries hitting (no exit per call).
void same_frame_per_space(bool user) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.two_spaces(kShared, kFrameA, kFrameA);
    load_routine(m, kFrameA, kRetA);
    load_call_loop(m, user, true);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(end_regs(m, user).esi, 2 * kRounds * kRetA);
  // 800 calls and 800 returns after 400 CR3 writes; only the first visits of each space
  // may miss. Losing the refill (or the entries) would cost at least one miss per switch.
  EXPECT_LT(m.engine().stats().exits_code_tlb, kRounds / 8) << "checked entries kept missing";
  EXPECT_LT(m.tstats().blocks_translated, 24u) << "the shared routine was translated again";
}

TEST(CodeTlb, SameFrameStaysTranslatedAcrossSwitchesKernel) { same_frame_per_space(false); }
TEST(CodeTlb, SameFrameStaysTranslatedAcrossSwitchesUser) { same_frame_per_space(true); }

/// kShared's code differs per space and so does what follows `int 0x80`: the service
/// switches CR3 and its iret returns to the same EIP in the other space's code.
void iret_into_other_code(bool user) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.two_spaces(kShared, kFrameA, kFrameB);
    // The same layout in both frames: inc (1 byte), int 0x80, add ebx, imm8 ...
    auto program = [&](uint32_t phys, const x86::Gp& counter, int add) {
      GuestCode c(kShared);
      auto& a = c.a();
      Label top = a.newLabel();
      a.bind(top);
      a.inc(counter);
      a.int_(kServiceVector);
      a.add(x86::ebx, add);
      a.dec(x86::ecx);
      a.jnz(top);  // same-page: chained
      a.hlt();
      m.load_at(c, phys);
      return c.bytes().size();
    };
    ASSERT_EQ(program(kFrameA, x86::esi, 1), program(kFrameB, x86::edi, 2));
    m.start(kShared, kStackTop, user);
    m.cpu().reg(Gpr::Ecx) = kRounds;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  // Rounds alternate: inc esi in A, add ebx, 2 in B; inc edi in B, add ebx, 1 in A.
  const EndRegs r = end_regs(m, user);
  EXPECT_EQ(r.esi, kRounds / 2);
  EXPECT_EQ(r.edi, kRounds / 2);
  EXPECT_EQ(r.ebx, kRounds / 2 * 3);
}

TEST(CodeTlb, IretToTheSameEipInTheOtherSpaceKernel) { iret_into_other_code(false); }
TEST(CodeTlb, IretToTheSameEipInTheOtherSpaceUser) { iret_into_other_code(true); }

// ---- one address space, remapped ----

struct RemapCase {
  const char* name;
  bool user;
  bool global;  ///< kShared's PTE has G, and CR4.PGE is on
  /// The service: flip kShared's PTE (given its address) between the frames and flush.
  std::function<void(x86::Assembler&, uint32_t pte, uint32_t dir_b)> service;
};

std::ostream& operator<<(std::ostream& os, const RemapCase& c) { return os << c.name; }

class CodeTlbRemap : public ::testing::TestWithParam<RemapCase> {};

/// Every round the service moves kShared to the other frame: each call must run the code
/// of the frame mapped at that time (half A, half B).
TEST_P(CodeTlbRemap, NextIndirectCallRunsTheNewFrame) {
  const RemapCase& rc = GetParam();
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    const uint32_t dir_b = m.new_identity_directory();
    m.map_page(dir_b, kShared, kFrameA, kUserRw);
    m.map_page(kPageDir, kShared, kFrameA, kUserRw | (rc.global ? kGlobal : 0));
    load_routine(m, kFrameA, kRetA);
    load_routine(m, kFrameB, kRetB);
    const uint32_t pte = m.pte_addr(kPageDir, kShared);
    m.install_service([&](x86::Assembler& a) { rc.service(a, pte, dir_b); });
    load_call_loop(m, rc.user, false);
    if (rc.global) m.cpu().cr4 |= cr4::PGE;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(end_regs(m, rc.user).esi, kRounds / 2 * kRetA + kRounds / 2 * kRetB) << "low half: calls that ran A's code";
}

void flip(x86::Assembler& a, uint32_t pte) { a.xor_(x86::dword_ptr(pte), kFrameA ^ kFrameB); }
void invlpg(x86::Assembler& a, uint32_t, uint32_t) { a.invlpg(x86::ptr(kShared)); }
void reload_cr3(x86::Assembler& a, uint32_t, uint32_t) {
  a.mov(x86::eax, x86::cr3);
  a.mov(x86::cr3, x86::eax);
}
void toggle_pge(x86::Assembler& a, uint32_t, uint32_t) {  // flushes global entries too
  a.mov(x86::eax, x86::cr4);
  a.xor_(x86::eax, cr4::PGE);
  a.mov(x86::cr4, x86::eax);
  a.xor_(x86::eax, cr4::PGE);
  a.mov(x86::cr4, x86::eax);
}
RemapCase remap(const char* name, bool user, bool global, void (*flush)(x86::Assembler&, uint32_t, uint32_t)) {
  return {name, user, global, [flush](x86::Assembler& a, uint32_t pte, uint32_t dir_b) {
            flip(a, pte);
            flush(a, pte, dir_b);
          }};
}

const RemapCase kRemapCases[] = {
    remap("InvlpgKernel", false, false, invlpg),
    remap("InvlpgUser", true, false, invlpg),
    remap("Cr3ReloadKernel", false, false, reload_cr3),
    remap("Cr3ReloadUser", true, false, reload_cr3),
    remap("InvlpgGlobalPage", false, true, invlpg),
    remap("Cr4PgeToggleGlobalPage", true, true, toggle_pge),
    // The PTE changes while another space is current: switching back refills the code
    // TLB with the pages this space ran, and must walk the tables as they are now.
    {"RemappedWhileSwitchedAway", true, false,
     [](x86::Assembler& a, uint32_t pte, uint32_t dir_b) {
       a.mov(x86::eax, dir_b);
       a.mov(x86::cr3, x86::eax);
       flip(a, pte);
       a.mov(x86::eax, kPageDir);
       a.mov(x86::cr3, x86::eax);
     }},
};

INSTANTIATE_TEST_SUITE_P(CodeTlb, CodeTlbRemap, ::testing::ValuesIn(kRemapCases),
                         [](const ::testing::TestParamInfo<RemapCase>& p) { return p.param.name; });

/// A 4 MiB page holds the routine (at +0x3000); each round the service moves the PDE to
/// the other 4 MiB frame and invalidates an address in another 4 KiB page of it, never
/// executed or read: INVLPG drops the whole large page. With `interpreted_first`, the
/// routine starts with `mov edx, cr2` (frame A; CR2 = 1) or `mov edx, cr3` (frame B; CR3 =
/// kPageDir = 0x80000), which the interpreter runs as the engine's slow path; EDI sums what
/// they read, so EDI & 0x7FFFF counts A's and EDI >> 19 B's.
/// BT only: the interpreter alone is no reference here (it fails this program too, see
/// vmm/interp/memory.cpp Core::invalidate_page, which drops one 4 KiB slot).
void large_page_remap(bool interpreted_first) {
  constexpr uint32_t kLinear = 0x800000, kBigA = 0x800000, kBigB = 0xC00000, kRoutine = kLinear + 0x3000;
  constexpr uint32_t kPde = kPageDir + 4 * (kLinear >> 22);
  BtMachine m;
  m.poke32(kPde, kBigA | kLargePage | kUserRw);
  for (const bool b : {false, true}) {
    GuestCode r(kRoutine);
    if (interpreted_first) {
      r.a().mov(x86::edx, b ? x86::cr3 : x86::cr2);
      r.a().add(x86::edi, x86::edx);
    }
    r.a().mov(x86::eax, b ? kRetB : kRetA);
    r.a().ret();
    m.load_at(r, (b ? kBigB : kBigA) + (kRoutine - kLinear));
  }
  m.install_service([&](x86::Assembler& a) {
    a.xor_(x86::dword_ptr(kPde), kBigA ^ kBigB);
    a.invlpg(x86::ptr(kLinear + 0x1F0000));
  });
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel();
  a.mov(x86::ecx, kRounds);
  a.xor_(x86::esi, x86::esi);
  a.xor_(x86::edi, x86::edi);
  a.mov(x86::eax, 1);
  a.mov(x86::cr2, x86::eax);
  a.mov(x86::ebp, kRoutine);
  a.bind(top);
  a.call(x86::ebp);
  a.add(x86::esi, x86::eax);
  a.int_(kServiceVector);
  a.dec(x86::ecx);
  a.jnz(top);
  a.hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);
  m.cpu().cr4 |= cr4::PSE;
  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.record_count(), 0u);
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), kRounds / 2 * kRetA + kRounds / 2 * kRetB) << "low half: calls that ran A's code";
  EXPECT_GT(m.ctx().retired, 0u) << "nothing ran translated";
  if (interpreted_first) {
    static_assert(kPageDir == 1u << 19);
    const uint32_t edi = m.cpu().reg(Gpr::Edi);
    EXPECT_EQ(edi & 0x7FFFF, kRounds / 2) << "interpreted instructions from frame A";
    EXPECT_EQ(edi >> 19, kRounds / 2) << "interpreted instructions from frame B";
  }
}

TEST(CodeTlb, LargePageRemapAndInvlpgElsewhereInThePage) { large_page_remap(false); }
TEST(CodeTlb, LargePageRemapAndInvlpgElsewhereInterpretedInstruction) { large_page_remap(true); }

/// Two linear pages 16 MiB apart share a code TLB slot (and map the same frame): an entry
/// for one must not confirm a block of the other after that one was remapped.
TEST(CodeTlb, SlotAliasDoesNotConfirmAnotherLinearPage) {
  constexpr uint32_t kP = kShared + 0x100, kQ = kShared + (1u << 24) + 0x200;
  static_assert(((kP ^ kQ) >> kPageShift) % kCodeTlbEntries == 0 && ((kP ^ kQ) & 0xFFFF) != 0);
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kP, kFrameA, kPresent | kWritable);
    m.map_page(kPageDir, kQ, kFrameA, kPresent | kWritable);
    load_routine(m, kFrameA + (kP & kPageMask), kRetA, kP);
    load_routine(m, kFrameA + (kQ & kPageMask), 3, kQ);
    load_routine(m, kFrameB + (kP & kPageMask), kRetB, kP);
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::ebp, kP);
    a.mov(x86::edi, kQ);
    a.xor_(x86::esi, x86::esi);
    a.call(x86::ebp);  // P's block enters the table, its page the code TLB
    a.add(x86::esi, x86::eax);
    a.call(x86::ebp);
    a.add(x86::esi, x86::eax);
    a.call(x86::edi);  // Q takes the slot: tag(Q, frame A)
    a.mov(x86::ebx, x86::eax);
    a.mov(x86::dword_ptr(m.pte_addr(kPageDir, kP)), kFrameB | kPresent | kWritable);
    a.invlpg(x86::ptr(kP));  // the slot holds Q: nothing to drop there
    a.call(x86::ebp);        // P's old block is in the table; the slot must not confirm it
    a.mov(x86::edx, x86::eax);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), 2 * kRetA);
  EXPECT_EQ(m.cpu().reg(Gpr::Ebx), 3u);
  EXPECT_EQ(m.cpu().reg(Gpr::Edx), kRetB) << "ran the block of P's old frame";
}

// ---- the table knows a page that is gone ----

struct FaultCase {
  const char* name;
  bool user;
  uint32_t error;   ///< expected #PF error code
  bool fault_in_b;  ///< the fault happens in the second address space (its PTE is fixed)
  /// The service: make kShared (PTE at `pte_a` in kPageDir) unusable for the next call.
  std::function<void(x86::Assembler&, uint32_t pte_a, uint32_t dir_b)> service;
};

std::ostream& operator<<(std::ostream& os, const FaultCase& c) { return os << c.name; }

class CodeTlbFault : public ::testing::TestWithParam<FaultCase> {};

/// `add esi, 1; ret` at kShared is called twice (the table learns it), then kShared goes
/// away: the third call must raise #PF at kShared, not run the block. The handler maps the
/// page again and the retried fetch runs the routine.
TEST_P(CodeTlbFault, IndirectCallToAPageNoLongerMappedRaisesPageFault) {
  const FaultCase& fc = GetParam();
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    const uint32_t dir_b = m.new_identity_directory();
    m.map_page(kPageDir, kShared, kFrameA, kUserRw);
    m.map_page(dir_b, kShared, kFrameA, 0);  // a table, with kShared not present
    GuestCode r(kShared);
    r.a().add(x86::esi, 1);
    r.a().ret();
    m.load_at(r, kFrameA);
    const uint32_t pte_a = m.pte_addr(kPageDir, kShared);
    m.install_service([&](x86::Assembler& a) { fc.service(a, pte_a, dir_b); });
    m.set_fix(fc.fault_in_b ? m.pte_addr(dir_b, kShared) : pte_a, kFrameA | kUserRw);
    m.set_action(14, HandlerAction::FixPte);
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::ebp, kShared);
    a.xor_(x86::esi, x86::esi);
    a.call(x86::ebp);
    a.call(x86::ebp);
    a.int_(kServiceVector);
    a.call(x86::ebp);  // #PF on the fetch at kShared
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, fc.user);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_GE(m.record_count(), 1u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.cr2, kShared);
  EXPECT_EQ(pf.eip, kShared);
  EXPECT_EQ(pf.error, fc.error);
  EXPECT_EQ(pf.esi, 2u) << "the stale block ran before the fault";
  if (fc.user) {
    EXPECT_EQ(pf.outer_esp, kStackTop - 4) << "the call pushed its return address";
  }
  EXPECT_EQ(end_regs(m, fc.user, 1).esi, 3u) << "the retried call";
}

/// Services: a new PTE for kShared + INVLPG; a switch to the space without kShared; and
/// a PTE change made while the space is not current (switching back refills the code TLB
/// with its pages: by walking its tables as they are then, with the entry's privilege).
auto set_pte(uint32_t value) {
  return [value](x86::Assembler& a, uint32_t pte_a, uint32_t) {
    a.mov(x86::dword_ptr(pte_a), value);
    a.invlpg(x86::ptr(kShared));
  };
}
void to_space_b(x86::Assembler& a, uint32_t, uint32_t dir_b) {
  a.mov(x86::eax, dir_b);
  a.mov(x86::cr3, x86::eax);
}
auto set_pte_while_away(uint32_t value) {
  return [value](x86::Assembler& a, uint32_t pte_a, uint32_t dir_b) {
    to_space_b(a, pte_a, dir_b);
    a.mov(x86::dword_ptr(pte_a), value);
    a.mov(x86::eax, kPageDir);
    a.mov(x86::cr3, x86::eax);
  };
}
constexpr uint32_t kSupervisorOnly = kFrameA | kPresent | kWritable;

const FaultCase kFaultCases[] = {
    {"NotPresentKernel", false, 0, false, set_pte(0)},
    {"NotPresentUser", true, kUser, false, set_pte(0)},
    {"SupervisorOnlyUser", true, kUser | kPresent, false, set_pte(kSupervisorOnly)},
    {"NotPresentInOtherSpaceKernel", false, 0, true, to_space_b},
    {"NotPresentInOtherSpaceUser", true, kUser, true, to_space_b},
    {"NotPresentWhileSwitchedAwayKernel", false, 0, false, set_pte_while_away(0)},
    {"SupervisorOnlyWhileSwitchedAwayUser", true, kUser | kPresent, false, set_pte_while_away(kSupervisorOnly)},
};

INSTANTIATE_TEST_SUITE_P(CodeTlb, CodeTlbFault, ::testing::ValuesIn(kFaultCases),
                         [](const ::testing::TestParamInfo<FaultCase>& p) { return p.param.name; });

}  // namespace
}  // namespace vmm86::bttest
