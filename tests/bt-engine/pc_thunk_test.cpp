// Inlined PC-thunk calls (translator/translator.cpp, inline_pc_thunk_call): `call T` where
// T holds `mov reg, [esp]; ret` (the i386 PIC get_pc_thunk) runs inside the caller's block
// as "[esp-4] = return address; reg = return address", and T's page becomes the block's
// second page (write-protected; its mapping checked at the block's checked entry). Every
// program also runs on the interpreter alone (TwoRuns): registers, exception records and
// the retired-instruction count (the inlined call retires three) must agree.
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kNearThunk = kCode + 0x800;  ///< on the caller's page (the caller is shorter)
constexpr uint32_t kFarThunk = kCode + 0x2000;  ///< identity-mapped, another page
constexpr uint32_t kShared = 0x800000;          ///< linear page outside the identity map (PDE 2)
constexpr uint32_t kFrameA = 0x700000, kFrameB = 0x701000;
constexpr uint32_t kSum = kData, kSum2 = kData + 4, kCount = kData + 8, kLast = kData + 12, kEsp = kData + 16;
constexpr uint32_t kRounds = 200;  ///< even: the address-space loop ends where it started
constexpr uint32_t kGlobal = 0x100;

/// `mov reg, [esp]; ret` = 8B /r 24 C3, the pattern the translator looks for.
void load_thunk(BtMachine& m, uint32_t phys, unsigned reg = 3) {
  const uint8_t bytes[] = {0x8B, static_cast<uint8_t>(0x04 | reg << 3), 0x24, 0xC3};
  m.poke(phys, bytes, sizeof bytes);
}
const std::vector<uint8_t> kMovEbx7 = {0xBB, 0x07, 0, 0, 0, 0xC3};  ///< mov ebx, 7; ret
const std::vector<uint8_t> kEcxThunk = {0x8B, 0x0C, 0x24, 0xC3};    ///< mov ecx, [esp]; ret

/// The caller at kCode: `head`, then kRounds times `body` (kCount counts down from kRounds
/// to 1 while it runs), then hlt (CPL 3: #GP, recorded). Starts the vCPU there.
std::unique_ptr<GuestCode> load_caller(BtMachine& m, bool user, const Emit& body, const Emit& head = {}) {
  auto c = std::make_unique<GuestCode>(kCode);
  auto& a = c->a();
  const Label top = a.newLabel();
  a.mov(x86::dword_ptr(kCount), kRounds);
  if (head) head(a);
  a.bind(top);
  body(a);
  a.dec(x86::dword_ptr(kCount));
  a.jnz(top);
  a.hlt();
  m.load(*c);
  if (c->bytes().size() > kNearThunk - kCode) ADD_FAILURE() << "the caller overlaps kNearThunk";
  m.start(kCode, kStackTop, user);
  return c;
}

/// Counts the calls the engine translated inline (each: one translated instruction that
/// retires three), so that a test cannot pass merely because nothing was inlined.
std::shared_ptr<uint64_t> count_inlined(BtMachine& m) {
  auto n = std::make_shared<uint64_t>(0);
  m.engine().set_block_observer(
      [n](const Block& b, std::span<const uint8_t>) { *n += (b.guest_insns - b.pc_map.size()) / 2; });
  return n;
}

/// EBX = ECX = 0, `call target` (binding `after` at its return address), then kSum += EBX
/// and kSum2 += ECX: what the thunk, or the code that replaced it, left in either.
void emit_call_summing(x86::Assembler& a, uint32_t target, Label& after) {
  after = a.newLabel();
  a.xor_(x86::ebx, x86::ebx);
  a.xor_(x86::ecx, x86::ecx);
  a.call(Imm(target));
  a.bind(after);
  a.add(x86::dword_ptr(kSum), x86::ebx);
  a.add(x86::dword_ptr(kSum2), x86::ecx);
}

