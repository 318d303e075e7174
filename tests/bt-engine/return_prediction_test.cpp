// Return prediction (translator/rewrite_branch.cpp, ExecContext::return_stack_top): a
// translated guest call is a host call onto the return stack and a guest ret a host ret;
// the code after the host call (its landing) checks the guest's target before going on.
// The two stacks part ways whenever a program does not return the way it called:
// recursion deeper than the return stack (its guard page starts it over), calls that never
// return, callees that change their return address or unwind many frames at once
// (longjmp), callees that leave translated code (the dispatcher empties the return stack)
// or rewrite their caller's code while its landing waits; and a cross-page callee that
// another address space maps to other code. Each program must still compute
// what the interpreter alone computes: TwoRuns compares registers, exception records and
// retired-instruction counts, and the results each program stores at kResults are checked
// on both machines. Every program runs at CPL 0 and at CPL 3.
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <utility>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kResults = kData;           ///< dwords: what each program computed
constexpr uint32_t kVars = kData + 0x100;      ///< the programs' own variables
constexpr uint32_t kFarPage = kCode + 0x2000;  ///< identity-mapped code on another page
constexpr uint32_t kShared = 0x800000;         ///< linear code page (PDE 2) mapped per test
constexpr uint32_t kFrameA = 0x700000, kFrameB = 0x701000;
constexpr uint32_t kRetA = 1, kRetB = 0x10000;  ///< what code in each frame returns: sums count both
/// Host calls the return stack holds before a push reaches its guard (the top slot is the
/// underflow's).
constexpr uint32_t kReturnSlots = kReturnStackBytes / 8 - 1;

x86::Mem result(uint32_t i) { return x86::dword_ptr(kResults + 4 * i); }

/// Stores `regs` at result(first), result(first + 1), ...
void store_results(x86::Assembler& a, std::initializer_list<x86::Gp> regs, uint32_t first = 0) {
  for (const x86::Gp& r : regs) a.mov(result(first++), r);
}

/// `rounds` times `body` (which emits into `a`): ECX counts down to 1, `sum` starts at 0
/// for the body to add to.
void emit_loop(x86::Assembler& a, uint32_t rounds, const std::function<void()>& body, const x86::Gp& sum = x86::esi) {
  const Label top = a.newLabel();
  a.mov(x86::ecx, rounds);
  a.xor_(sum, sum);
  a.bind(top);
  body();
  a.dec(x86::ecx);
  a.jnz(top);
}

/// f(x) = 2x + 1 through a nested call: f calls g(x) = 2x.
void emit_f_and_g(x86::Assembler& a, const Label& f) {
  const Label g = a.newLabel();
  a.bind(f);
  a.call(g);
  a.inc(x86::eax);
  a.ret();
  a.bind(g);
  a.add(x86::eax, x86::eax);
  a.ret();
}

/// The parameter: CPL 3 (where the final hlt raises #GP, which the handler records) or 0.
class ReturnPrediction : public ::testing::TestWithParam<bool> {
 public:
  [[nodiscard]] bool user() const { return GetParam(); }

  /// Assembles `program` at kCode on both machines (after `setup`: more code, paging),
  /// starts it there, runs both and compares them. The program stores its results at
  /// kResults and ends with hlt.
  void run(const Emit& program, const std::function<void(BtMachine&)>& setup = {}) {
    runs_.setup([&](BtMachine& m) {
      if (setup) setup(m);
      code_ = std::make_unique<GuestCode>(kCode);
      program(code_->a());
      m.load(*code_);
      m.start(kCode, kStackTop, user());
    });
    ASSERT_NO_FATAL_FAILURE(runs_.run_and_compare());
    ASSERT_EQ(bt().record_count(), user() ? 1u : 0u) << "an exception besides the #GP of hlt at CPL 3";
    if (user()) {
      EXPECT_EQ(bt().record(0).vector, 13u);
    }
  }

  /// The results on both machines.
  void expect_results(std::initializer_list<uint32_t> want) {
    uint32_t i = 0;
    for (const uint32_t w : want) {
      EXPECT_EQ(runs_.bt.peek32(kResults + 4 * i), w) << "result " << i;
      EXPECT_EQ(runs_.ref.peek32(kResults + 4 * i), w) << "reference result " << i;
      ++i;
    }
  }

