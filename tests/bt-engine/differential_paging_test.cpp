// The differential test (tests/differential/) with paging on, at CPL 3 and at CPL 0: the
// harness's generated programs run over identity-mapped pages, on the BT engine and on the
// interpreter alone, and must end in the same registers, memory and exception records.
//
// What the seed adds to the harness's program:
// - a hole: a data or stack page made not present, read-only or supervisor-only, so that
//   #PF happens in translated code; a ring-0 handler records every exception and halts, or
//   (some seeds) maps the page and irets so the instruction is retried;
// - for half of the programs, a prefix of cli/sti/pushf/popf that flips random EFLAGS bits
//   (status, DF, AC, NT, IOPL, IF, sometimes TF, which single-steps into #DB);
// - at CPL 0, for half of the programs, an interrupt request pending from the start (with
//   IF=0), so that the boundary where the program's cli/sti/popf let it in is compared too.
// At CPL 3 the programs' final hlt raises #GP (recorded); at CPL 0 it ends the run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "tests/differential/harness.h"
#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;
using difftest::kCodeBase;
using difftest::kDataBase;
using difftest::kDataSize;
using difftest::kFsBase;
using difftest::kStackCheck;
using difftest::Outcome;
using difftest::Program;

constexpr uint32_t kFsIndex = kUserFs >> 3;
constexpr uint32_t kPrefixBase = 0x30000;  ///< free, between the program's code and data
constexpr uint8_t kIrqVector = 0x20;       ///< a recording stub of the fixture

/// What a seed does to the program's pages before it runs.
enum class Hole : uint8_t {
  None,            ///< everything present
  DataNotPresent,  ///< the ebx/ebp/[disp32] data page
  DataReadOnly,
  DataSupervisor,       ///< (CPL 3 only)
  StackNotPresent,      ///< the page right below the initial ESP (CPL 3 only: at CPL 0 #PF could not push)
  FsPageNotPresent,     ///< reached only through fs: (the interpreter's path)
  DataNotPresentFixed,  ///< ... and the #PF handler maps it and retries
  DataReadOnlyFixed,
  Count,
};

const char* to_string(Hole h) {
  static const char* const names[] = {"none",
                                      "data not present",
                                      "data read-only",
                                      "data supervisor-only",
                                      "stack not present",
                                      "fs page not present",
                                      "data not present, fixed",
                                      "data read-only, fixed"};
  return names[static_cast<size_t>(h)];
}

/// One seed's variation of the harness's program.
struct Variant {
  bool user;
  Hole hole;
  bool prefix;
  bool irq_pending;
};

std::string describe(const Variant& v) {
  std::string s = std::string(v.user ? "CPL 3" : "CPL 0") + ", hole: " + to_string(v.hole);
  if (v.prefix) s += ", flags prefix";
  if (v.irq_pending) s += ", interrupt pending";
  return s;
}

/// A few of: popf flipping random bits (pushfd; xor [esp], mask; popfd), cli, sti,
/// pushfd; pop edi — then pushfd; pop edi; jmp kCodeBase. EDI is a register the
/// generated programs write freely.
void load_flags_prefix(BtMachine& m, uint64_t seed, bool user) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull);
  constexpr uint32_t kFlippable = flags::Status | flags::DF | flags::AC | flags::NT | flags::IF | flags::IOPL;
  GuestCode c(kPrefixBase);
  auto& a = c.a();
  const int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    switch (rng() % 8) {
      case 4:
      case 5:
        // At CPL 3 with IOPL 0 these are #GP, which ends the run: keep them rare there.
        if (user && rng() % 4 != 0) break;
        if (rng() & 1) {
          a.sti();
        } else {
          a.cli();
        }
        break;
      case 6:
        a.pushfd();
        a.pop(x86::edi);
        break;
      case 7: a.nop(); break;
      default: {
        uint32_t mask = static_cast<uint32_t>(rng()) & kFlippable;
        if (rng() % 8 == 0) mask |= flags::TF;
        a.pushfd();
        a.xor_(x86::dword_ptr(x86::esp), mask);
        a.popfd();
        break;
      }
    }
  }
  a.pushfd();
  a.pop(x86::edi);
  a.jmp(Imm(kCodeBase));
  m.load(c);
}

void prepare(BtMachine& m, const Program& p, const Variant& v) {
  m.poke(kCodeBase, p.code.data(), p.code.size());
  m.poke(kDataBase, p.data.data(), p.data.size());
  if (v.prefix) load_flags_prefix(m, p.seed, v.user);
  m.set_descriptor(kFsIndex, kFsBase, 0xFFFFF, v.user ? 0xF3 : 0x93, 0xC);
  const uint32_t data_page = kDataBase, stack_page = difftest::kStackTop - kPageSize;
  switch (v.hole) {
    case Hole::None: break;
    case Hole::DataNotPresent:
    case Hole::DataNotPresentFixed: m.set_pte(kPageDir, data_page, 0); break;
    case Hole::DataReadOnly:
    case Hole::DataReadOnlyFixed: m.set_pte(kPageDir, data_page, data_page | kPresent | kUser); break;
    case Hole::DataSupervisor: m.set_pte(kPageDir, data_page, data_page | kPresent | kWritable); break;
    case Hole::StackNotPresent: m.set_pte(kPageDir, stack_page, 0); break;
    case Hole::FsPageNotPresent: m.set_pte(kPageDir, kFsBase, 0); break;
    case Hole::Count: break;
  }
  if (v.hole == Hole::DataNotPresentFixed || v.hole == Hole::DataReadOnlyFixed) {
    m.set_fix(m.pte_addr(kPageDir, data_page), data_page | kUserRw);
    m.set_action(14, HandlerAction::FixPte);
  }
  const CpuState& init = p.initial;
  // With a request pending, start with IF=0: the program's own sti/popf pick the boundary.
  const uint32_t eflags = v.irq_pending ? init.eflags & ~flags::IF : init.eflags;
  m.start(v.prefix ? kPrefixBase : init.eip, init.reg(Gpr::Esp), v.user, true, eflags);
  CpuState& cpu = m.cpu();
  cpu.gpr = init.gpr;
  cpu.sreg(SegReg::Fs) = SegmentCache{v.user ? kUserFs : static_cast<uint16_t>(kUserFs & ~3), kFsBase, 0xFFFFFFFF,
                                      static_cast<uint16_t>(v.user ? 0xC0F3 : 0xC093)};
  if (v.irq_pending) m.raise_irq(kIrqVector);
}

