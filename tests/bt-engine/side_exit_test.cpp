// Side exits (translator/translator.cpp translate, rewrite_branch.cpp): a jcc whose
// fall-through is on the same page does not end its block; the taken path is a chainable
// Direct exit and the block goes on with a new count segment (one lea each). Faults,
// callouts and mid-segment exits in the later segments must take off exactly what their
// segment counted beyond what retired (PcMapEntry::counted, CalloutSite::insns_after).
// Every program also runs on the interpreter alone (TwoRuns): registers, exception records
// and the retired-instruction count must agree, at CPL 0 and CPL 3. A block observer
// checks that the blocks really went on past their jcc's, so that no case passes merely
// because side exits were turned off.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kTakenCounts = kData + 0x40;  ///< dword per condition: how often it was taken
constexpr uint32_t kStop = kData + 0x80;         ///< the interrupt handler sets it (FixPte)
constexpr uint32_t kIter = kData + 0x84;         ///< iterations so far, for the device thread
constexpr uint32_t kArray = kData + 0x1000;      ///< kElems pseudo-random dwords
constexpr uint32_t kElems = 256;
constexpr uint32_t kOkWord = kData + 0x800;  ///< a present page: what the early rounds access
constexpr uint32_t kOkValue = 0x01010101;    ///< at kOkWord + 12
constexpr uint32_t kHole = kData + 0x10000;  ///< made not present; the handler maps it
constexpr uint32_t kHoleValue = 0x5A5A5A5A;  ///< at kHole + 12
constexpr uint8_t kIrqVector = 0x20;

std::string cpl_name(bool user) { return user ? "User" : "Kernel"; }

// ---- what the engine translated ----

/// One translated block as the observer saw it (the Block may be dropped later).
struct SeenBlock {
  uint32_t eip = 0;
  std::vector<uint32_t> insns;           ///< guest EIPs, in block order
  std::vector<uint32_t> direct_targets;  ///< targets of its Direct exits
  uint32_t guest_size = 0;
  bool second_page = false;
};
using BlockLog = std::shared_ptr<std::vector<SeenBlock>>;

BlockLog log_blocks(BtMachine& m) {
  auto log = std::make_shared<std::vector<SeenBlock>>();
  m.engine().set_block_observer([log](const Block& b, std::span<const uint8_t>) {
    SeenBlock s{b.key.eip, {}, {}, b.guest_size, b.has_second_page};
    for (const PcMapEntry& e : b.pc_map) s.insns.push_back(e.guest_eip);
    for (const auto& x : b.exits) {
      if (x->kind == ExitKind::Direct) s.direct_targets.push_back(x->target_eip);
    }
    log->push_back(std::move(s));
  });
  return log;
}