  /// A label's guest address (labels of the last program assembled: the reference's).
  [[nodiscard]] uint32_t addr(const Label& label) const { return code_->addr(label); }
  BtMachine& bt() { return runs_.bt; }
  /// Guest rets that took the miss path: no host call left to pair with (underflow), or a
  /// target other than the paired call's return address. The shared miss code counts them
  /// (blocks count none of their own lookups: count_indirect_lookups is off).
  uint64_t return_misses() { return bt().ctx().indirect_lookups; }
  uint64_t return_stack_resets() { return bt().engine().fault_stats().return_stack_resets; }

 private:
  TwoRuns runs_;
  std::unique_ptr<GuestCode> code_;
};

// ---- a. recursion deeper than the return stack ----

/// eax = ecx + (ecx - 1) + ... + 1, one call per level.
void emit_sum(x86::Assembler& a, const Label& sum) {
  const Label zero = a.newLabel();
  a.bind(sum);
  a.test(x86::ecx, x86::ecx);
  a.jz(zero);
  a.push(x86::ecx);
  a.dec(x86::ecx);
  a.call(sum);
  a.pop(x86::ecx);
  a.add(x86::eax, x86::ecx);
  a.ret();
  a.bind(zero);
  a.xor_(x86::eax, x86::eax);
  a.ret();
}

// The descent pushes past the guard (the fault handler starts the return stack over), so
// the outer returns find no host call left to pair with; the innermost ones and a shallow
// call after still pair. Two shallow runs first: the first translates the blocks (each new
// one leaves translated code, emptying the return stack), the second chains the landings.
TEST_P(ReturnPrediction, RecursionDeeperThanTheReturnStack) {
  static constexpr uint32_t kDepth = 20000, kSum = kDepth * (kDepth + 1) / 2;
  static_assert(kDepth > 2 * kReturnSlots);
  run([](x86::Assembler& a) {
    const Label sum = a.newLabel();
    uint32_t i = 0;
    for (const uint32_t depth : {10u, 10u, kDepth, kDepth, 100u}) {
      a.mov(x86::ecx, depth);
      a.call(sum);
      a.mov(result(i++), x86::eax);
    }
    a.mov(result(i), x86::esp);
    a.hlt();
    emit_sum(a, sum);
  });
  expect_results({55, 55, kSum, kSum, 5050, kStackTop});
  EXPECT_GE(return_stack_resets(), 4u) << "the deep descents did not reach the guard (twice each)";
  // Of a deep descent's returns, at most the innermost kReturnSlots pair; here 3618 do.
  EXPECT_GE(return_misses(), 2 * (kDepth - kReturnSlots));
  EXPECT_LT(return_misses(), 2 * (kDepth - 1000)) << "the innermost returns did not pair";
}

// ---- b. calls that never return ----

// `call next; next: pop eax` (how position-independent code finds itself) leaves a host
// call behind every round: the return stack overflows again and again. Calls and returns
// afterwards must work and pair.
TEST_P(ReturnPrediction, CallsThatNeverReturn) {
  static constexpr uint32_t kRounds = 50000, kPaired = 100;
  static_assert(kRounds > 4 * kReturnSlots);
  Label next;
  run([&](x86::Assembler& a) {
    const Label f = a.newLabel();
    next = a.newLabel();
    emit_loop(a, kRounds, [&] {
      a.call(next);
      a.bind(next);
      a.pop(x86::eax);
      a.add(x86::esi, x86::eax);
    });
    store_results(a, {x86::esi, x86::esp});
    emit_loop(
        a, kPaired,
        [&] {
          a.mov(x86::eax, x86::ecx);
          a.call(f);
          a.add(x86::edi, x86::eax);
        },
        x86::edi);
    store_results(a, {x86::edi, x86::esp}, 2);
    a.hlt();
    emit_f_and_g(a, f);
  });
  expect_results({kRounds * addr(next), kStackTop, kPaired * (kPaired + 1) + kPaired, kStackTop});
  EXPECT_GE(return_stack_resets(), 4u);
  EXPECT_LT(return_misses(), 10u) << "the returns after the overflows did not pair";
}

