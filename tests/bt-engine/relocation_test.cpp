// Relocated blocks: code that runs at a second linear address of the same guest-physical
// page (a library ASLR placed elsewhere in a new process) is copied from its first
// translation with its EIP-dependent fields moved. Every EIP the code can see — return
// addresses, PC thunks, branch targets, callout sites — must be the new address's: the
// routine below adds each one it reaches, so a field left at the old address changes the
// sum (both addresses map the same code, so it would not crash). The interpreter is the
// reference (TwoRuns).
#include <gtest/gtest.h>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kRoutine = kCode + 0x4000;  // its page, also mapped at kAlias
constexpr uint32_t kAlias = 0x700000;

/// esi = a sum over the EIPs the routine sees: PC thunks, return addresses read by a
/// callee, an indirect jump's target; with a callout (mov from CR0) and a loop between.
void build_routine(BtMachine& m) {
  GuestCode g(kRoutine);
  auto& a = g.a();
  Label top = a.newLabel(), thunk = a.newLabel(), callee = a.newLabel(), after_jump = a.newLabel();
  Label jump_site = a.newLabel();
  a.xor_(x86::esi, x86::esi);
  a.mov(x86::ecx, 3);
  a.bind(top);
  a.call(thunk);  // inlined as a PC thunk: eax = the address after the call
  a.add(x86::esi, x86::eax);
  a.mov(x86::ebx, x86::cr0);  // a callout
  a.call(callee);             // a real call: the callee reads its return address
  a.dec(x86::ecx);
  a.jnz(top);
  a.call(thunk);  // eax = jump_site
  a.bind(jump_site);
  a.add(x86::eax, 7);  // 83 C0 07: eax = after_jump, 7 bytes on
  a.jmp(x86::eax);     // FF E0: an indirect jump to this copy's after_jump
  a.int3();
  a.int3();
  a.bind(after_jump);
  a.add(x86::esi, x86::eax);
  a.ret();
  a.bind(thunk);
  a.mov(x86::eax, x86::dword_ptr(x86::esp));
  a.ret();
  a.bind(callee);
  a.add(x86::esi, x86::dword_ptr(x86::esp));
  a.ret();
  m.load(g);
  m.map_page(kPageDir, kAlias, kRoutine, kPresent);
}

void run_at_both_addresses(bool check_relocations) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    build_routine(m);
    GuestCode c(kCode);
    auto& a = c.a();
    a.call(Imm(kRoutine));
    a.mov(x86::edi, x86::esi);
    a.call(Imm(kAlias));
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.engine().translator().check_relocations(check_relocations);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  // Seven EIPs of the routine add up (3 thunks, 3 return addresses, the jump target; the
  // last thunk's value is not added): 7 pages' worth apart.
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Esi) - runs.bt.cpu().reg(Gpr::Edi), 7u * (kAlias - kRoutine));
  const TranslatorStats& stats = runs.bt.engine().translator().stats();
  if (check_relocations) {
    EXPECT_EQ(stats.blocks_relocated, 0u);  // compared, not kept
  } else {
    EXPECT_GE(stats.blocks_relocated, 3u);
  }
}

TEST(Relocation, TheCopyAtAnotherAddressSeesItsOwnEips) { run_at_both_addresses(false); }

// The self-check translates every block that could be copied afresh and compares: it
// aborts on a field the copy would have left at the old address.
TEST(Relocation, CopiesEqualFreshTranslations) { run_at_both_addresses(true); }

}  // namespace
}  // namespace vmm86::bttest