bool holds(const std::vector<uint32_t>& v, uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

/// A block starting at `eip` holds all of `insns` (the later ones behind side exits).
bool some_block_holds(const BlockLog& log, uint32_t eip, std::initializer_list<uint32_t> insns) {
  return std::any_of(log->begin(), log->end(), [&](const SeenBlock& b) {
    return b.eip == eip && std::all_of(insns.begin(), insns.end(), [&](uint32_t i) { return holds(b.insns, i); });
  });
}

// ---- running a program on both machines ----

/// Runs `setup`, then assembles `program` at kCode on both machines, starts it at CPL 3 or
/// 0 with `eflags`, and logs the BT machine's blocks. The labels the program binds are the
/// reference's, the last assembled; both machines have the same code.
struct Program {
  TwoRuns runs;
  std::unique_ptr<GuestCode> code;
  BlockLog blocks;

  void load(bool user, const Emit& program, const std::function<void(BtMachine&)>& setup = {},
            uint32_t eflags = flags::Reserved1) {
    runs.setup([&](BtMachine& m) {
      if (setup) setup(m);
      code = std::make_unique<GuestCode>(kCode);
      program(code->a());
      m.load(*code);
      m.start(kCode, kStackTop, user, true, eflags);
    });
    blocks = log_blocks(runs.bt);
  }
  /// Runs both machines; the program must end with hlt (at CPL 3: a #GP, recorded).
  void run_and_compare() { ASSERT_NO_FATAL_FAILURE(runs.run_and_compare()); }
  [[nodiscard]] uint32_t addr(const Label& l) const { return code->addr(l); }
  BtMachine& bt() { return runs.bt; }
  BtMachine& ref() { return runs.ref; }
  /// The dword at `a` on both machines.
  void expect32(uint32_t a, uint32_t want, const char* what) {
    EXPECT_EQ(runs.bt.peek32(a), want) << what;
    EXPECT_EQ(runs.ref.peek32(a), want) << what << " (reference)";
  }
};

/// CPL 3 ends at the #GP of its hlt, which the handler records last.
void expect_ended_at_hlt(BtMachine& m, bool user, uint32_t records_before) {
  ASSERT_EQ(m.record_count(), records_before + (user ? 1u : 0u));
  if (user) {
    EXPECT_EQ(m.record(records_before).vector, 13u) << "the #GP of hlt at CPL 3";
  }
}

/// The harness's recording stub for `vector` records and irets; `*flag = value` on the way.
void record_and_return(BtMachine& m, uint8_t vector, uint32_t flag, uint32_t value) {
  m.set_fix(flag, value);
  m.set_action(vector, HandlerAction::FixPte);
}

/// kIrqVector's stub records the interrupt and irets (its FixPte store goes to kScratch).
void install_irq_stub(BtMachine& m) { record_and_return(m, kIrqVector, kScratch, 0); }

// ---- ten data-dependent conditions on EAX ----

constexpr unsigned kConditions = 10;

/// Whether condition k (see ConditionLoop::emit_round) is taken for element x. Every test
/// sets only flags the SDM defines, or the logic-op AF that hosts and the interpreter agree
/// on (docs/interpreter-flags.md): an interrupt may land right after any of them.
bool taken(unsigned k, uint32_t x) {
  switch (k) {
    case 0: return x >= 0xD0000000u;                                // add 0x30000000; jc
    case 1: return (x & 0x30) != 0;                                 // test; jnz
    case 2: return x >= 0x80000000u;                                // cmp; jae
    case 3: return (x & 0x80) != 0;                                 // test dl, dl; js
    case 4: return __builtin_popcount((x ^ 0x55) & 0xFF) % 2 == 0;  // xor; jp
    case 5: return static_cast<int32_t>(x) < 0x40000000;            // cmp; jl
    case 6: return (x & 0xFF) < 0x40;                               // cmp dl; jb
    case 7: return (x & 0xFFFF) > 0x9000;                           // cmp dx; ja
    case 8: return ((x >> 31) & 1) != ((x >> 30) & 1);              // add; jo
    default: return (x & 0x300) == 0;                               // and; jz
  }
}

uint32_t element(uint32_t i) {
  uint32_t x = 0x9E3779B9u * (i + 1);
  x ^= x >> 15;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  return x;
}

void load_array(BtMachine& m) {
  for (uint32_t i = 0; i < kElems; ++i) m.poke32(kArray + 4 * i, element(i));
}

/// The loop of tests 1 and 4, which end its rounds each their own way: EBX counts the
/// rounds from 0, each round tests the ten conditions on EAX = kArray[EBX mod kElems], EDI
/// sums their fall-throughs.
struct ConditionLoop {
  Label top;
  std::array<Label, kConditions> taken_path, back, jcc;

  /// The loop's start and a round up to its `inc ebx`.
  void emit_round(x86::Assembler& a);
  /// The taken paths, after the loop: count at kTakenCounts[k], then back into the round.
  void emit_taken_paths(x86::Assembler& a) const;
};

/// Per condition k on EAX: `mov edx, eax; <test>; j<cc> taken_path[k]; add edi, k + 1`;
/// taken_path[k] comes back to back[k], right after the add.
void ConditionLoop::emit_round(x86::Assembler& a) {
  top = a.newLabel();
  a.xor_(x86::ebx, x86::ebx);
  a.xor_(x86::edi, x86::edi);
  a.bind(top);
  a.mov(x86::eax, x86::ebx);
  a.and_(x86::eax, kElems - 1);
  a.mov(x86::eax, x86::dword_ptr(kArray, x86::eax, 2));
  for (unsigned k = 0; k < kConditions; ++k) {
    taken_path[k] = a.newLabel(), back[k] = a.newLabel(), jcc[k] = a.newLabel();
    a.mov(x86::edx, x86::eax);
    switch (k) {
      case 0: a.add(x86::edx, 0x30000000); break;
      case 1: a.test(x86::edx, 0x30); break;
      case 2: a.cmp(x86::edx, 0x80000000u); break;
      case 3: a.test(x86::dl, x86::dl); break;
      case 4: a.xor_(x86::edx, 0x55); break;
      case 5: a.cmp(x86::edx, 0x40000000); break;
      case 6: a.cmp(x86::dl, 0x40); break;
      case 7: a.cmp(x86::dx, 0x9000); break;
      case 8: a.add(x86::edx, x86::edx); break;
      default: a.and_(x86::edx, 0x300); break;
    }
    a.bind(jcc[k]);
    switch (k) {
      case 0: a.jc(taken_path[k]); break;
      case 1: a.jnz(taken_path[k]); break;
      case 2: a.jae(taken_path[k]); break;
      case 3: a.js(taken_path[k]); break;
      case 4: a.jp(taken_path[k]); break;
      case 5: a.jl(taken_path[k]); break;
      case 6: a.jb(taken_path[k]); break;
      case 7: a.ja(taken_path[k]); break;
      case 8: a.jo(taken_path[k]); break;
      default: a.jz(taken_path[k]); break;
    }
    a.add(x86::edi, k + 1);
    a.bind(back[k]);
  }
  a.inc(x86::ebx);
}

void ConditionLoop::emit_taken_paths(x86::Assembler& a) const {
  for (unsigned k = 0; k < kConditions; ++k) {
    a.bind(taken_path[k]);
    a.inc(x86::dword_ptr(kTakenCounts + 4 * k));
    a.jmp(back[k]);
  }
}

// ---- 1. a long block with ten jcc's, each taken sometimes ----

class SideExitLoop : public ::testing::TestWithParam<bool> {};

/// One block per loop round: ten data-dependent jcc's whose taken paths count themselves
/// and come back into the body (blocks of their own), whose fall-throughs add to EDI.
TEST_P(SideExitLoop, TenConditionsInOneBlockCountExactly) {
  const bool user = GetParam();
  constexpr uint32_t kVisits = 4 * kElems;
  Program p;
  ConditionLoop l;
  Label tail_jcc;
  p.load(
      user,
      [&](x86::Assembler& a) {
        tail_jcc = a.newLabel();
        l.emit_round(a);
        a.cmp(x86::ebx, kVisits);
        a.bind(tail_jcc);
        a.jb(l.top);
        a.hlt();
        l.emit_taken_paths(a);
      },
      load_array);
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(p.bt(), user, 0));

  uint32_t want_edi = 0;
  std::array<uint32_t, kConditions> want_taken{};
  for (uint32_t v = 0; v < kVisits; ++v) {
    for (unsigned k = 0; k < kConditions; ++k) {
      if (taken(k, element(v % kElems))) {
        ++want_taken[k];
      } else {
        want_edi += k + 1;
      }
    }
  }
  for (unsigned k = 0; k < kConditions; ++k) {
    p.expect32(kTakenCounts + 4 * k, want_taken[k], ("taken count of condition " + std::to_string(k)).c_str());
    EXPECT_GT(want_taken[k], 0u) << "condition " << k << " is never taken";
    EXPECT_LT(want_taken[k], kVisits) << "condition " << k << " is always taken";
  }
  const uint32_t edi = user ? p.bt().record(0).edi : p.bt().cpu().reg(Gpr::Edi);
  EXPECT_EQ(edi, want_edi) << "the fall-through paths";

  // The loop's block goes on past all ten jcc's to its tail, and each is a side exit.
  std::initializer_list<uint32_t> jccs = {p.addr(l.jcc[0]), p.addr(l.jcc[1]), p.addr(l.jcc[2]), p.addr(l.jcc[3]),
                                          p.addr(l.jcc[4]), p.addr(l.jcc[5]), p.addr(l.jcc[6]), p.addr(l.jcc[7]),
                                          p.addr(l.jcc[8]), p.addr(l.jcc[9]), p.addr(tail_jcc)};
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(l.top), jccs)) << "the loop body is not one block";
  for (const SeenBlock& b : *p.blocks) {
    if (b.eip != p.addr(l.top)) continue;
    for (unsigned k = 0; k < kConditions; ++k) EXPECT_TRUE(holds(b.direct_targets, p.addr(l.taken_path[k]))) << k;
    EXPECT_TRUE(holds(b.direct_targets, p.addr(l.top))) << "the loop's own jcc";
  }
  EXPECT_GE(p.bt().tstats().chains, kConditions) << "the side exits were not chained";
  EXPECT_LE(p.bt().engine().stats().dispatches, 64u) << "the side exits kept coming back to the dispatcher";
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitLoop, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return cpl_name(i.param); });