// ---- c. callees that return elsewhere ----

// One callee skips the instruction after its call (add dword [esp], 5), another replaces
// its return address (mov [esp], elsewhere): each ret's landing sees another target than
// its call's return address and takes the mismatch path. Running on at the return address
// would set EBX.
TEST_P(ReturnPrediction, CalleeChangesItsReturnAddress) {
  static constexpr uint32_t kRounds = 1000, kSkip = 5;  // the length of `mov ebx, imm32`
  Label skipped, resumed;
  run([&](x86::Assembler& a) {
    const Label elsewhere = a.newLabel(), skip = a.newLabel(), redirect = a.newLabel();
    skipped = a.newLabel();
    resumed = a.newLabel();
    a.xor_(x86::edi, x86::edi);
    a.xor_(x86::ebx, x86::ebx);
    emit_loop(a, kRounds, [&] {
      a.call(skip);
      a.bind(skipped);
      a.mov(x86::ebx, 0xBAD1);
      a.bind(resumed);
      a.inc(x86::esi);
      a.call(redirect);
      a.mov(x86::ebx, 0xBAD2);
      a.bind(elsewhere);
      a.inc(x86::edi);
    });
    store_results(a, {x86::esi, x86::edi, x86::ebx, x86::esp});
    a.hlt();
    a.bind(skip);
    a.add(x86::dword_ptr(x86::esp), kSkip);
    a.ret();
    a.bind(redirect);
    a.lea(x86::edx, x86::ptr(elsewhere));
    a.mov(x86::dword_ptr(x86::esp), x86::edx);
    a.ret();
  });
  ASSERT_EQ(addr(resumed) - addr(skipped), kSkip);
  expect_results({kRounds, kRounds, 0, kStackTop});
  EXPECT_EQ(return_misses(), 2 * kRounds) << "every ret must miss: its landing expects another address";
}

// ---- d. longjmp ----

// The innermost of a chain of kDepth calls puts ESP back to a frame saved far outside and
// returns from there, skipping the frames in between; their host calls stay behind on the
// return stack (it overflows over the rounds). Later calls and returns must still work,
// including the outer ret whose host call is buried under the stale ones.
TEST_P(ReturnPrediction, LongjmpSkipsFrames) {
  static constexpr uint32_t kRounds = 200, kDepth = 100, kJmpBuf = kVars;
  static_assert(kRounds * kDepth > 2 * kReturnSlots);
  run([](x86::Assembler& a) {
    const Label main_fn = a.newLabel(), loop = a.newLabel(), setjmp_frame = a.newLabel(), deep = a.newLabel(),
                unwind = a.newLabel(), f = a.newLabel();
    a.xor_(x86::ebx, x86::ebx);
    a.call(main_fn);
    store_results(a, {x86::eax, x86::esi, x86::ebx, x86::esp});
    a.hlt();

    a.bind(main_fn);  // esi = the frames the longjmps skipped; eax = f(7)
    a.mov(x86::ebp, kRounds);
    a.xor_(x86::esi, x86::esi);
    a.bind(loop);
    a.call(setjmp_frame);
    a.add(x86::esi, x86::eax);
    a.dec(x86::ebp);
    a.jnz(loop);
    a.mov(x86::eax, 7);
    a.call(f);
    a.ret();

    a.bind(setjmp_frame);
    a.mov(x86::dword_ptr(kJmpBuf), x86::esp);  // ESP at its return address
    a.mov(x86::ecx, kDepth);
    a.call(deep);
    a.mov(x86::ebx, 0xBAD1);  // deep never returns here
    a.ret();

    a.bind(deep);
    a.dec(x86::ecx);
    a.jz(unwind);
    a.call(deep);
    a.mov(x86::ebx, 0xBAD2);
    a.ret();
    a.bind(unwind);  // eax = frames skipped; then return from setjmp_frame's frame
    a.mov(x86::eax, x86::dword_ptr(kJmpBuf));
    a.sub(x86::eax, x86::esp);
    a.shr(x86::eax, 2);
    a.mov(x86::esp, x86::dword_ptr(kJmpBuf));
    a.ret();
    emit_f_and_g(a, f);
  });
  expect_results({15, kRounds * kDepth, 0, kStackTop});
  EXPECT_GE(return_stack_resets(), 2u);
}

