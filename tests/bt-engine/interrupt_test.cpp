// External interrupts under the BT engine: a request that becomes pending while IF=0 waits;
// after `sti` it is taken after exactly one more instruction (the sti shadow), after a
// `popf` that sets IF right away, after `sti; mov ss` one instruction after the mov ss; a request made asynchronously
// while the guest spins in a chained loop is delivered within a bounded time. The guest counts its own instructions in
// ECX; the handler records ECX and the return EIP.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint8_t kVector = 0x20;
constexpr uint32_t kIrqHandler = kHandlersStubEnd;
constexpr uint32_t kSeenEcx = kScratch, kSeenEip = kScratch + 4, kSeenCount = kScratch + 8;

/// Ring-0 handler for kVector: records ECX and the interrupted EIP, then halts.
void install_irq_handler(BtMachine& m) {
  GuestCode h(kIrqHandler);
  auto& a = h.a();
  Label halt = a.newLabel();
  a.mov(x86::dword_ptr(kSeenEcx), x86::ecx);
  a.mov(x86::eax, x86::dword_ptr(x86::esp));
  a.mov(x86::dword_ptr(kSeenEip), x86::eax);
  a.inc(x86::dword_ptr(kSeenCount));
  a.bind(halt);
  a.hlt();
  a.jmp(halt);
  m.load(h);
  m.set_gate(kVector, kIrqHandler);
}

/// How the request is raised and how the guest enables interrupts.
struct EnableCase {
  const char* name;
  bool raise_from_guest;  ///< `out kIrqPort` after a translated cli (else pending from the start, IF=0)
  std::function<void(x86::Assembler&)> enable;
  uint32_t expected_ecx;  ///< instructions retired after `enable` before the interrupt
  bool endless;           ///< the instructions after `enable` form an endless chained loop
  /// No IF=0 loop between the `out` and `enable`: both in one block, the request raised by
  /// a callout that the block goes on after.
  bool enable_right_after_out = false;
};

std::ostream& operator<<(std::ostream& os, const EnableCase& c) { return os << c.name; }

class EnableInterrupts : public ::testing::TestWithParam<EnableCase> {};

TEST_P(EnableInterrupts, TakesThePendingRequestAtTheArchitecturalBoundary) {
  const EnableCase& ec = GetParam();
  uint32_t expected_eip = 0;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    install_irq_handler(m);
    GuestCode c(kCode);
    auto& a = c.a();
    Label spin = a.newLabel(), after = a.newLabel(), counted = a.newLabel();
    if (ec.raise_from_guest) {
      a.cli();
      a.xor_(x86::ecx, x86::ecx);
      a.mov(x86::al, kVector);
      a.out(Imm(kIrqPort), x86::al);
    }
    if (!ec.enable_right_after_out) {
      a.mov(x86::eax, 200);
      a.bind(spin);  // a chained loop with IF=0 and the request pending: it must wait
      a.inc(x86::ecx);
      a.dec(x86::eax);
      a.jnz(spin);
      a.xor_(x86::ecx, x86::ecx);
    }
    ec.enable(a);
    a.bind(after);
    a.inc(x86::ecx);  // the sti shadow
    a.bind(counted);
    for (int i = 0; i < 20; ++i) a.inc(x86::ecx);
    if (ec.endless) a.jmp(counted);
    a.hlt();
    m.load(c);
    expected_eip = ec.expected_ecx == 0 ? c.addr(after) : c.addr(counted);
    m.start(kCode, kStackTop, false, true, ec.raise_from_guest ? flags::IF : 0);
    if (!ec.raise_from_guest) m.raise_irq(kVector);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare(std::chrono::seconds(2)));
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.peek32(kSeenCount), 1u) << "the interrupt was not taken";
  EXPECT_EQ(m.peek32(kSeenEcx), ec.expected_ecx) << "instructions retired after enabling before the interrupt";
  EXPECT_EQ(m.peek32(kSeenEip), expected_eip);
  if (ec.enable_right_after_out) return;
  EXPECT_GE(m.tstats().chains, 1u);
  EXPECT_GE(m.ctx().retired, 200u) << "the IF=0 loop did not run translated";
}

void sti(x86::Assembler& a) { a.sti(); }
void popf_with_if(x86::Assembler& a) {
  a.pushfd();
  a.or_(x86::dword_ptr(x86::esp), flags::IF);
  a.popfd();
}

/// sti, then mov ss: the request waits out both shadows (the sti's covers the mov ss, whose
/// own covers the next instruction; SDM Vol. 3 §6.8.3 guarantees only the first of such a
/// sequence, and both engines honour the second too). No poll or block boundary of the
/// translator may fall between mov ss and the instruction after it.
void sti_then_mov_ss(x86::Assembler& a) {
  a.mov(x86::ax, x86::ss);
  a.sti();
  a.mov(x86::ss, x86::ax);
}
void sti_then_pop_ss(x86::Assembler& a) {
  a.push(x86::ss);
  a.sti();
  a.pop(x86::ss);
}