/// A parameter: `sel` (the thunk's register, or the rewrite variant), the thunk on another
/// page than the caller's or on the same, CPL 3 or 0.
struct Case {
  unsigned sel;
  bool far, user;
};
std::vector<Case> cases(std::initializer_list<unsigned> sels) {
  std::vector<Case> v;
  for (unsigned s : sels)
    for (bool far : {false, true})
      for (bool user : {false, true}) v.push_back({s, far, user});
  return v;
}
std::string suffix(const Case& c) {
  return std::string(c.far ? "OtherPage" : "SamePage") + (c.user ? "User" : "Kernel");
}

// ---- 1. the thunk for each register, on the caller's page and on another ----

class PcThunkLoop : public ::testing::TestWithParam<Case> {};

TEST_P(PcThunkLoop, RegisterAndStackSlotGetTheReturnAddress) {
  const Case& p = GetParam();
  const x86::Gp reg = x86::gpd(p.sel);
  TwoRuns runs;
  uint32_t ret_addr = 0;
  runs.setup([&](BtMachine& m) {
    load_thunk(m, p.far ? kFarThunk : kNearThunk, p.sel);
    Label after;
    auto c = load_caller(m, p.user, [&](x86::Assembler& a) {
      after = a.newLabel();
      a.call(Imm(p.far ? kFarThunk : kNearThunk));
      a.bind(after);
      a.add(x86::dword_ptr(kSum), reg);
      a.mov(x86::dword_ptr(kLast), reg);
      a.mov(x86::dword_ptr(kEsp), x86::esp);
    });
    ret_addr = c->addr(after);
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kSum), kRounds * ret_addr);
  EXPECT_EQ(m.peek32(kLast), ret_addr);
  EXPECT_EQ(m.peek32(kEsp), kStackTop) << "ESP after call + ret";
  EXPECT_EQ(m.peek32(kStackTop - 4), ret_addr) << "the call's push stays below ESP";
  EXPECT_GT(*inlined, 0u) << "the call was not inlined";
}

std::string loop_name(const ::testing::TestParamInfo<Case>& p) {
  static const char* const kRegs[] = {"Eax", "Ecx", "Edx", "Ebx", "", "Ebp", "Esi", "Edi"};
  return kRegs[p.param.sel] + suffix(p.param);
}
const std::vector<Case> kLoopCases = cases({0, 1, 2, 3, 5, 6, 7});  // every register but ESP
INSTANTIATE_TEST_SUITE_P(PcThunk, PcThunkLoop, ::testing::ValuesIn(kLoopCases), loop_name);

// ---- 2. mov esp, [esp]; ret is no PC thunk ----

/// ESP = return address, then ret pops the dword stored there: the caller puts the address
/// of `landing` right after the call, so ret lands there with ESP = landing.
void esp_thunk(bool user) {
  TwoRuns runs;
  uint32_t ret_addr = 0, landing_addr = 0;
  runs.setup([&](BtMachine& m) {
    load_thunk(m, kFarThunk, 4);
    Label after, landing;
    auto c = load_caller(m, user, [&](x86::Assembler& a) {
      after = a.newLabel(), landing = a.newLabel();
      a.mov(x86::esp, kStackTop);
      a.call(Imm(kFarThunk));
      a.bind(after);
      a.embedLabel(landing);
      a.bind(landing);
      a.mov(x86::dword_ptr(kEsp), x86::esp);
      a.add(x86::dword_ptr(kSum), x86::esp);
      a.mov(x86::esp, kStackTop);
    });
    ret_addr = c->addr(after);
    landing_addr = c->addr(landing);
  });
  ASSERT_EQ(runs.bt.peek32(ret_addr), landing_addr);
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kEsp), landing_addr) << "ESP = return address + 4 after ret";
  EXPECT_EQ(m.peek32(kSum), kRounds * landing_addr);
  EXPECT_EQ(m.peek32(kStackTop - 4), ret_addr);
  EXPECT_EQ(*inlined, 0u) << "reg == esp must not be inlined";
}
TEST(PcThunk, EspThunkIsNotInlinedKernel) { esp_thunk(false); }
TEST(PcThunk, EspThunkIsNotInlinedUser) { esp_thunk(true); }

// ---- 3. the guest rewrites the thunk after it was inlined ----