// ---- e. ret imm16, indirect calls ----

// The callees pop their arguments (ret 8); they are called directly, through a register,
// a memory operand and an indexed table. Every ret pairs.
TEST_P(ReturnPrediction, RetImm16AndIndirectCalls) {
  static constexpr uint32_t kRounds = 1000, kFnPtr = kVars, kTable = kVars + 0x10;
  static_assert(kRounds % 2 == 0);
  run([](x86::Assembler& a) {
    const Label add2 = a.newLabel(), sub2 = a.newLabel();
    auto call_with = [&](uint32_t arg, const std::function<void()>& call) {  // esi += callee(ecx, arg)
      a.push(x86::ecx);
      a.push(arg);
      call();
      a.add(x86::esi, x86::eax);
    };
    a.lea(x86::edx, x86::ptr(add2));
    a.mov(x86::dword_ptr(kFnPtr), x86::edx);
    a.mov(x86::dword_ptr(kTable), x86::edx);
    a.lea(x86::eax, x86::ptr(sub2));
    a.mov(x86::dword_ptr(kTable + 4), x86::eax);
    emit_loop(a, kRounds, [&] {
      call_with(3, [&] { a.call(add2); });
      call_with(5, [&] { a.call(x86::edx); });
      call_with(7, [&] { a.call(x86::dword_ptr(kFnPtr)); });
      a.mov(x86::eax, x86::ecx);
      a.and_(x86::eax, 1);
      call_with(1, [&] { a.call(x86::dword_ptr(kTable, x86::eax, 2)); });  // even rounds add, odd subtract
    });
    store_results(a, {x86::esi, x86::esp});
    a.hlt();
    a.bind(add2);  // [esp+8] + [esp+4]
    a.mov(x86::eax, x86::dword_ptr(x86::esp, 8));
    a.add(x86::eax, x86::dword_ptr(x86::esp, 4));
    a.ret(8);
    a.bind(sub2);  // [esp+8] - [esp+4]
    a.mov(x86::eax, x86::dword_ptr(x86::esp, 8));
    a.sub(x86::eax, x86::dword_ptr(x86::esp, 4));
    a.ret(8);
  });
  // Per round c: (c + 3) + (c + 5) + (c + 7) + (c ± 1); the ±1 cancel over an even count.
  expect_results({2 * kRounds * (kRounds + 1) + 15 * kRounds, kStackTop});
  EXPECT_LT(return_misses(), 10u) << "returns did not pair";
}

// ---- f. a callee on another page that another address space maps to other code ----

// Cross-page calls are chained to the callee's checked entry, which compares the code TLB.
// int 0x80 switches between two address spaces that map kShared to different routines:
// each call must run the routine of the current space and return to its landing.
TEST_P(ReturnPrediction, CrossPageCalleeDiffersPerAddressSpace) {
  static constexpr uint32_t kRounds = 400;  // even: the run ends in the first space
  run(
      [](x86::Assembler& a) {
        a.mov(x86::ebp, kShared);
        emit_loop(a, kRounds, [&] {
          a.call(Imm(kShared));
          a.add(x86::esi, x86::eax);
          a.call(x86::ebp);
          a.add(x86::esi, x86::eax);
          a.int_(kServiceVector);
        });
        store_results(a, {x86::esi, x86::esp});
        a.hlt();
      },
      [](BtMachine& m) {
        m.two_spaces(kShared, kFrameA, kFrameB);
        for (const auto& [frame, value] : {std::pair{kFrameA, kRetA}, std::pair{kFrameB, kRetB}}) {
          GuestCode r(kShared);
          r.a().mov(x86::eax, value);
          r.a().ret();
          m.load_at(r, frame);
        }
      });
  expect_results({kRounds * (kRetA + kRetB), kStackTop});
  EXPECT_GT(bt().tstats().chains, 0u);
  EXPECT_GT(bt().engine().stats().exits_code_tlb + bt().tstats().indirect_misses, 0u)
      << "no entry refused the other space's routine";
}