// ---- one block of three count segments per round (tests 2, 3, 4 and 7) ----

/// What a segmented loop runs. `counter` counts the rounds down to 1 (the program sets it
/// before; its bits 31 and 30 stay clear); two jcc's on those bits split each round into
/// count segments and are never taken (they would set `bad` to 0xBAD and halt).
struct SegmentedLoop {
  x86::Gp counter, bad;
  std::function<void()> segment1, segment2, segment3;  ///< emit into the loop's assembler
};

/// Labels of a segmented loop: the round's block at `top`, the jcc's ending segments 1 and 2.
struct Segments {
  Label top, jcc1, jcc2;
};

/// `jmp top` (so that the round is a block of its own); `top: segment1; test; jcc1;
/// segment2; test; jcc2; segment3; dec counter; jnz top`; hlt; then the never-taken path.
Segments emit_segmented_loop(x86::Assembler& a, const SegmentedLoop& loop) {
  const Segments s{a.newLabel(), a.newLabel(), a.newLabel()};
  const Label never = a.newLabel();
  a.jmp(s.top);
  a.bind(s.top);
  loop.segment1();
  a.test(loop.counter, 0x80000000u);
  a.bind(s.jcc1);
  a.jnz(never);
  loop.segment2();
  a.test(loop.counter, 0x40000000);
  a.bind(s.jcc2);
  a.jnz(never);
  loop.segment3();
  a.dec(loop.counter);
  a.jnz(s.top);
  a.hlt();
  a.bind(never);
  a.mov(loop.bad, 0xBAD);
  a.hlt();
  return s;
}

/// The segmented loop of tests 3, 4 and 7: EBP counts `rounds`, ESI and EDI start at 0,
/// segment 1 is `inc esi`, and a taken jcc would set ESI to 0xBAD.
Segments emit_ebp_loop(x86::Assembler& a, uint32_t rounds, std::function<void()> segment2,
                       std::function<void()> segment3) {
  a.mov(x86::ebp, rounds);
  a.xor_(x86::esi, x86::esi);
  a.xor_(x86::edi, x86::edi);
  return emit_segmented_loop(a, {.counter = x86::ebp,
                                 .bad = x86::esi,
                                 .segment1 = [&a] { a.inc(x86::esi); },
                                 .segment2 = std::move(segment2),
                                 .segment3 = std::move(segment3)});
}

// ---- 2. a #PF in the second and third count segment ----

struct FaultCase {
  unsigned segment;  ///< 2 or 3: after one or two not-taken jcc's
  bool store;        ///< mov [edi+8], ecx; else add eax, [edi+12]
  bool user;
};

std::ostream& operator<<(std::ostream& os, const FaultCase& c) {
  return os << "segment " << c.segment << (c.store ? " store" : " load") << (c.user ? " CPL 3" : " CPL 0");
}

class SideExitPageFault : public ::testing::TestWithParam<FaultCase> {};

/// kRounds rounds of one block; the last round's access goes to kHole (not present): #PF at
/// exactly that instruction, with what retired before it in the block and nothing after.
TEST_P(SideExitPageFault, IsPreciseInLaterSegments) {
  const FaultCase& fc = GetParam();
  constexpr uint32_t kRounds = 6, kEax = 0x100, kEbx = 0x200, kEdx = 0x400;
  Program p;
  Segments s;
  Label access;
  p.load(
      fc.user,
      [&](x86::Assembler& a) {
        access = a.newLabel();
        auto emit_access = [&] {
          a.bind(access);
          if (fc.store) {
            a.mov(x86::dword_ptr(x86::edi, 8), x86::ecx);
          } else {
            a.add(x86::eax, x86::dword_ptr(x86::edi, 12));
          }
        };
        a.mov(x86::eax, kEax);
        a.mov(x86::ebx, kEbx);
        a.mov(x86::ecx, kRounds);
        a.mov(x86::edx, kEdx);
        a.mov(x86::esi, kOkWord);
        a.mov(x86::ebp, kHole);
        s = emit_segmented_loop(a, {.counter = x86::ecx,
                                    .bad = x86::eax,
                                    .segment1 =
                                        [&] {
                                          a.mov(x86::edi, x86::esi);
                                          a.cmp(x86::ecx, 1);
                                          a.cmove(x86::edi, x86::ebp);
                                          a.inc(x86::eax);
                                        },
                                    .segment2 =
                                        [&] {
                                          a.add(x86::ebx, 5);
                                          if (fc.segment == 2) emit_access();
                                          a.add(x86::edx, 7);
                                        },
                                    .segment3 =
                                        [&] {
                                          a.add(x86::eax, 3);
                                          if (fc.segment == 3) emit_access();
                                          a.inc(x86::edx);
                                        }});
      },
      [](BtMachine& m) {
        m.poke32(kOkWord + 12, kOkValue);
        m.poke32(kHole + 12, kHoleValue);
        m.make_hole(kHole);
      });
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, fc.user, 1));
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.eip, p.addr(access)) << "faulting EIP";
  EXPECT_EQ(pf.cr2, kHole + (fc.store ? 8u : 12u));
  EXPECT_EQ(pf.error, (fc.user ? kUser : 0u) | (fc.store ? kWritable : 0u));
  EXPECT_EQ(pf.ecx, 1u) << "the last round";
  EXPECT_EQ(pf.edi, kHole);
  // Segment 1 and 2 of the last round retired up to the access; nothing after it did.
  EXPECT_EQ(pf.ebx, kEbx + 5 * kRounds);
  EXPECT_EQ(pf.edx, kEdx + 8 * (kRounds - 1) + (fc.segment == 3 ? 7u : 0u));
  const uint32_t loads = fc.store ? 0 : (kRounds - 1) * kOkValue;
  EXPECT_EQ(pf.eax, kEax + 4 * (kRounds - 1) + 1 + (fc.segment == 3 ? 3u : 0u) + loads);
  EXPECT_GE(m.engine().fault_stats().page_faults, 1u) << "the #PF did not come from translated code";

  // The retried access completed, and the rest of the block ran.
  const uint32_t eax = fc.user ? m.record(1).eax : m.cpu().reg(Gpr::Eax);
  const uint32_t edx = fc.user ? m.record(1).edx : m.cpu().reg(Gpr::Edx);
  if (fc.store) {
    EXPECT_EQ(m.peek32(kHole + 8), 1u);
    EXPECT_EQ(eax, kEax + 4 * kRounds);
  } else {
    EXPECT_EQ(eax, kEax + 4 * kRounds + loads + kHoleValue);
  }
  EXPECT_EQ(edx, kEdx + 8 * kRounds);

  // The access sits behind one (two) side exits in the block that faulted.
  if (fc.segment == 2) {
    EXPECT_TRUE(some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(access)}));
  } else {
    EXPECT_TRUE(some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(s.jcc2), p.addr(access)}));
  }
}