const EnableCase kEnableCases[] = {
    {"Sti", false, sti, 1, false},
    {"StiBeforeAnEndlessLoop", false, sti, 1, true},
    {"StiAfterTranslatedCli", true, sti, 1, false},
    {"PopfHasNoShadow", false, popf_with_if, 0, false},
    {"PopfBeforeAnEndlessLoop", false, popf_with_if, 0, true},
    {"PopfAfterTranslatedCli", true, popf_with_if, 0, false},
    // A wide-differential find: the out's callout did not refresh the request line that
    // the translated sti reads, and the interrupt came before the shadowed instruction.
    {"StiRightAfterTheOutThatRaisedIt", true, sti, 1, false, true},
    {"PopfRightAfterTheOutThatRaisedIt", true, popf_with_if, 0, false, true},
    {"StiThenMovSs", false, sti_then_mov_ss, 1, false},
    {"StiThenPopSs", false, sti_then_pop_ss, 1, false},
    {"StiThenMovSsBeforeAnEndlessLoop", false, sti_then_mov_ss, 1, true},
};

INSTANTIATE_TEST_SUITE_P(BtEngine, EnableInterrupts, ::testing::ValuesIn(kEnableCases),
                         [](const ::testing::TestParamInfo<EnableCase>& p) { return p.param.name; });

TEST(Interrupts, AsyncRequestInAChainedUserLoopIsDeliveredPromptly) {
  BtMachine m;
  install_irq_handler(m);
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel();
  a.xor_(x86::ecx, x86::ecx);
  a.bind(top);
  a.inc(x86::ecx);
  a.jmp(top);
  m.load(c);
  m.start(kCode, kStackTop, true, true, flags::IF);

  using Clock = std::chrono::steady_clock;
  Clock::time_point requested{};
  std::thread device([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    requested = Clock::now();
    m.raise_irq(kVector);
    request_exit(&m.ctx());  // what a device thread or timer signal does
  });
  const RunEnd end = m.run_bt(std::chrono::seconds(5));
  device.join();
  ASSERT_EQ(end, RunEnd::Halted) << m.detail();
  ASSERT_EQ(m.peek32(kSeenCount), 1u);
  ASSERT_EQ(m.acknowledged, 1u);
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(m.acknowledged_at - requested);
  EXPECT_LT(latency.count(), 200'000) << "µs from the request to the INTA cycle";
  RecordProperty("latency_us", static_cast<int>(latency.count()));
  // The guest was spinning in translated code, chained, when the request came.
  EXPECT_GT(m.peek32(kSeenEcx), 10000u);
  EXPECT_GE(m.ctx().retired, 2u * m.peek32(kSeenEcx));
  EXPECT_LE(m.engine().stats().dispatches, 10u);
  EXPECT_EQ(m.engine().stats().exits_poll, 1u);
  // Taken at the loop block's entry (the poll), with the count of retired instructions
  // exact: xor, 2 per iteration, and the handler's 4 plus its hlt.
  EXPECT_EQ(m.peek32(kSeenEip), c.addr(top));
  EXPECT_EQ(m.retired(), 2u * m.peek32(kSeenEcx) + 6);
}

TEST(Interrupts, BlockedNmiWaitsForIretInTranslatedCode) {
  // SDM Vol. 3 §6.7.1: an NMI latched while a handler runs (blocked) is taken right after
  // the next IRET, whatever IF says; translated code before the iret must not take it.
  constexpr uint32_t kNmiHandler = kIrqHandler;
  uint32_t expected_eip = 0;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode h(kNmiHandler);
    auto& b = h.a();
    b.mov(x86::dword_ptr(kSeenEcx), x86::ecx);
    b.mov(x86::eax, x86::dword_ptr(x86::esp));
    b.mov(x86::dword_ptr(kSeenEip), x86::eax);
    b.inc(x86::dword_ptr(kSeenCount));
    b.iretd();
    m.load(h);
    m.set_gate(2, kNmiHandler);
    GuestCode c(kCode);
    auto& a = c.a();
    Label after = a.newLabel();
    a.xor_(x86::ecx, x86::ecx);
    for (int i = 0; i < 10; ++i) a.inc(x86::ecx);
    a.pushfd();  // an iret frame to the next instruction, as a handler's own would end
    a.push(Imm(kKernelCs));
    a.lea(x86::eax, x86::ptr(after));
    a.push(x86::eax);
    a.iretd();
    a.bind(after);
    for (int i = 0; i < 5; ++i) a.inc(x86::ecx);
    a.hlt();
    m.load(c);
    expected_eip = c.addr(after);
    m.start(kCode, kStackTop, false);
    m.cpu().pending.nmi = true;
    m.cpu().pending.nmi_blocked = true;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare(std::chrono::seconds(2)));
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.peek32(kSeenCount), 1u);
  EXPECT_EQ(m.peek32(kSeenEcx), 10u) << "taken after the iret, not before";
  EXPECT_EQ(m.peek32(kSeenEip), expected_eip);
  EXPECT_EQ(m.cpu().reg(Gpr::Ecx), 15u);
  EXPECT_FALSE(m.cpu().pending.nmi_blocked) << "the handler's own iret unblocks";
}

TEST(Interrupts, NotTakenWhileIfIsClear) {
  BtMachine m;
  install_irq_handler(m);
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel();
  a.mov(x86::ecx, 100000);
  a.bind(top);
  a.dec(x86::ecx);
  a.jnz(top);
  a.hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);
  m.raise_irq(kVector);
  std::thread poker([&] {
    for (int i = 0; i < 5; ++i) {
      request_exit(&m.ctx());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const RunEnd end = m.run_bt();
  poker.join();
  ASSERT_EQ(end, RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.peek32(kSeenCount), 0u);
  EXPECT_EQ(m.acknowledged, 0u);
  EXPECT_EQ(m.cpu().reg(Gpr::Ecx), 0u);
}

}  // namespace
}  // namespace vmm86::bttest