struct SmcCase {
  const char* name;
  std::vector<uint8_t> code;                       ///< the thunk's new bytes
  std::function<uint32_t(uint32_t ret)> ebx, ecx;  ///< what they leave in EBX/ECX (both zeroed before)
};
const SmcCase kSmcCases[] = {
    {"Constant",
     {0xBB, 0x78, 0x56, 0x34, 0x12, 0xC3},
     [](uint32_t) { return 0x12345678u; },
     [](uint32_t) { return 0u; }},
    {"PlusOne",
     {0x8B, 0x1C, 0x24, 0x83, 0xC3, 0x01, 0xC3},
     [](uint32_t r) { return r + 1; },
     [](uint32_t) { return 0u; }},
    // Still a PC thunk, for another register: inlined again, now with ECX.
    {"OtherRegister", kEcxThunk, [](uint32_t) { return 0u; }, [](uint32_t r) { return r; }},
};

class PcThunkRewrite : public ::testing::TestWithParam<Case> {};

/// kRounds rounds of `call T`; right after the call of round kRounds/2, the caller's own
/// block stores the new bytes over T, whose old code the block inlined.
TEST_P(PcThunkRewrite, NewThunkCodeTakesEffect) {
  const Case& p = GetParam();
  const SmcCase& sc = kSmcCases[p.sel];
  const uint32_t thunk = p.far ? kFarThunk : kNearThunk;
  TwoRuns runs;
  uint32_t ret_addr = 0;
  runs.setup([&](BtMachine& m) {
    load_thunk(m, thunk);
    Label after;
    auto c = load_caller(m, p.user, [&](x86::Assembler& a) {
      const Label skip = a.newLabel();
      emit_call_summing(a, thunk, after);
      a.cmp(x86::dword_ptr(kCount), kRounds / 2);
      a.jne(skip);
      for (size_t i = 0; i < sc.code.size(); ++i) a.mov(x86::byte_ptr(thunk + static_cast<int32_t>(i)), sc.code[i]);
      a.bind(skip);
    });
    ret_addr = c->addr(after);
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  const uint32_t before = kRounds / 2 + 1, later = kRounds - before;
  EXPECT_EQ(m.peek32(kSum), before * ret_addr + later * sc.ebx(ret_addr)) << "EBX summed";
  EXPECT_EQ(m.peek32(kSum2), later * sc.ecx(ret_addr)) << "ECX summed";
  EXPECT_GT(*inlined, 0u);
  EXPECT_GT(m.tstats().invalidated_blocks, 0u);
}

const std::vector<Case> kRewriteCases = cases({0, 1, 2});
INSTANTIATE_TEST_SUITE_P(PcThunk, PcThunkRewrite, ::testing::ValuesIn(kRewriteCases),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return kSmcCases[p.param.sel].name + suffix(p.param);
                         });

// ---- 4. the thunk's linear page maps other code in another address space ----

/// Space A maps kShared to a real EBX thunk, space B to `b_code`; the caller page is
/// shared. int 0x80 toggles CR3 every round, so rounds alternate B, A, B, ...
void thunk_per_space(const std::vector<uint8_t>& b_code, uint32_t b_ebx, bool b_ecx_is_ret, bool user) {
  TwoRuns runs;
  uint32_t ret_addr = 0;
  runs.setup([&](BtMachine& m) {
    const uint32_t dir_b = m.two_spaces(kShared, kFrameA, kFrameB);
    load_thunk(m, kFrameA);
    m.poke(kFrameB, b_code.data(), b_code.size());
    Label after;
    auto c = load_caller(m, user, [&](x86::Assembler& a) {
      emit_call_summing(a, kShared, after);
      a.int_(kServiceVector);
    });
    ret_addr = c->addr(after);
    m.cpu().cr3 = dir_b;  // so that the loop's block is first translated (and inlined) in A
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  EXPECT_EQ(m.peek32(kSum), kRounds / 2 * ret_addr + kRounds / 2 * b_ebx) << "EBX: A's thunk, then B's code";
  EXPECT_EQ(m.peek32(kSum2), b_ecx_is_ret ? kRounds / 2 * ret_addr : 0u) << "ECX";
  EXPECT_GT(*inlined, 0u);
}
TEST(PcThunk, OtherSpaceMapsOtherCodeKernel) { thunk_per_space(kMovEbx7, 7, false, false); }
TEST(PcThunk, OtherSpaceMapsOtherCodeUser) { thunk_per_space(kMovEbx7, 7, false, true); }
TEST(PcThunk, OtherSpaceMapsThunkForOtherRegisterKernel) { thunk_per_space(kEcxThunk, 0, true, false); }
TEST(PcThunk, OtherSpaceMapsThunkForOtherRegisterUser) { thunk_per_space(kEcxThunk, 0, true, true); }

// ---- 5. the call's push faults (CPL 3 only: at CPL 0 the #PF frame would go to the same stack) ----

/// The last of kRounds calls runs with ESP at the top of a page that is not present (or
/// read-only): #PF at the call, CR2 = ESP - 4, EBX untouched; the handler maps the page
/// writable and the retried call completes.
constexpr uint32_t kBadStack = kData + 0x20000, kBadPage = kBadStack - 0x1000;
void push_faults(bool present, uint32_t error) {
  TwoRuns runs;
  uint32_t ret_addr = 0, call_addr = 0;
  runs.setup([&](BtMachine& m) {
    load_thunk(m, kFarThunk);
    Label call, after;
    auto head = [](x86::Assembler& a) {
      a.mov(x86::ebp, kStackTop);
      a.mov(x86::edi, kBadStack);
    };
    auto c = load_caller(
        m, true,
        [&](x86::Assembler& a) {
          call = a.newLabel(), after = a.newLabel();
          a.mov(x86::esp, x86::ebp);
          a.cmp(x86::dword_ptr(kCount), 1);
          a.cmove(x86::esp, x86::edi);  // same block, other stack: the inlined push faults
          a.xor_(x86::ebx, x86::ebx);
          a.bind(call);
          a.call(Imm(kFarThunk));
          a.bind(after);
          a.add(x86::dword_ptr(kSum), x86::ebx);
        },
        head);
    ret_addr = c->addr(after);
    call_addr = c->addr(call);
    m.make_hole(kBadPage, present ? kBadPage | kPresent | kUser : 0);
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), 2u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.eip, call_addr) << "the fault belongs to the call";
  EXPECT_EQ(pf.cr2, kBadStack - 4);
  EXPECT_EQ(pf.error, error);
  EXPECT_EQ(pf.outer_esp, kBadStack) << "ESP unchanged by the faulting call";
  EXPECT_EQ(pf.ebx, 0u) << "the thunk's register changed before the push";
  EXPECT_EQ(m.record(1).vector, 13u);
  EXPECT_EQ(m.peek32(kSum), kRounds * ret_addr);
  EXPECT_EQ(m.peek32(kBadStack - 4), ret_addr) << "the retried push";
  EXPECT_GT(*inlined, 0u);
  EXPECT_GE(m.engine().fault_stats().page_faults, 1u) << "the #PF did not come from translated code";
}
TEST(PcThunk, PushToNotPresentStackFaultsUser) { push_faults(false, kUser | kWritable); }
TEST(PcThunk, PushToReadOnlyStackFaultsUser) { push_faults(true, kUser | kWritable | kPresent); }

// ---- 6. the thunk's page goes away while the caller block stays ----

/// Halfway, int 0x80 makes kShared unusable (PTE + INVLPG). The next entry of the caller
/// block must not run the inlined thunk: the call happens, then the fetch at kShared
/// raises #PF; the handler restores the PTE and the thunk runs.
void thunk_page_gone(bool user, uint32_t gone_pte, uint32_t error) {
  TwoRuns runs;
  uint32_t ret_addr = 0;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kShared, kFrameA, kUserRw);
    load_thunk(m, kFrameA);
    const uint32_t pte = m.pte_addr(kPageDir, kShared);
    m.install_service([&](x86::Assembler& a) {
      const Label done = a.newLabel();
      a.cmp(x86::dword_ptr(kCount), kRounds / 2);
      a.jne(done);
      a.mov(x86::dword_ptr(pte), gone_pte);
      a.invlpg(x86::ptr(kShared));
      a.bind(done);
    });
    m.set_fix(pte, kFrameA | kUserRw);
    m.set_action(14, HandlerAction::FixPte);
    Label after;
    auto c = load_caller(m, user, [&](x86::Assembler& a) {
      after = a.newLabel();
      a.xor_(x86::ebx, x86::ebx);
      a.call(Imm(kShared));
      a.bind(after);
      a.add(x86::dword_ptr(kSum), x86::ebx);
      a.int_(kServiceVector);
    });
    ret_addr = c->addr(after);
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  BtMachine& m = runs.bt;
  ASSERT_EQ(m.record_count(), user ? 2u : 1u);
  const ExceptionRecord pf = m.record(0);
  EXPECT_EQ(pf.vector, 14u);
  EXPECT_EQ(pf.eip, kShared) << "the call completed; the fetch of the thunk faulted";
  EXPECT_EQ(pf.cr2, kShared);
  EXPECT_EQ(pf.error, error);
  EXPECT_EQ(pf.ebx, 0u) << "the stale inlined thunk ran";
  if (user) {
    EXPECT_EQ(pf.outer_esp, kStackTop - 4) << "the call pushed";
  }
  EXPECT_EQ(m.peek32(kSum), kRounds * ret_addr);
  EXPECT_GT(*inlined, 0u);
}
TEST(PcThunk, ThunkPageNotPresentAtReentryKernel) { thunk_page_gone(false, 0, 0); }
TEST(PcThunk, ThunkPageNotPresentAtReentryUser) { thunk_page_gone(true, 0, kUser); }
TEST(PcThunk, ThunkPageSupervisorOnlyAtReentryUser) {
  thunk_page_gone(true, kFrameA | kPresent | kWritable, kUser | kPresent);
}

// ---- 7. the TLB flush that remaps the thunk runs in the caller's own block ----

/// Each round, in one block: kShared -> frame B (`mov ebx, 7; ret`), flush, call kShared,
/// back to frame A (the real thunk), flush. The block is translated while kShared maps A,
/// so the call is inlined; the flush before it (a callout at CPL 0, after which the block
/// goes on) must keep the block from running A's thunk where B's code is now mapped.
void flush_in_caller_block(bool cr3_reload) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.map_page(kPageDir, kShared, kFrameA, kUserRw);
    load_thunk(m, kFrameA);
    m.poke(kFrameB, kMovEbx7.data(), kMovEbx7.size());
    const uint32_t pte = m.pte_addr(kPageDir, kShared);
    // A global caller page keeps its code TLB entry across the CR3 reload.
    if (cr3_reload) m.set_pte(kPageDir, kCode, kCode | kUserRw | kGlobal);
    auto flip_and_flush = [&](x86::Assembler& a) {
      a.xor_(x86::dword_ptr(pte), kFrameA ^ kFrameB);
      if (cr3_reload) {
        a.mov(x86::eax, x86::cr3);
        a.mov(x86::cr3, x86::eax);
      } else {
        a.invlpg(x86::ptr(kShared));
      }
    };
    load_caller(m, false, [&](x86::Assembler& a) {
      flip_and_flush(a);
      a.xor_(x86::ebx, x86::ebx);
      a.call(Imm(kShared));
      a.add(x86::dword_ptr(kSum), x86::ebx);
      flip_and_flush(a);
    });
    if (cr3_reload) m.cpu().cr4 |= cr4::PGE;
  });
  const auto inlined = count_inlined(runs.bt);
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_GT(*inlined, 0u) << "translated while kShared maps A: the call should be inlined";
  EXPECT_EQ(runs.bt.peek32(kSum), kRounds * 7) << "every call must run frame B's mov ebx, 7";
}
TEST(PcThunk, InvlpgInTheCallersBlockRemapsTheThunk) { flush_in_caller_block(false); }
TEST(PcThunk, Cr3ReloadInTheCallersBlockRemapsTheThunkGlobalCaller) { flush_in_caller_block(true); }

}  // namespace
}  // namespace vmm86::bttest