std::vector<FaultCase> fault_cases() {
  std::vector<FaultCase> v;
  for (unsigned seg : {2u, 3u})
    for (bool store : {true, false})
      for (bool user : {false, true}) v.push_back({seg, store, user});
  return v;
}
INSTANTIATE_TEST_SUITE_P(SideExits, SideExitPageFault, ::testing::ValuesIn(fault_cases()),
                         [](const ::testing::TestParamInfo<FaultCase>& i) {
                           return "Segment" + std::to_string(i.param.segment) + (i.param.store ? "Store" : "Load") +
                                  cpl_name(i.param.user);
                         });

// ---- 3. callouts in later segments: going on, leaving, faulting ----

constexpr uint32_t kCalloutRounds = 40;

enum class CalloutEnd : uint8_t {
  GoesOn,  ///< the block goes on after the callout
  Leaves,  ///< the callout makes the block leave (Callout exit), every round
  Faults,  ///< on the last round the callout raises #GP (the handler halts)
};

struct CalloutCase {
  const char* name;
  bool user;
  CalloutEnd end;
  /// The callout (and what prepares it; it may clobber EAX-EDX). `callout` is bound at the
  /// instruction that runs in the interpreter.
  std::function<void(x86::Assembler&, const Label& callout)> emit;
  std::function<void(BtMachine&)> setup;
  uint32_t gp_error = 0;  ///< Faults: the #GP's error code
  uint32_t gp_round = 1;  ///< Faults: EBP in the round that faults (it counts down to 1)
};

std::ostream& operator<<(std::ostream& os, const CalloutCase& c) { return os << c.name; }

class SideExitCallout : public ::testing::TestWithParam<std::tuple<CalloutCase, unsigned>> {};

/// kRounds rounds of one block with the callout in its segment 2 or 3 (second parameter).
/// The counter is EBP; ESI and EDI accumulate what the rounds did around the callout.
TEST_P(SideExitCallout, CountsExactlyInLaterSegments) {
  // Named variables, not a structured binding: the lambdas below capture them (clang 14,
  // which clang-tidy runs on, cannot capture a binding).
  const CalloutCase& cc = std::get<0>(GetParam());
  const unsigned segment = std::get<1>(GetParam());
  constexpr uint32_t kRounds = kCalloutRounds;
  Program p;
  Segments s;
  Label callout;
  p.load(
      cc.user,
      [&](x86::Assembler& a) {
        callout = a.newLabel();
        s = emit_ebp_loop(
            a, kRounds,
            [&] {
              a.add(x86::edi, 3);
              if (segment == 2) cc.emit(a, callout);
              a.add(x86::esi, x86::ebp);
            },
            [&] {
              a.add(x86::edi, 5);
              if (segment == 3) cc.emit(a, callout);
              a.inc(x86::esi);
            });
      },
      cc.setup);
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  EXPECT_GT(m.engine().stats().callouts, 0u) << "no callout ran";
  if (segment == 2) {
    EXPECT_TRUE(some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(callout)}));
  } else {
    EXPECT_TRUE(some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(s.jcc2), p.addr(callout)}));
  }
  if (cc.end == CalloutEnd::Faults) {
    ASSERT_EQ(m.record_count(), 1u);
    const ExceptionRecord gp = m.record(0);
    EXPECT_EQ(gp.vector, 13u);
    EXPECT_EQ(gp.error, cc.gp_error);
    EXPECT_EQ(gp.eip, p.addr(callout));
    const uint32_t f = cc.gp_round;
    EXPECT_EQ(gp.ebp, f) << "the round that faults";
    // The rounds before it, then its segments up to the callout.
    uint32_t esi = 1 + (segment == 3 ? f : 0u), edi = segment == 3 ? 8u : 3u;
    for (uint32_t e = f + 1; e <= kRounds; ++e) esi += 2 + e, edi += 8;
    EXPECT_EQ(gp.esi, esi);
    EXPECT_EQ(gp.edi, edi);
    return;
  }
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, cc.user, 0));
  const uint32_t esi = cc.user ? m.record(0).esi : m.cpu().reg(Gpr::Esi);
  const uint32_t edi = cc.user ? m.record(0).edi : m.cpu().reg(Gpr::Edi);
  EXPECT_EQ(esi, 2 * kRounds + kRounds * (kRounds + 1) / 2);
  EXPECT_EQ(edi, 8 * kRounds);
  if (cc.end == CalloutEnd::Leaves) {
    EXPECT_GE(m.engine().stats().exits_callout, kRounds / 2) << "the callout did not make the block leave";
  } else {
    EXPECT_EQ(m.engine().stats().exits_callout, 0u) << "the block left after the callout";
    EXPECT_GE(m.engine().stats().callouts, kRounds / 2);
  }
}

void cpuid_leaf0(x86::Assembler& a, const Label& c) {
  a.xor_(x86::eax, x86::eax);
  a.bind(c);
  a.cpuid();
}
void out_unused_port(x86::Assembler& a, const Label& c) {
  a.mov(x86::al, 0x55);
  a.bind(c);
  a.out(Imm(0x80), x86::al);
}
void reload_ds(x86::Assembler& a, const Label& c) {
  a.mov(x86::ax, x86::ds);
  a.bind(c);
  a.mov(x86::ds, x86::ax);
}
/// mov ss (same selector): its interrupt shadow makes the block leave.
void reload_ss(x86::Assembler& a, const Label& c) {
  a.mov(x86::ax, x86::ss);
  a.bind(c);
  a.mov(x86::ss, x86::ax);
}
void invlpg_data(x86::Assembler& a, const Label& c) {
  a.bind(c);
  a.invlpg(x86::ptr(kData));
}
/// INVLPG of the block's own code page takes its code TLB entry: the block leaves.
void invlpg_code(x86::Assembler& a, const Label& c) {
  a.bind(c);
  a.invlpg(x86::ptr(kCode));
}
/// The last round (EBP = 1) loads DS with selector 0x40, past the GDT's end: #GP(0x40).
void bad_ds_last_round(x86::Assembler& a, const Label& c, uint16_t rpl) {
  a.mov(x86::ax, x86::ds);
  a.mov(x86::edx, 0x40 | rpl);
  a.cmp(x86::ebp, 1);
  a.cmove(x86::eax, x86::edx);
  a.bind(c);
  a.mov(x86::ds, x86::ax);
}