// ---- g. the callee leaves translated code ----

/// kNest nested calls per round; the innermost level does `leave` (whatever makes the
/// engine leave translated code), then returns 1; each level adds 10. After the leave, the
/// return stack is empty: every ret of the round takes the underflow path.
void leave_in_callee(ReturnPrediction& t, const Emit& leave, const std::function<void(BtMachine&)>& setup,
                     uint32_t want_count) {
  static constexpr uint32_t kRounds = 300, kNest = 5, kCount = kVars;
  t.run(
      [&](x86::Assembler& a) {
        const Label nest = a.newLabel(), bottom = a.newLabel();
        emit_loop(a, kRounds, [&] {
          a.mov(x86::edx, kNest);
          a.call(nest);
          a.add(x86::esi, x86::eax);
        });
        a.mov(x86::eax, x86::dword_ptr(kCount));
        store_results(a, {x86::esi, x86::eax, x86::esp});
        a.hlt();
        a.bind(nest);
        a.dec(x86::edx);
        a.jz(bottom);
        a.call(nest);
        a.add(x86::eax, 10);
        a.ret();
        a.bind(bottom);
        leave(a);
        a.mov(x86::eax, 1);
        a.ret();
      },
      setup);
  t.expect_results({kRounds * (1 + 10 * (kNest - 1)), want_count * kRounds, kStackTop});
  EXPECT_GE(t.return_misses(), kRounds * kNest) << "some ret after the leave found a host call to pair with";
}

TEST_P(ReturnPrediction, CalleeCallsARing0Service) {
  leave_in_callee(
      *this, [](x86::Assembler& a) { a.int_(kServiceVector); },
      [](BtMachine& m) { m.install_service([](x86::Assembler& a) { a.inc(x86::dword_ptr(kVars)); }); }, 1);
}

// A far jump (to the next instruction) is control flow: the interpreter runs it.
TEST_P(ReturnPrediction, CalleeRunsAnInterpretedFarJump) {
  const uint16_t cs = user() ? kUserCs : kKernelCs;
  leave_in_callee(
      *this,
      [cs](x86::Assembler& a) {
        const Label next = a.newLabel();
        a.embedUInt8(0xEA);  // jmp far ptr16:32
        a.embedLabel(next, 4);
        a.embedUInt16(cs);
        a.bind(next);
      },
      {}, 0);
}

// ---- h. the callee rewrites the code after its call ----

/// Each round the callee stores the round's counter into the imm32 of the `mov eax, 0`
/// right after its call: the caller's block is dropped while its landing waits on the
/// return stack (or, once the page takes too many code writes and checks its code at
/// block entry instead, the block after the landing is found stale). The new code must run.
void patch_after_call(ReturnPrediction& t, bool patcher_on_callers_page) {
  static constexpr uint32_t kRounds = 200;
  auto emit_patcher = [](x86::Assembler& a) {
    a.mov(x86::dword_ptr(x86::edx, 1), x86::ecx);
    a.ret();
  };
  Label patched;
  t.run(
      [&](x86::Assembler& a) {
        const Label patcher = a.newLabel();
        patched = a.newLabel();
        emit_loop(a, kRounds, [&] {
          a.lea(x86::edx, x86::ptr(patched));
          if (patcher_on_callers_page) {
            a.call(patcher);
          } else {
            a.call(Imm(kFarPage));
          }
          a.bind(patched);
          a.mov(x86::eax, 0);
          a.add(x86::esi, x86::eax);
        });
        store_results(a, {x86::esi, x86::esp});
        a.hlt();
        a.bind(patcher);
        emit_patcher(a);
      },
      [&](BtMachine& m) {
        GuestCode far(kFarPage);
        emit_patcher(far.a());
        m.load(far);
      });
  ASSERT_EQ(t.bt().peek8(t.addr(patched)), 0xB8) << "mov eax, imm32";
  t.expect_results({kRounds * (kRounds + 1) / 2, kStackTop});
  EXPECT_GT(t.bt().engine().fault_stats().code_writes, 0u) << "no write dropped blocks";
  EXPECT_GT(t.bt().engine().stats().exits_stale, 0u) << "no block was found stale at entry";
}

