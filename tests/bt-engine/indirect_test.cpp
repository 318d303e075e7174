// The inline indirect-branch lookup: returns, indirect calls and cross-page direct calls
// mostly hit the salted table; a new address space (CR3) must never hit an entry made in
// another one, because the same linear EIP names other code there.
#include <gtest/gtest.h>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kFarPage = kCode + 0x1000;
constexpr uint32_t kShared = 0x600000;  ///< linear code page mapped differently per address space
constexpr uint32_t kPhysA = 0x700000, kPhysB = 0x701000;

/// `add reg, 1; ret` assembled for linear kShared.
void load_shared_routine(BtMachine& m, const x86::Gp& reg, uint32_t phys) {
  GuestCode c(kShared);
  c.a().add(reg, 1);
  c.a().ret();
  m.load_at(c, phys);
}

TEST(IndirectLookup, CallRetLoopHitsTheInlineTable) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode far(kFarPage);
    Label far_f = far.a().newLabel(), far_g = far.a().newLabel();
    far.a().bind(far_f);
    far.a().add(x86::eax, 2);
    far.a().ret();
    far.a().bind(far_g);
    far.a().add(x86::eax, 4);
    far.a().ret();
    m.load(far);

    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel(), near_f = a.newLabel();
    a.mov(x86::ecx, 20000);
    a.xor_(x86::eax, x86::eax);
    a.mov(x86::esi, far.addr(far_f));
    a.bind(top);
    a.call(near_f);                // same-page direct call, return through the table
    a.call(x86::esi);              // indirect call to another page
    a.call(Imm(far.addr(far_g)));  // cross-page direct call (not chained: the table)
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    a.bind(near_f);
    a.add(x86::eax, 1);
    a.ret();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Eax), 7u * 20000u);
  EXPECT_EQ(m.cpu().reg(Gpr::Esp), kStackTop);
  // 120,000 indirect transfers; only the first visit of each target misses.
  EXPECT_LE(m.tstats().indirect_misses, 16u);
  EXPECT_LE(m.engine().stats().dispatches, 32u);
}

/// Two address spaces map kShared to different physical code; ring-0 code switches CR3
/// (in the interpreter) and calls kShared indirectly and directly in each.
TEST(IndirectLookup, Cr3SwitchDoesNotHitAStaleEntry) {
  constexpr uint32_t kRounds = 500;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    const uint32_t dir_a = kPageDir;
    m.map_page(dir_a, kShared, kPhysA, kPresent | kWritable);
    const uint32_t dir_b = m.new_directory();
    m.identity_map(dir_b, kIdentityBytes, kPresent | kWritable);
    m.map_page(dir_b, kShared, kPhysB, kPresent | kWritable);
    load_shared_routine(m, x86::esi, kPhysA);
    load_shared_routine(m, x86::edi, kPhysB);

    GuestCode c(kCode);
    auto& a = c.a();
    Label top = a.newLabel();
    a.mov(x86::ecx, kRounds);
    a.mov(x86::ebx, dir_a);
    a.mov(x86::edx, dir_b);
    a.mov(x86::ebp, kShared);
    a.xor_(x86::esi, x86::esi);
    a.xor_(x86::edi, x86::edi);
    a.bind(top);
    a.mov(x86::cr3, x86::edx);
    a.call(x86::ebp);
    a.call(Imm(kShared));
    a.mov(x86::cr3, x86::ebx);
    a.call(x86::ebp);
    a.call(Imm(kShared));
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), 2 * kRounds) << "calls in address space A";
  EXPECT_EQ(m.cpu().reg(Gpr::Edi), 2 * kRounds) << "calls in address space B";
  EXPECT_EQ(m.cpu().cr3, kPageDir);
  EXPECT_GE(m.tstats().blocks_translated, 2u);
}

/// The same address space, but the guest remaps the code page (PTE write + INVLPG): an
/// indirect call to it must run the new code, as the dispatcher's own lookup would.
TEST(IndirectLookup, RemappedCodeAfterInvlpgRunsTheNewCode) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kShared, kPhysA, kPresent | kWritable);
    load_shared_routine(m, x86::esi, kPhysA);
    load_shared_routine(m, x86::edi, kPhysB);

    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::ebp, kShared);
    a.xor_(x86::esi, x86::esi);
    a.xor_(x86::edi, x86::edi);
    a.call(x86::ebp);  // A: esi = 1
    a.call(x86::ebp);  // A again: the inline table now knows kShared
    a.mov(x86::dword_ptr(m.pte_addr(kPageDir, kShared)), kPhysB | kPresent | kWritable);
    a.invlpg(x86::ptr(x86::ebp));
    a.call(x86::ebp);  // B: edi = 1
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), 2u);
  EXPECT_EQ(m.cpu().reg(Gpr::Edi), 1u) << "the call after INVLPG ran the old mapping's code";
}