/// A second address space with the identity map's tables: CR3 flips between the two.
uint32_t g_other_dir = 0;
void make_other_space(BtMachine& m) { g_other_dir = m.new_identity_directory(); }
void flip_cr3(x86::Assembler& a, const Label& c) {
  a.mov(x86::eax, x86::cr3);
  a.xor_(x86::eax, kPageDir ^ g_other_dir);
  a.bind(c);
  a.mov(x86::cr3, x86::eax);
}

const CalloutCase kCalloutCases[] = {
    {"CpuidKernel", false, CalloutEnd::GoesOn, cpuid_leaf0, {}},
    {"CpuidUser", true, CalloutEnd::GoesOn, cpuid_leaf0, {}},
    {"OutUnusedPortKernel", false, CalloutEnd::GoesOn, out_unused_port, {}},
    {"MovDsSameSelectorKernel", false, CalloutEnd::GoesOn, reload_ds, {}},
    {"MovDsSameSelectorUser", true, CalloutEnd::GoesOn, reload_ds, {}},
    {"InvlpgDataPageKernel", false, CalloutEnd::GoesOn, invlpg_data, {}},
    {"MovSsLeavesKernel", false, CalloutEnd::Leaves, reload_ss, {}},
    {"MovSsLeavesUser", true, CalloutEnd::Leaves, reload_ss, {}},
    {"InvlpgOwnCodePageLeavesKernel", false, CalloutEnd::Leaves, invlpg_code, {}},
    // Setup makes the directory (the same on both machines) before the code names it.
    {"MovCr3OtherSpaceLeavesKernel", false, CalloutEnd::Leaves, flip_cr3, make_other_space},
    // At CPL 3 with IOPL 0 and no I/O bitmap, out raises #GP(0) in the first round.
    {"OutFaultsUser", true, CalloutEnd::Faults, out_unused_port, {}, 0, kCalloutRounds},
    {"MovDsBadSelectorFaultsKernel",
     false,
     CalloutEnd::Faults,
     [](x86::Assembler& a, const Label& c) { bad_ds_last_round(a, c, 0); },
     {},
     0x40},
    {"MovDsBadSelectorFaultsUser",
     true,
     CalloutEnd::Faults,
     [](x86::Assembler& a, const Label& c) { bad_ds_last_round(a, c, 3); },
     {},
     0x40},
};

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitCallout,
                         ::testing::Combine(::testing::ValuesIn(kCalloutCases), ::testing::Values(2u, 3u)),
                         [](const ::testing::TestParamInfo<std::tuple<CalloutCase, unsigned>>& i) {
                           return std::string(std::get<0>(i.param).name) + "Segment" +
                                  std::to_string(std::get<1>(i.param));
                         });

/// A callout that raises an interrupt (`out kIrqPort` with IF = 1) in segment 2: the
/// interpreter takes it right after the out, with ECX = 0.
// A callout goes on with its block only if it left no interrupt deliverable: before that
// check, the request waited for the next dispatcher visit or callout (here: taken at the
// hlt, ECX = 2), and a chained loop without callouts kept it waiting until something
// armed the poll page.
TEST(SideExits, OutRaisingAnInterruptIsTakenRightAfterIt) {
  Program p;
  Label top, jcc, out, after;
  p.load(
      false,
      [&](x86::Assembler& a) {
        top = a.newLabel(), jcc = a.newLabel(), out = a.newLabel(), after = a.newLabel();
        const Label never = a.newLabel();
        a.xor_(x86::ecx, x86::ecx);
        a.jmp(top);
        a.bind(top);
        a.mov(x86::al, kIrqVector);
        a.test(x86::ecx, x86::ecx);
        a.bind(jcc);
        a.jnz(never);
        a.bind(out);
        a.out(Imm(kIrqPort), x86::al);  // segment 2
        a.bind(after);
        a.inc(x86::ecx);
        a.inc(x86::ecx);
        a.hlt();
        a.bind(never);
        a.hlt();
      },
      install_irq_stub, flags::IF);
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_EQ(m.record_count(), 1u);
  EXPECT_EQ(m.record(0).vector, kIrqVector);
  EXPECT_EQ(m.record(0).eip, p.addr(after));
  EXPECT_EQ(m.record(0).ecx, 0u);
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(top), {p.addr(jcc), p.addr(out), p.addr(after)}));
}

// ---- 4. interrupts while a loop of side exits runs ----

/// What enables interrupts, in segment 2 of the loop's block, in round kEnableRound only.
enum class Enable : uint8_t { Popf, Sti };
constexpr uint32_t kEnableRounds = 30, kEnableRound = 17;
constexpr uint32_t kFlagsTable = kData + 0x400;  ///< dword per round: the EFLAGS popf loads

class SideExitEnable : public ::testing::TestWithParam<Enable> {};