Variant variant_of(int i, bool user) {
  const auto n = static_cast<unsigned>(i);
  auto hole = static_cast<Hole>(n % static_cast<unsigned>(Hole::Count));
  if (!user && (hole == Hole::DataSupervisor || hole == Hole::StackNotPresent)) hole = Hole::None;
  const unsigned rest = n / static_cast<unsigned>(Hole::Count);
  // A pending request matters where the program can enable interrupts: at CPL 0.
  return Variant{user, hole, rest % 2 != 0, !user && rest % 4 >= 2};
}

Outcome snapshot(BtMachine& m, RunEnd end) {
  Outcome o;
  o.completed = end == RunEnd::Halted;
  if (!o.completed) o.error = std::string(to_string(end)) + " " + m.detail();
  o.cpu = m.cpu();
  o.data.resize(kDataSize);
  (void)m.mem().read(GuestPhys{kDataBase}, o.data.data(), kDataSize);
  o.stack.resize(2 * kStackCheck);
  (void)m.mem().read(GuestPhys{difftest::kStackTop - kStackCheck}, o.stack.data(), 2 * kStackCheck);
  o.translated_insns = m.ctx().retired;
  return o;
}

int program_count() {
  const char* env = std::getenv("VMM86_DIFF_PAGING_COUNT");
  return env ? std::atoi(env) : 800;
}

class DifferentialPaging : public ::testing::TestWithParam<bool> {};

TEST_P(DifferentialPaging, TranslatorMatchesInterpreter) {
  const bool user = GetParam();
  const int count = program_count();
  int failures = 0;
  uint64_t translated = 0, page_faults_in_translated_code = 0;
  uint64_t by_vector[kStubVectors] = {};
  for (int i = 0; i < count && failures < 5; ++i) {
    const Program p = difftest::generate((user ? 0xCAFE0000u : 0xC0DE0000u) + static_cast<uint64_t>(i), 24);
    const Variant v = variant_of(i, user);
    BtMachine ref, bt;
    prepare(ref, p, v);
    prepare(bt, p, v);
    const Outcome want = snapshot(ref, ref.run_interp(1'000'000));
    const Outcome got = snapshot(bt, bt.run_bt(std::chrono::seconds(10)));
    translated += got.translated_insns;
    page_faults_in_translated_code += bt.engine().fault_stats().page_faults;
    for (uint32_t r = 0; r < ref.record_count() && r < kMaxRecords; ++r) {
      ++by_vector[ref.record(r).vector % kStubVectors];
    }
    std::string diff = difftest::compare(want, got) + compare_records(bt, ref);
    if (bt.cpu().cr2 != ref.cpu().cr2) diff += "cr2 differs\n";
    if (bt.acknowledged != ref.acknowledged) diff += "interrupts acknowledged differ\n";
    if (!diff.empty()) {
      ++failures;
      std::string listing;
      for (const auto& line : p.listing) listing += "  " + line + "\n";
      ADD_FAILURE() << "seed " << p.seed << " (" << describe(v) << ") diverges:\n" << diff << "program:\n" << listing;
    }
  }
  EXPECT_GT(translated, static_cast<uint64_t>(count) * 5) << "too little ran in translated code";
  EXPECT_GT(page_faults_in_translated_code, static_cast<uint64_t>(count) / 10) << "few #PF came from translated code";
  EXPECT_GT(by_vector[14], 0u);
  EXPECT_GT(by_vector[1], 0u) << "no single-step trap";
  if (user) {
    EXPECT_GT(by_vector[13], 0u);
  } else {
    EXPECT_GT(by_vector[kIrqVector], 0u) << "no interrupt delivered";
  }
  RecordProperty("programs", count);
  RecordProperty("gp", static_cast<int>(by_vector[13]));
  RecordProperty("pf", static_cast<int>(by_vector[14]));
  RecordProperty("db", static_cast<int>(by_vector[1]));
  RecordProperty("irq", static_cast<int>(by_vector[kIrqVector]));
  RecordProperty("pf_in_translated_code", static_cast<int>(page_faults_in_translated_code));
}

INSTANTIATE_TEST_SUITE_P(BtEngine, DifferentialPaging, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "User" : "Kernel"; });

}  // namespace
}  // namespace vmm86::bttest