/// A routine translated with flat DS is reached again, by an indirect jump or a cross-page
/// direct jump from translated code, while DS has a non-zero base: the inline table must
/// not send it to the flat translation (which ignores the DS base).
void jump_back_with_based_ds(bool indirect) {
  constexpr uint32_t kRoutine = kFarPage, kDsBase = kData;
  constexpr uint16_t kBasedDs = 7 << 3;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.set_descriptor(7, kDsBase, 0xFFFFF, 0x93, 0xC);
    m.poke32(kData + 0x800, 0x1111);            // [0x800 + kData]: through flat DS
    m.poke32(kDsBase + kData + 0x800, 0x2222);  // the same offset through the based DS
    GuestCode r(kRoutine);
    r.a().mov(x86::ecx, x86::dword_ptr(kData + 0x800));
    r.a().jmp(x86::edx);
    m.load(r);

    GuestCode c(kCode);
    auto& a = c.a();
    auto go = [&](const Label& back) {
      a.lea(x86::edx, x86::ptr(back));  // the absolute address of `back`
      if (indirect) {
        a.jmp(x86::ebx);
      } else {
        a.jmp(Imm(kRoutine));
      }
      a.bind(back);
    };
    Label back1 = a.newLabel(), back2 = a.newLabel(), back3 = a.newLabel();
    a.mov(x86::ebx, kRoutine);
    go(back1);  // flat: the routine's flat translation enters the table
    a.mov(x86::dword_ptr(kScratch), x86::ecx);
    go(back2);  // flat again: hit
    a.mov(x86::dword_ptr(kScratch + 4), x86::ecx);
    a.mov(x86::ax, kBasedDs);
    a.mov(x86::ds, x86::ax);
    go(back3);  // DS based: the flat translation must not run
    a.mov(x86::ax, kKernelDs);
    a.mov(x86::ds, x86::ax);
    a.mov(x86::dword_ptr(kScratch + 8), x86::ecx);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kScratch), 0x1111u);
  EXPECT_EQ(m.peek32(kScratch + 4), 0x1111u);
  EXPECT_EQ(m.peek32(kScratch + 8), 0x2222u) << "the load ignored the DS base";
}

// The inline table's key includes the translation mode (flat vs based DS).
TEST(IndirectLookup, IndirectJumpDoesNotReuseAFlatDataTranslation) { jump_back_with_based_ds(true); }

// Cross-page direct exits use the same table.
TEST(IndirectLookup, CrossPageJumpDoesNotReuseAFlatDataTranslation) { jump_back_with_based_ds(false); }

/// A user-accessible routine (`cli; ret`) runs at CPL 0 (entering the table) and is then
/// called from CPL 3, where cli with IOPL 0 must raise #GP at the routine.
TEST(IndirectLookup, TableEntriesDoNotCrossPrivilegeLevels) {
  constexpr uint32_t kRoutine = kFarPage, kUserCode = kCode + 0x2000;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode r(kRoutine);
    r.a().cli();
    r.a().inc(x86::edi);
    r.a().ret();
    m.load(r);

    GuestCode u(kUserCode);
    u.a().call(x86::esi);  // #GP(0) at the routine's cli
    u.a().hlt();
    m.load(u);

    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::esi, kRoutine);
    a.xor_(x86::edi, x86::edi);
    a.call(x86::esi);
    a.call(x86::esi);
    a.mov(x86::eax, kUserDs);  // iret to ring 3 would null ring-0 data segments
    a.mov(x86::ds, x86::ax);
    a.mov(x86::es, x86::ax);
    a.push(kUserDs);
    a.push(kStackTop - 0x1000);
    a.push(flags::Reserved1);
    a.push(kUserCs);
    a.push(kUserCode);
    a.iretd();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), 1u);
  const ExceptionRecord gp = m.record(0);
  EXPECT_EQ(gp.vector, 13u);
  EXPECT_EQ(gp.error, 0u);
  EXPECT_EQ(gp.eip, kRoutine);
  EXPECT_EQ(gp.cs, kUserCs);
  EXPECT_EQ(gp.edi, 2u);
}

}  // namespace
}  // namespace vmm86::bttest