/// A request waits from the start with IF = 0. In round kEnableRound a translated popf
/// (sti) in the block's second segment sets IF: the block leaves in the middle of that
/// segment (popf: right after it; sti: after its shadow, in the interpreter), and the
/// interrupt is taken exactly there. The handler records and irets; cli at the end of the
/// round turns IF off again. Deterministic, so the counts must match the interpreter's.
TEST_P(SideExitEnable, InterruptIsTakenAtTheBoundaryInsideTheBlock) {
  const Enable how = GetParam();
  Program p;
  Segments s;
  Label after;
  p.load(
      false,
      [&](x86::Assembler& a) {
        after = a.newLabel();
        a.xor_(x86::ebx, x86::ebx);
        s = emit_ebp_loop(
            a, kEnableRounds,
            [&] {
              a.add(x86::edi, 3);
              if (how == Enable::Popf) {
                a.push(x86::dword_ptr(kFlagsTable, x86::ebp, 2));
                a.popfd();
                a.bind(after);
              } else {
                const Label skip = a.newLabel();
                a.cmp(x86::ebp, kEnableRound);
                a.jne(skip);  // a side exit into the middle of the block
                a.sti();
                a.inc(x86::ebx);  // the sti shadow
                a.bind(after);
                a.bind(skip);
              }
              a.add(x86::ebx, x86::ebp);
            },
            [&] {
              a.inc(x86::edi);
              a.cli();
            });
      },
      [](BtMachine& m) {
        for (uint32_t r = 0; r <= kEnableRounds; ++r) {
          m.poke32(kFlagsTable + 4 * r, (r == kEnableRound ? flags::IF : 0) | flags::Reserved1 | flags::ZF);
        }
        install_irq_stub(m);
        m.raise_irq(kIrqVector);
      });
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_EQ(m.record_count(), 1u);
  const ExceptionRecord irq = m.record(0);
  EXPECT_EQ(irq.vector, kIrqVector);
  EXPECT_EQ(irq.eip, p.addr(after)) << "not taken right after the instruction that enabled it";
  EXPECT_EQ(irq.ebp, kEnableRound);
  EXPECT_EQ(irq.esi, kEnableRounds - kEnableRound + 1);
  EXPECT_EQ(irq.edi, 4 * (kEnableRounds - kEnableRound) + 3);
  EXPECT_EQ(m.acknowledged, 1u);
  EXPECT_EQ(m.cpu().reg(Gpr::Esi), kEnableRounds);
  EXPECT_EQ(m.cpu().reg(Gpr::Edi), 4 * kEnableRounds);
  EXPECT_EQ(m.cpu().reg(Gpr::Ebx), kEnableRounds * (kEnableRounds + 1) / 2 + (how == Enable::Sti ? 1u : 0u));
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(s.jcc2)}));
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitEnable, ::testing::Values(Enable::Popf, Enable::Sti),
                         [](const ::testing::TestParamInfo<Enable>& i) {
                           return i.param == Enable::Popf ? "PopfKernel" : "StiKernel";
                         });

class SideExitAsyncInterrupt : public ::testing::TestWithParam<bool> {};

/// The loop of test 1 runs until kStop is set; a device thread raises the interrupt once
/// the loop has run a while (and asks translated code to leave, as a timer signal does).
/// The handler records, sets kStop and irets. Where the interrupt lands depends on timing,
/// so the reference replays it: the interpreter runs to the state the handler recorded,
/// the request is raised there, and then both machines must agree exactly (registers,
/// records, retired counts).
TEST_P(SideExitAsyncInterrupt, IsTakenAtABoundaryAndTheReplayAgrees) {
  const bool user = GetParam();
  constexpr uint32_t kRaiseAfter = 20000;  ///< iterations before the device raises it
  Program p;
  ConditionLoop l;
  Label loop_end, stubs_end, stop_jcc;
  p.load(
      user,
      [&](x86::Assembler& a) {
        loop_end = a.newLabel(), stubs_end = a.newLabel(), stop_jcc = a.newLabel();
        l.emit_round(a);
        a.mov(x86::dword_ptr(kIter), x86::ebx);
        a.cmp(x86::dword_ptr(kStop), 0);
        a.bind(stop_jcc);
        a.je(l.top);
        a.bind(loop_end);
        a.hlt();
        l.emit_taken_paths(a);
        a.bind(stubs_end);
      },
      [](BtMachine& m) {
        load_array(m);
        record_and_return(m, kIrqVector, kStop, 1);
      },
      flags::IF);
  BtMachine& m = p.bt();
  std::thread device([&] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    // Reads guest RAM the vCPU writes: only to time the request.
    while (m.peek32(kIter) < kRaiseAfter && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    m.raise_irq(kIrqVector);
    request_exit(&m.ctx());
  });
  const RunEnd end = m.run_bt(std::chrono::seconds(10));
  device.join();
  ASSERT_EQ(end, RunEnd::Halted) << m.detail();
  ASSERT_EQ(m.acknowledged, 1u);
  ASSERT_GE(m.record_count(), 1u);
  const ExceptionRecord irq = m.record(0);
  EXPECT_EQ(irq.vector, kIrqVector);
  EXPECT_GE(irq.ebx, kRaiseAfter) << "taken before the device raised it";
  // The loop body or one of its taken paths (after the hlt at loop_end).
  EXPECT_GE(irq.eip, p.addr(l.top));
  EXPECT_LT(irq.eip, p.addr(stubs_end)) << "not inside the loop";
  EXPECT_NE(irq.eip, p.addr(loop_end)) << "taken after the loop";
  const bool boundary = std::any_of(p.blocks->begin(), p.blocks->end(),
                                    [&](const SeenBlock& b) { return holds(b.insns, irq.eip); });
  EXPECT_TRUE(boundary) << "EIP " << std::hex << irq.eip << " is no instruction of the loop";
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(l.top), {p.addr(l.jcc[0]), p.addr(l.jcc[9]), p.addr(stop_jcc)}));

  // The replay: the interpreter alone up to the recorded state, the request there.
  BtMachine& ref = p.ref();
  bool reached = false;
  for (uint64_t n = 0; n < 100'000'000 && !reached; ++n) {
    const CpuState& c = ref.cpu();
    reached = c.eip == irq.eip && c.reg(Gpr::Eax) == irq.eax && c.reg(Gpr::Ecx) == irq.ecx &&
              c.reg(Gpr::Edx) == irq.edx && c.reg(Gpr::Ebx) == irq.ebx && c.reg(Gpr::Ebp) == irq.ebp &&
              c.reg(Gpr::Esi) == irq.esi && c.reg(Gpr::Edi) == irq.edi;
    if (!reached) {
      ASSERT_EQ(ref.interp().step(), StepStatus::Retired);
    }
  }
  ASSERT_TRUE(reached) << "the interpreter never reached the interrupted state";
  ref.raise_irq(kIrqVector);
  // The BT machine has halted already: its run returns at once; the reference goes on.
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, user, 1));

  // The counts of the conditions over the iterations that ran.
  const uint32_t visits = user ? m.record(1).ebx : m.cpu().reg(Gpr::Ebx);
  EXPECT_EQ(visits, irq.ebx + 1) << "the loop ends in the round the handler set kStop";
  std::array<uint32_t, kConditions> want{};
  for (uint32_t v = 0; v < visits; ++v) {
    for (unsigned k = 0; k < kConditions; ++k) want[k] += taken(k, element(v % kElems)) ? 1 : 0;
  }
  for (unsigned k = 0; k < kConditions; ++k) EXPECT_EQ(m.peek32(kTakenCounts + 4 * k), want[k]) << k;
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitAsyncInterrupt, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return cpl_name(i.param); });

// ---- 5. side exits back to the block's own start and into its middle ----

class SideExitBackward : public ::testing::TestWithParam<bool> {};