TEST_P(ReturnPrediction, CalleeOnTheSamePageRewritesTheCodeAfterItsCall) { patch_after_call(*this, true); }
TEST_P(ReturnPrediction, CalleeOnAnotherPageRewritesTheCodeAfterItsCall) { patch_after_call(*this, false); }

// ---- leaving translated code or remapping code with host calls outstanding ----

// The exit trampoline must not push onto the return stack: with exactly kReturnSlots host
// calls outstanding, its first push would hit the guard outside any block (this ended the
// process once). j = kReturnSlots - 4 .. kReturnSlots + 4 calls that never return, each
// batch starting right after int 0x80 (empty return stack) and ending at the next one.
TEST_P(ReturnPrediction, LeavingWithAFullReturnStack) {
  static constexpr uint32_t kFirst = kReturnSlots - 4, kLast = kReturnSlots + 4;
  run(
      [](x86::Assembler& a) {
        const Label outer = a.newLabel(), inner = a.newLabel(), next = a.newLabel();
        a.mov(x86::edi, kFirst);
        a.xor_(x86::esi, x86::esi);
        a.bind(outer);
        a.int_(kServiceVector);
        a.mov(x86::ecx, x86::edi);
        a.bind(inner);
        a.call(next);
        a.bind(next);
        a.pop(x86::eax);
        a.inc(x86::esi);
        a.dec(x86::ecx);
        a.jnz(inner);
        a.inc(x86::edi);
        a.cmp(x86::edi, kLast);
        a.jbe(outer);
        store_results(a, {x86::esi, x86::esp});
        a.hlt();
      },
      [](BtMachine& m) { m.install_service([](x86::Assembler&) {}); });
  expect_results({(kLast - kFirst + 1) * kReturnSlots, kStackTop});
}

// A landing goes on to the block at its return address through a chained jump that checks
// nothing when that block is on the caller's page. A callee that remaps the caller's page
// without leaving translated code (PTE store + invlpg in a callout) must make translated
// code leave (which empties the return stack), or the return runs the old mapping's code.
// The callee remaps kShared from frame A to frame B in round kFlipAt; that round must go
// on in frame B's code.
TEST_P(ReturnPrediction, CalleeRemapsItsCallersPage) {
  if (user()) GTEST_SKIP() << "invlpg needs CPL 0";
  static constexpr uint32_t kRounds = 100, kFlipAt = kRounds / 2;
  run(
      [](x86::Assembler& a) {
        emit_loop(a, kRounds, [&] {
          a.call(Imm(kShared));
          a.add(x86::esi, x86::eax);
        });
        store_results(a, {x86::esi, x86::esp});
        a.hlt();
      },
      [](BtMachine& m) {
        m.map_page(kPageDir, kShared, kFrameA, kPresent | kWritable);
        for (const auto& [frame, value] : {std::pair{kFrameA, kRetA}, std::pair{kFrameB, kRetB}}) {
          GuestCode c(kShared);  // call the remapper, then eax = value
          c.a().call(Imm(kFarPage));
          c.a().mov(x86::eax, value);
          c.a().ret();
          m.load_at(c, frame);
        }
        GuestCode r(kFarPage);
        const Label keep = r.a().newLabel();
        r.a().cmp(x86::ecx, kFlipAt);
        r.a().jne(keep);
        r.a().mov(x86::dword_ptr(m.pte_addr(kPageDir, kShared)), kFrameB | kPresent | kWritable);
        r.a().invlpg(x86::ptr(kShared));
        r.a().bind(keep);
        r.a().ret();
        m.load(r);
      });
  expect_results({(kRounds - kFlipAt) * kRetA + kFlipAt * kRetB, kStackTop});
}

INSTANTIATE_TEST_SUITE_P(BtEngine, ReturnPrediction, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "User" : "Kernel"; });

}  // namespace
}  // namespace vmm86::bttest