/// One block holds: a tight loop `top: ... jnz top` (to its own start), code after it, an
/// inner loop `mid: ... jnz mid` (into its own middle), and the outer `jnz top`.
TEST_P(SideExitBackward, ToTheBlockStartAndIntoItsMiddle) {
  const bool user = GetParam();
  constexpr uint32_t kOuter = 200, kInner = 5;
  Program p;
  Label top, mid, jcc_top, jcc_mid, jcc_outer;
  p.load(user, [&](x86::Assembler& a) {
    top = a.newLabel(), mid = a.newLabel(), jcc_top = a.newLabel(), jcc_mid = a.newLabel();
    jcc_outer = a.newLabel();
    a.mov(x86::ebp, kOuter);
    a.xor_(x86::eax, x86::eax);
    a.xor_(x86::ebx, x86::ebx);
    a.xor_(x86::esi, x86::esi);
    a.xor_(x86::edi, x86::edi);
    a.jmp(top);
    a.bind(top);
    a.inc(x86::eax);
    a.add(x86::ebx, x86::eax);
    a.test(x86::eax, 3);
    a.bind(jcc_top);
    a.jnz(top);  // taken 3 times in 4: the block's own start
    a.add(x86::esi, x86::eax);
    a.mov(x86::ecx, kInner);
    a.bind(mid);
    a.add(x86::edi, x86::ecx);
    a.xor_(x86::edi, x86::ebx);
    a.dec(x86::ecx);
    a.bind(jcc_mid);
    a.jnz(mid);  // backwards into the middle of this block
    a.dec(x86::ebp);
    a.bind(jcc_outer);
    a.jnz(top);
    a.hlt();
  });
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, user, 0));

  uint32_t eax = 0, ebx = 0, esi = 0, edi = 0;
  for (uint32_t o = 0; o < kOuter; ++o) {
    do {
      ++eax;
      ebx += eax;
    } while (eax & 3);
    esi += eax;
    for (uint32_t c = kInner; c != 0; --c) edi = (edi + c) ^ ebx;
  }
  const CpuState& c = m.cpu();
  const ExceptionRecord end = user ? m.record(0) : ExceptionRecord{};
  EXPECT_EQ(user ? end.eax : c.reg(Gpr::Eax), eax);
  EXPECT_EQ(user ? end.ebx : c.reg(Gpr::Ebx), ebx);
  EXPECT_EQ(user ? end.esi : c.reg(Gpr::Esi), esi);
  EXPECT_EQ(user ? end.edi : c.reg(Gpr::Edi), edi);

  EXPECT_TRUE(
      some_block_holds(p.blocks, p.addr(top), {p.addr(jcc_top), p.addr(mid), p.addr(jcc_mid), p.addr(jcc_outer)}))
      << "the block at top does not go on past its jcc's";
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(mid), {p.addr(jcc_mid), p.addr(jcc_outer)}));
  for (const SeenBlock& b : *p.blocks) {
    if (b.eip != p.addr(top)) continue;
    EXPECT_TRUE(holds(b.direct_targets, p.addr(top)));
    EXPECT_TRUE(holds(b.direct_targets, p.addr(mid)));
  }
  // 4 * 200 + 4 * 200 iterations: the loops ran chained, not through the dispatcher.
  EXPECT_LE(m.engine().stats().dispatches, 16u);
  EXPECT_GE(m.tstats().chains, 3u);
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitBackward, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return cpl_name(i.param); });

// ---- 6. a jcc at the end of a page: no side exit across pages ----

constexpr uint32_t kNextPage = kCode + 0x1000;  ///< linear: maps frame A or B
constexpr uint32_t kBack = kCode + 0x2000;      ///< where the next page's code jumps back to
constexpr uint32_t kFrameA = 0x700000, kFrameB = 0x701000;
constexpr uint32_t kPageRounds = 40;  ///< even: half the rounds see each frame

struct PageEndCase {
  bool straddle;  ///< the jcc (rel32) crosses into the next page; else it ends the page
  bool user;
};

std::ostream& operator<<(std::ostream& os, const PageEndCase& c) {
  return os << (c.straddle ? "straddling" : "ending") << (c.user ? " CPL 3" : " CPL 0");
}

class SideExitPageEnd : public ::testing::TestWithParam<PageEndCase> {};

/// `top: ...; jnz top` with the jcc's fall-through at kNextPage, which maps frame A
/// (`add edx, 1`) or frame B (`add edx, 100`); int 0x80 after each round swaps them (PTE
/// write + invlpg). The block at top must end with its jcc: a block that went on into the
/// next page would keep running frame A's code.
TEST_P(SideExitPageEnd, JccAtThePageEndEndsTheBlock) {
  const PageEndCase pc = GetParam();
  // The jcc's bytes before the page end: all 2 of a short one, or 3 of a rel32 one.
  const uint32_t jcc_head = pc.straddle ? 3 : 2, jcc_tail = pc.straddle ? 3 : 0;
  auto emit_body = [](x86::Assembler& a) {
    a.add(x86::eax, x86::ecx);
    a.inc(x86::ebx);
    a.add(x86::edi, x86::ebx);
    a.dec(x86::ecx);
  };
  uint32_t body_size = 0;
  {
    GuestCode probe(kCode);
    emit_body(probe.a());
    body_size = static_cast<uint32_t>(probe.finish().size());
  }
  const uint32_t top_off = 0x1000 - jcc_head - body_size;

  Program p;
  Label outer, top, jcc;
  p.load(
      pc.user,
      [&](x86::Assembler& a) {
        outer = a.newLabel(), top = a.newLabel(), jcc = a.newLabel();
        a.mov(x86::esi, kPageRounds);
        a.xor_(x86::edx, x86::edx);
        a.bind(outer);
        a.mov(x86::ecx, 3);
        a.jmp(top);
        while (a.offset() < top_off) a.int3();  // never runs
        a.bind(top);
        emit_body(a);
        a.bind(jcc);
        if (pc.straddle) {
          a.long_().jnz(top);
        } else {
          a.short_().jnz(top);
        }
      },
      [&](BtMachine& m) {
        m.map_page(kPageDir, kNextPage, kFrameA, kUserRw);
        const uint32_t pte = m.pte_addr(kPageDir, kNextPage);
        m.install_service([pte](x86::Assembler& a) {  // swaps frames A and B at kNextPage
          a.xor_(x86::dword_ptr(pte), kFrameA ^ kFrameB);
          a.invlpg(x86::ptr(kNextPage));
        });
      });
  // The next page's code, in both frames after the jcc's tail, and the code at kBack.
  for (BtMachine* m : {&p.bt(), &p.ref()}) {
    const std::vector<uint8_t>& main = p.code->bytes();
    ASSERT_EQ(main.size(), 0x1000u + jcc_tail) << "the jcc does not end where it should";
    for (const auto& [frame, inc] : {std::pair{kFrameA, 1u}, std::pair{kFrameB, 100u}}) {
      m->poke(frame, main.data() + 0x1000, jcc_tail);
      GuestCode next(kNextPage + jcc_tail);
      next.a().add(x86::edx, inc);
      next.a().jmp(Imm(kBack));
      m->load_at(next, frame + jcc_tail);
    }
    GuestCode back(kBack);
    const Label done = back.a().newLabel();
    back.a().int_(kServiceVector);
    back.a().dec(x86::esi);
    back.a().jz(done);
    back.a().jmp(Imm(p.addr(outer)));
    back.a().bind(done);
    back.a().hlt();
    m->load(back);
  }
  ASSERT_EQ(p.addr(jcc) + jcc_head, kNextPage);
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, pc.user, 0));
  const ExceptionRecord end = pc.user ? m.record(0) : ExceptionRecord{};
  EXPECT_EQ(pc.user ? end.edx : m.cpu().reg(Gpr::Edx), kPageRounds / 2 * 1 + kPageRounds / 2 * 100)
      << "a block ran frame A's code while frame B was mapped";
  EXPECT_EQ(pc.user ? end.eax : m.cpu().reg(Gpr::Eax), 6 * kPageRounds);
  EXPECT_EQ(pc.user ? end.ebx : m.cpu().reg(Gpr::Ebx), 3 * kPageRounds);

  // A jcc that straddles the page end starts a block of its own (its second page is walked
  // only when it runs); one that ends at the page end ends the block at top.
  const uint32_t jcc_block = pc.straddle ? p.addr(jcc) : p.addr(top);
  bool seen = false;
  for (const SeenBlock& b : *p.blocks) {
    if (b.eip == p.addr(top) && pc.straddle) {
      EXPECT_EQ(b.eip + b.guest_size, p.addr(jcc)) << "the block at top takes in the straddling jcc";
      EXPECT_TRUE(holds(b.direct_targets, p.addr(jcc)));
      EXPECT_FALSE(b.second_page);
    }
    if (b.eip != jcc_block) continue;
    seen = true;
    EXPECT_EQ(b.insns.back(), p.addr(jcc)) << "the block goes on past the jcc";
    EXPECT_EQ(b.eip + b.guest_size, p.addr(jcc) + jcc_head + jcc_tail);
    EXPECT_EQ(b.second_page, pc.straddle);
    EXPECT_TRUE(holds(b.direct_targets, p.addr(top)));
    EXPECT_TRUE(holds(b.direct_targets, kNextPage + jcc_tail)) << "the fall-through is no exit";
  }
  EXPECT_TRUE(seen) << "no block ending at the jcc";
  EXPECT_TRUE(std::any_of(p.blocks->begin(), p.blocks->end(), [&](const SeenBlock& b) {
    return b.eip == kNextPage + jcc_tail;
  })) << "the next page's code did not run translated";
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitPageEnd,
                         ::testing::Values(PageEndCase{false, false}, PageEndCase{false, true},
                                           PageEndCase{true, false}, PageEndCase{true, true}),
                         [](const ::testing::TestParamInfo<PageEndCase>& i) {
                           return std::string(i.param.straddle ? "Straddling" : "Ending") + cpl_name(i.param.user);
                         });

// ---- 7. a store in segment 2 rewrites segment 3 of its own block ----

class SideExitSelfModifying : public ::testing::TestWithParam<bool> {};

/// Each round stores EBP's low byte into the imm32 of `add edi, imm32` two segments on.
/// While the page is write-protected, the store's fault drops the block (count corrected
/// mid-block); after kVolatileAfterInvalidations such writes the page is volatile: blocks
/// check their bytes at entry and end after each store, still with side exits.
TEST_P(SideExitSelfModifying, StoreRewritesALaterSegment) {
  const bool user = GetParam();
  constexpr uint32_t kRounds = 24, kImm = 0x11111100;
  Program p;
  Segments s;
  Label store, after_store, patched;
  p.load(user, [&](x86::Assembler& a) {
    store = a.newLabel(), after_store = a.newLabel(), patched = a.newLabel();
    s = emit_ebp_loop(
        a, kRounds,
        [&] {
          a.mov(x86::eax, x86::ebp);
          a.bind(store);
          a.mov(x86::byte_ptr(patched, 2), x86::al);  // 81 C7 imm32: the imm's low byte
          a.bind(after_store);
          a.add(x86::esi, x86::ebp);
        },
        [&] {
          a.bind(patched);
          a.long_().add(x86::edi, kImm);
        });
  });
  ASSERT_EQ(p.bt().peek8(p.addr(patched)), 0x81u);
  ASSERT_NO_FATAL_FAILURE(p.run_and_compare());
  BtMachine& m = p.bt();
  ASSERT_NO_FATAL_FAILURE(expect_ended_at_hlt(m, user, 0));
  const ExceptionRecord end = user ? m.record(0) : ExceptionRecord{};
  EXPECT_EQ(user ? end.edi : m.cpu().reg(Gpr::Edi), kRounds * kImm + kRounds * (kRounds + 1) / 2);
  EXPECT_EQ(user ? end.esi : m.cpu().reg(Gpr::Esi), kRounds + kRounds * (kRounds + 1) / 2);
  EXPECT_GE(m.engine().fault_stats().code_writes, 1u) << "no store came from translated code";
  EXPECT_GE(m.engine().stats().volatile_pages, 1u);
  EXPECT_TRUE(
      some_block_holds(p.blocks, p.addr(s.top), {p.addr(s.jcc1), p.addr(store), p.addr(s.jcc2), p.addr(patched)}))
      << "while write-protected, the block goes on past both jcc's";
  EXPECT_TRUE(std::any_of(p.blocks->begin(), p.blocks->end(), [&](const SeenBlock& b) {
    return b.eip == p.addr(s.top) && b.insns.back() == p.addr(store) && holds(b.insns, p.addr(s.jcc1));
  })) << "once volatile, a block goes on past its jcc and ends after the store";
  EXPECT_TRUE(some_block_holds(p.blocks, p.addr(after_store), {p.addr(s.jcc2), p.addr(patched)}));
}

INSTANTIATE_TEST_SUITE_P(SideExits, SideExitSelfModifying, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return cpl_name(i.param); });

}  // namespace
}  // namespace vmm86::bttest
