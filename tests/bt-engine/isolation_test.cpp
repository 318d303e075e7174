// Isolation, proven over every memory-touching instruction form rather than the forms we
// thought of: the forms come from decoding every opcode of the one- and two-byte maps with
// every ModRM (and a spread of SIBs and prefixes) through the project's decoder, keeping
// each distinct (mnemonic, operand shape) whose operands (explicit or hidden) touch memory.
// Each form runs from translated code at CPL 0 and CPL 3 with every guest register pointing
// at low guest addresses, while the host's low 4 GiB (where an access that lost its gs:
// window would land) is a PROT_NONE sentinel: a fault there is an escape. Each translated
// block's host code is also checked statically (tests/host_code_check.h), which catches what
// a sentinel cannot: RIP-relative or sign-extended host addresses.
//
// The rest are regressions for the crashes and guest-internal protection bugs found by
// hostile guests, each compared with the interpreter.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "decoder/decoder.h"
#include "tests/host_code_check.h"
#include "tests/support/bt_machine.h"
#include "vmm/engine/fault_handler.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

// ---- the sentinel ----

constexpr uintptr_t kSentinelLow = 0x10000;  // vm.mmap_min_addr
constexpr uintptr_t kSentinelHigh = uintptr_t{1} << 32;
std::atomic<uint64_t> g_escapes{0};
std::atomic<uintptr_t> g_last_escape{0};
struct sigaction g_monitor_handler {};

void on_segv(int sig, siginfo_t* si, void* uc) {
  const auto addr = reinterpret_cast<uintptr_t>(si->si_addr);
  if (addr >= kSentinelLow && addr < kSentinelHigh) {
    g_escapes.fetch_add(1);
    g_last_escape.store(addr);
  }
  g_monitor_handler.sa_sigaction(sig, si, uc);  // the monitor's handler decides what happens
}

/// Reserves the host's low 4 GiB and chains a counting SIGSEGV handler in front of the
/// monitor's. False when the range is not free (then the runtime half cannot run).
bool install_sentinel() {
  static const bool installed = [] {
    if (!install_fault_handler()) return false;  // the handler to chain to
    void* p = mmap(reinterpret_cast<void*>(kSentinelLow), kSentinelHigh - kSentinelLow, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != reinterpret_cast<void*>(kSentinelLow)) return false;
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, &g_monitor_handler) == 0 && (g_monitor_handler.sa_flags & SA_SIGINFO);
  }();
  return installed;
}

// ---- the forms ----

struct Form {
  std::vector<uint8_t> bytes;
  std::string name;
};

bool touches_memory(const Instruction& insn) {
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_MEM) return true;
  }
  return false;
}

/// What makes two encodings the same form for translation: mnemonic, sizes, prefixes that
/// matter, and per operand its kind, visibility, size, access and addressing shape.
std::string form_key(const Instruction& insn) {
  std::ostringstream k;
  k << ZydisMnemonicGetString(insn.mnemonic()) << " o" << int{insn.operand_size()} << " a" << int{insn.address_size()}
    << " map" << int{insn.raw.opcode_map} << " op" << int{insn.raw.opcode} << " rep" << int(insn.rep_prefix())
    << " lock" << insn.has_lock();
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    k << " [" << int{op.type} << int{op.visibility} << ":" << op.size << ":" << int{op.actions};
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
      k << " m" << int{op.mem.type} << (op.mem.base != ZYDIS_REGISTER_NONE) << (op.mem.index != ZYDIS_REGISTER_NONE)
        << int{op.mem.scale} << ZydisRegisterGetString(op.mem.segment) << (op.mem.base == ZYDIS_REGISTER_ESP)
        << (op.mem.base == ZYDIS_REGISTER_EBP);
    }
    k << "]";
  }
  return k.str();
}

/// Every distinct memory-touching form the guest decoder accepts.
const std::vector<Form>& memory_forms() {
  static const std::vector<Form> forms = [] {
    const Decoder decoder(CodeSize::Bits32);
    const std::vector<std::vector<uint8_t>> prefix_sets = {
        {},     {0x66}, {0xF2}, {0xF3},       {0x67},       {0x64},       {0x65},       {0x2E},       {0x26},
        {0x36}, {0x3E}, {0xF0}, {0x66, 0xF3}, {0x67, 0xF3}, {0x67, 0x66}, {0x64, 0xF3}, {0x66, 0xF2},
    };
    static constexpr uint8_t kSibs[] = {0x00, 0x24, 0x25, 0x65, 0xE5, 0x1C, 0x8B};
    // disp/imm bytes: a disp32 of 0x00200800 (guest data), small immediates.
    static constexpr uint8_t kTail[] = {0x00, 0x08, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    std::map<std::string, Form> unique;
    for (const auto& prefixes : prefix_sets) {
      for (int two_byte = 0; two_byte < 2; ++two_byte) {
        for (int opcode = 0; opcode < 256; ++opcode) {
          if (!two_byte && opcode == 0x0F) continue;
          for (int modrm = 0; modrm < 256; ++modrm) {
            const bool has_sib = (modrm >> 6) != 3 && (modrm & 7) == 4;
            for (uint8_t sib : kSibs) {
              std::vector<uint8_t> bytes = prefixes;
              if (two_byte) bytes.push_back(0x0F);
              bytes.push_back(static_cast<uint8_t>(opcode));
              bytes.push_back(static_cast<uint8_t>(modrm));
              if (has_sib) bytes.push_back(sib);
              bytes.insert(bytes.end(), std::begin(kTail), std::end(kTail));
              Instruction insn;
              if (decoder.decode(bytes, &insn) == DecodeStatus::Ok && insn.classes != InsnClass::Unclassified &&
                  touches_memory(insn)) {
                bytes.resize(insn.length());
                const std::string key = form_key(insn);
                if (!unique.count(key)) unique.emplace(key, Form{bytes, key});
              }
              if (!has_sib) break;
            }
          }
        }
      }
    }
    std::vector<Form> out;
    for (auto& [key, form] : unique) out.push_back(std::move(form));
    return out;
  }();
  return forms;
}

TEST(Isolation, EnumerationCoversTheImplicitOperandForms) {
  // The forms the issue names must be among what the enumeration found by itself.
  std::set<std::string> mnemonics;
  for (const Form& f : memory_forms()) mnemonics.insert(f.name.substr(0, f.name.find(' ')));
  for (const char* m :
       {"xlat",   "maskmovq", "maskmovdqu", "movsb", "cmpsd",  "scasw",  "lodsb",   "stosd",     "insb",    "outsw",
        "push",   "pop",      "enter",      "leave", "pushad", "popad",  "bound",   "cmpxchg8b", "lds",     "les",
        "lfs",    "lgs",      "lss",        "lgdt",  "lidt",   "sgdt",   "sidt",    "fxsave",    "fxrstor", "fnsave",
        "frstor", "fldenv",   "fnstenv",    "fbld",  "fbstp",  "movnti", "clflush", "call",      "ret",     "iretd"}) {
    EXPECT_TRUE(mnemonics.count(m)) << m;
  }
  EXPECT_GT(memory_forms().size(), 1000u);
  std::printf("%zu memory-touching forms (%zu mnemonics)\n", memory_forms().size(), mnemonics.size());
}

class EveryMemoryForm : public ::testing::TestWithParam<bool> {};

TEST_P(EveryMemoryForm, StaysInTheWindow) {
  const bool user = GetParam();
  BtMachine m;
  if (!install_sentinel()) GTEST_SKIP() << "the host's low 4 GiB is not free for the sentinel";
  std::string static_problems;
  size_t blocks_checked = 0;
  m.engine().set_block_observer([&](const Block& block, std::span<const uint8_t>) {
    ++blocks_checked;
    const std::string p = testing_support::unwindowed_accesses(block);
    if (!p.empty() && static_problems.size() < 4000) {
      static_problems += "block at " + std::to_string(block.key.eip) + ":\n" + p;
    }
  });
  const std::vector<Form>& forms = memory_forms();
  constexpr uint32_t kSlot = 32;
  std::vector<std::string> escaped;
  uint32_t slot = 0;
  for (const Form& form : forms) {
    const uint32_t eip = kCode + (slot++ % ((kData - kCode) / kSlot)) * kSlot;
    std::vector<uint8_t> code = form.bytes;
    code.push_back(0xF4);  // hlt (#GP at CPL 3: the handler halts)
    m.poke(eip, code.data(), code.size());
    m.start(eip, kStackTop - 0x400, user);
    static constexpr uint32_t kRegs[] = {0x00200010, 3, 0x00200030, 0x00200040, 0, 0x00203000, 0x00201000, 0x00202000};
    for (unsigned r = 0; r < 8; ++r) {
      if (r != 4) m.cpu().gpr[r] = kRegs[r];
    }
    m.cpu().cr4 |= cr4::OSFXSR;
    const uint64_t before = g_escapes.load();
    (void)m.run_bt(std::chrono::milliseconds(300));
    if (g_escapes.load() != before) escaped.push_back(form.name);
  }
  EXPECT_TRUE(escaped.empty()) << escaped.size() << " forms reached host memory outside the window, e.g. "
                               << escaped.front() << " (host address " << std::hex << g_last_escape.load() << ")";
  EXPECT_EQ(static_problems, "");
  EXPECT_GT(blocks_checked, forms.size() / 2) << "most forms should have run translated";
}

INSTANTIATE_TEST_SUITE_P(BtEngine, EveryMemoryForm, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Cpl3" : "Cpl0"; });

// ---- regressions ----

/// Raw guest bytes followed by a marker store and hlt, at CPL `user`.
void load_bytes(BtMachine& m, std::initializer_list<uint8_t> bytes, bool user) {
  GuestCode c(kCode);
  for (uint8_t b : bytes) c.a().db(b);
  c.a().mov(x86::eax, 0x600D);
  c.a().hlt();
  m.load(c);
  m.start(kCode, kStackTop, user);
}

class HintNops : public ::testing::TestWithParam<bool> {};

TEST_P(HintNops, EveryNopFormRunsAsANop) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    load_bytes(m, {0xF3, 0x0F, 0x1E, 0xFB,                          // endbr32
                   0xF3, 0x0F, 0x1E, 0xFA,                          // endbr64
                   0x0F, 0x1F, 0x00,                                // nop [eax]
                   0x0F, 0x1F, 0x40, 0x00,                          // nop [eax+0]
                   0x0F, 0x1F, 0x44, 0x00, 0x00,                    // nop [eax+eax+0]
                   0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00,              // nop word [eax+eax+0]
                   0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00,        // nop [eax+disp32]
                   0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,  // nop [eax+eax+disp32]
                   0x0F, 0x1F, 0x05, 0x00, 0x00, 0x00, 0xF0,        // nop [disp32]: no access
                   0x0F, 0x19, 0xE9,                                // hint nop, register form
                   0x0F, 0x1A, 0xC0, 0x0F, 0x1B, 0x00,              // 0F 1A/1B: nops on a P6
                   0x0F, 0x1C, 0x00, 0x0F, 0x1D, 0xC1, 0x0F, 0x1E, 0x00, 0x0F, 0x1F, 0xC0,
                   0x0F, 0x18, 0x00, 0x0F, 0x18, 0x08, 0x0F, 0x18, 0x10, 0x0F, 0x18, 0x18,  // prefetch*
                   0x0F, 0x18, 0x20, 0x0F, 0x18, 0x38, 0x0F, 0x18, 0xC0,                    // hint space
                   0x0F, 0x0D, 0x08},                                                       // 0F 0D
               GetParam());
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
}

INSTANTIATE_TEST_SUITE_P(BtEngine, HintNops, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Cpl3" : "Cpl0"; });

TEST(Isolation, XlatReadsThroughTheWindow) {
  (void)install_sentinel();  // counts escapes when the range is free
  const uint64_t before = g_escapes.load();
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    for (uint32_t i = 0; i < 64; ++i) m.poke32(kData + 4 * i, 0x01010101u * (i + 1));
    GuestCode c(kCode);
    auto& a = c.a();
    const Label top = a.newLabel();
    a.mov(x86::ebx, kData);
    a.mov(x86::ecx, 10);
    a.bind(top);
    a.mov(x86::eax, x86::ecx);
    a.xlatb();  // al = [ebx + al]
    a.add(x86::esi, x86::eax);
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(g_escapes.load(), before);
}

// The interpreter does not implement maskmovq/maskmovdqu yet (tests/differential keeps it
// on its known-divergence list): translated code is checked against the SDM's answer.
TEST(Isolation, MaskedStoresGoThroughTheWindow) {
  (void)install_sentinel();
  const uint64_t before = g_escapes.load();
  BtMachine m;
  GuestCode c(kCode);
  auto& a = c.a();
  a.mov(x86::edi, kData + 0x40);
  a.mov(x86::edx, 0x80008000);  // select bytes 1 and 3
  a.movd(x86::mm0, x86::edx);
  a.mov(x86::ecx, 0x44332211);
  a.movd(x86::mm1, x86::ecx);
  a.maskmovq(x86::mm1, x86::mm0);  // [edi] bytes 1 and 3 = 0x22, 0x44
  a.movd(x86::xmm0, x86::edx);
  a.movd(x86::xmm1, x86::ecx);
  a.add(x86::edi, 0x10);
  a.maskmovdqu(x86::xmm1, x86::xmm0);
  a.emms();
  a.hlt();
  m.load(c);
  m.poke32(kData + 0x40, 0xAAAAAAAA);
  m.poke32(kData + 0x50, 0xBBBBBBBB);
  m.start(kCode, kStackTop, false);
  m.cpu().cr4 |= cr4::OSFXSR;
  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.peek32(kData + 0x40), 0x44AA22AAu);
  EXPECT_EQ(m.peek32(kData + 0x50), 0x44BB22BBu);
  EXPECT_EQ(g_escapes.load(), before);
}

/// A ring-3 far call through a call gate into ring 0, which returns with retf: ring 3 must
/// go on at CPL 3 on its own stack (the translator once ran retf as a near ret).
TEST(GuestProtection, FarReturnThroughACallGateRestoresCpl3) {
  TwoRuns runs;
  constexpr uint32_t kGate = 7;  // GDT index
  runs.setup([&](BtMachine& m) {
    GuestCode kernel(kHandlersStubEnd + 0x100);
    kernel.a().mov(x86::esi, x86::esp);
    kernel.a().add(x86::ebx, 1);
    kernel.a().retf();
    m.load(kernel);
    const uint32_t target = kernel.base();
    const uint32_t lo = (target & 0xFFFF) | (uint32_t{kKernelCs} << 16);
    const uint32_t hi = (target & 0xFFFF0000u) | 0xEC00;  // present, DPL 3, 32-bit call gate
    m.poke32(kGdt + 8 * kGate, lo);
    m.poke32(kGdt + 8 * kGate + 4, hi);

    GuestCode c(kCode);
    auto& a = c.a();
    const Label top = a.newLabel();
    a.mov(x86::ecx, 3);
    a.bind(top);
    a.db(0xFF);  // call far [kData] (FF /3): offset, then the gate's selector
    a.db(0x1D);
    a.dd(kData);
    a.dec(x86::ecx);
    a.jnz(top);
    a.mov(x86::edx, x86::esp);
    a.hlt();  // #GP at CPL 3; at CPL 0 it would halt: the record's cs tells
    m.load(c);
    m.poke32(kData, 0);
    m.poke32(kData + 4, kGate * 8 | 3);
    m.start(kCode, kStackTop, true);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  ASSERT_EQ(runs.bt.record_count(), 1u);
  EXPECT_EQ(runs.bt.record(0).vector, 13u) << std::hex << runs.bt.record(0).eip << " err " << runs.bt.record(0).error;
  EXPECT_EQ(runs.bt.record(0).cs, kUserCs);
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Ebx), 3u);
}

TEST(GuestProtection, SamePrivilegeFarReturnReleasesBothSlots) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    a.push(kKernelCs);
    a.push(Imm(kCode + 0x40));
    a.retf();
    a.hlt();
    for (int i = 0; i < 0x3C; ++i) a.db(0x90);
    m.load(c);
    GuestCode after(kCode + 0x40);
    after.a().mov(x86::eax, x86::esp);
    after.a().hlt();
    m.load(after);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Eax), kStackTop);
}

struct FpuCase {
  const char* name;
  uint32_t cr0_set, cr4_clear;
  bool sse;  ///< the instruction is an SSE one (else x87)
};

class FpuAvailability : public ::testing::TestWithParam<FpuCase> {};

TEST_P(FpuAvailability, RaisesWhatTheGuestsControlRegistersSay) {
  const FpuCase& p = GetParam();
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, 1);
    if (p.sse) {
      a.movd(x86::xmm0, x86::eax);
      a.movd(x86::ebx, x86::xmm0);
    } else {
      a.fld1();
      a.fistp(x86::dword_ptr(kData));
      a.mov(x86::ebx, x86::dword_ptr(kData));
    }
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.cpu().cr4 |= cr4::OSFXSR;
    m.cpu().cr0 |= p.cr0_set;
    m.cpu().cr4 &= ~p.cr4_clear;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  const bool faults = p.cr0_set != 0 || p.cr4_clear != 0;
  EXPECT_EQ(runs.bt.record_count(), faults ? 1u : 0u);
}

const FpuCase kFpuCases[] = {
    {"x87", 0, 0, false},
    {"x87_TS", cr0::TS, 0, false},
    {"x87_EM", cr0::EM, 0, false},
    {"sse", 0, 0, true},
    {"sse_TS", cr0::TS, 0, true},
    {"sse_EM", cr0::EM, 0, true},
    {"sse_no_OSFXSR", 0, cr4::OSFXSR, true},
};
INSTANTIATE_TEST_SUITE_P(BtEngine, FpuAvailability, ::testing::ValuesIn(kFpuCases),
                         [](const auto& c) { return std::string(c.param.name); });

/// SSE conversions into MMX or general registers: unmasked SIMD exceptions in MXCSR must
/// reach the guest as #XM (or #UD), not kill the monitor with a host SIGFPE; CR4.OSFXSR
/// clear makes them #UD even without an XMM register operand (cvttss2si eax, [mem]).
struct SimdCase {
  const char* name;
  std::initializer_list<uint8_t> insn;
  uint32_t mxcsr;
  bool osfxsr;
};

class SimdExceptions : public ::testing::TestWithParam<SimdCase> {};

TEST_P(SimdExceptions, ReachTheGuest) {
  const SimdCase& p = GetParam();
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.poke32(kData, 0xFFC00000);  // a NaN, as single precision
    m.poke32(kData + 4, 0x7F800000);
    m.poke32(kData + 8, p.mxcsr);
    GuestCode c(kCode);
    auto& a = c.a();
    a.ldmxcsr(x86::dword_ptr(kData + 8));
    a.mov(x86::ebx, kData);
    a.movups(x86::xmm0, x86::ptr(x86::ebx));
    a.mov(x86::ecx, 3);
    for (uint8_t b : p.insn) a.db(b);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.cpu().cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
  });
  if (!p.osfxsr) {
    // Clear OSFXSR after ldmxcsr/movups: only the conversion runs without it.
    runs.setup([&](BtMachine& m) {
      GuestCode c(kCode + 0x800);
      for (uint8_t b : p.insn) c.a().db(b);
      c.a().hlt();
      m.load(c);
      m.start(kCode + 0x800, kStackTop, false);
      m.cpu().cr4 &= ~cr4::OSFXSR;
      m.cpu().reg(Gpr::Ebx) = kData;
    });
  }
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.record_count(), 1u);
}

const SimdCase kSimdCases[] = {
    {"cvttps2pi_mem_unmasked", {0x0F, 0x2C, 0x03}, 0x0001, true},
    {"cvttps2pi_reg_unmasked", {0x0F, 0x2C, 0xC0}, 0x0001, true},
    {"cvtps2pi_reg_unmasked", {0x0F, 0x2D, 0xC0}, 0x0001, true},
    {"cvttpd2pi_reg_unmasked", {0x66, 0x0F, 0x2C, 0xC0}, 0x0001, true},
    {"cvtpd2pi_reg_unmasked", {0x66, 0x0F, 0x2D, 0xC0}, 0x0001, true},
    {"cvttss2si_mem_no_osfxsr", {0xF3, 0x0F, 0x2C, 0x03}, 0x1F80, false},
    {"cvtsd2si_mem_no_osfxsr", {0xF2, 0x0F, 0x2D, 0x03}, 0x1F80, false},
};
INSTANTIATE_TEST_SUITE_P(BtEngine, SimdExceptions, ::testing::ValuesIn(kSimdCases),
                         [](const auto& c) { return std::string(c.param.name); });

struct SegmentCase {
  const char* name;
  uint32_t base, limit;
  uint8_t access;  ///< descriptor access byte (0: a null selector)
  uint8_t flags;
  bool write;
  bool fs;  ///< load it into FS and access through fs:, else into ES (es:); the exception
            ///< handler needs a working DS
};

class SegmentChecks : public ::testing::TestWithParam<SegmentCase> {};

TEST_P(SegmentChecks, TranslatedAccessesCheckTheSegment) {
  const SegmentCase& p = GetParam();
  constexpr unsigned kIndex = 8;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    if (p.access) m.set_descriptor(kIndex, p.base, p.limit, p.access, p.flags);
    // The recording handler copies with rep movs (ES): give it a working ES first.
    const uint32_t recording = (m.peek32(kIdt + 8 * 13) & 0xFFFF) | (m.peek32(kIdt + 8 * 13 + 4) & 0xFFFF0000u);
    GuestCode fix(kHandlersStubEnd + 0x200);
    fix.a().push(x86::eax);
    fix.a().mov(x86::eax, kKernelDs);
    fix.a().mov(x86::es, x86::ax);
    fix.a().pop(x86::eax);
    fix.a().jmp(Imm(recording));
    m.load(fix);
    m.set_gate(13, fix.base());
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, p.access ? kIndex * 8 : 0);
    if (p.fs) {
      a.mov(x86::fs, x86::ax);
    } else {
      a.mov(x86::es, x86::ax);
    }
    a.mov(x86::ebx, 0x100);
    const Label top = a.newLabel();
    a.mov(x86::ecx, 50);  // a loop: the accesses run translated
    a.bind(top);
    x86::Mem mem = x86::dword_ptr(x86::ebx, 0x40);
    mem.setSegment(p.fs ? x86::fs : x86::es);
    if (p.write) {
      a.mov(mem, x86::ecx);
    } else {
      a.mov(x86::edx, mem);
    }
    a.add(x86::ebx, 0x1000);
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.cpu().gdtr.limit = 16 * 8 - 1;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
}

const SegmentCase kSegmentCases[] = {
    {"fs_flat_read", 0, 0xFFFFF, 0x93, 0xC, false, true},
    {"fs_based_write", 0x10000, 0xFFFFF, 0x93, 0xC, true, true},
    {"fs_null_read", 0, 0, 0, 0, false, true},
    {"fs_null_write", 0, 0, 0, 0, true, true},
    {"fs_limited_read", 0, 0x8000, 0x93, 0x4, false, true},
    {"fs_limited_write", 0x1000, 0x8000, 0x93, 0x4, true, true},
    {"fs_read_only_write", 0, 0xFFFFF, 0x91, 0xC, true, true},
    {"fs_read_only_read", 0, 0xFFFFF, 0x91, 0xC, false, true},
    {"fs_expand_down_read", 0, 0x2000, 0x97, 0xC, false, true},
    {"fs_expand_down_write", 0, 0x2000, 0x97, 0xC, true, true},
    {"fs_code_read", 0, 0xFFFFF, 0x9B, 0xC, false, true},
    {"es_read_only_write", 0, 0xFFFFF, 0x91, 0xC, true, false},
    {"es_expand_down_read", 0, 0xFFFFF, 0x97, 0xC, false, false},
    {"es_code_readable_read", 0, 0xFFFFF, 0x9B, 0xC, false, false},
    {"es_code_readable_write", 0, 0xFFFFF, 0x9B, 0xC, true, false},
};
INSTANTIATE_TEST_SUITE_P(BtEngine, SegmentChecks, ::testing::ValuesIn(kSegmentCases),
                         [](const auto& c) { return std::string(c.param.name); });

/// TLS as i386 glibc uses it: gs:[negative offset] wraps around 4 GiB to just below the
/// TLS base. It must run in translated code without a fault per access (a regression once
/// cost 250x on an x87 awk loop).
TEST(GuestProtection, WrappingFsGsAccessesStayTranslated) {
  constexpr unsigned kIndex = 8;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.set_descriptor(kIndex, kData + 0x1000, 0xFFFFF, 0x93, 0xC);
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, kIndex * 8);
    a.mov(x86::gs, x86::ax);
    const Label top = a.newLabel();
    a.mov(x86::ecx, 1000);
    a.bind(top);
    x86::Mem below = x86::dword_ptr(-0x20);  // disp32 0xFFFFFFE0: wraps to base - 0x20
    below.setSegment(x86::gs);
    a.add(below, x86::ecx);
    a.mov(x86::edx, below);
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.cpu().gdtr.limit = 16 * 8 - 1;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.peek32(kData + 0x1000 - 0x20), 1000u * 1001u / 2);
  EXPECT_LT(runs.bt.engine().fault_stats().redirected, 10u);
}

/// bts gs:[m], r with a bit offset that reaches past a limited GS: #GP, as the interpreter.
TEST(GuestProtection, BitStringOffsetsAreLimitChecked) {
  constexpr unsigned kIndex = 8;
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    m.set_descriptor(kIndex, kData, 0xFFF, 0x93, 0x4);  // 4 KiB, byte granular
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, kIndex * 8);
    a.mov(x86::gs, x86::ax);
    a.mov(x86::ebx, 0x10);
    const Label top = a.newLabel();
    a.mov(x86::ecx, 40);
    a.mov(x86::eax, 8 * 0x100);  // byte 0x110: within the limit
    a.bind(top);
    x86::Mem m32 = x86::dword_ptr(x86::ebx);
    m32.setSegment(x86::gs);
    a.bts(m32, x86::eax);
    a.sub(x86::eax, 8 * 0x40);  // ... until the offset is negative: below the segment
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
    m.cpu().gdtr.limit = 16 * 8 - 1;
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  ASSERT_EQ(runs.bt.record_count(), 1u);
  EXPECT_EQ(runs.bt.record(0).vector, 13u);
}

TEST(GuestProtection, CsOverrideNeverWrites) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::ebx, kData);
    a.mov(x86::eax, x86::dword_ptr(x86::ebx));
    x86::Mem via_cs = x86::dword_ptr(x86::ebx, 4);
    via_cs.setSegment(x86::cs);
    a.mov(x86::edx, via_cs);  // a read through a readable code segment: fine
    a.mov(via_cs, x86::ecx);  // a write: #GP
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.record_count(), 1u);
  EXPECT_EQ(runs.bt.record(0).vector, 13u);
}

/// A callout (mov ds) whose descriptor load sets the Accessed bit in a GDT that shares the
/// running block's code page: the block is dropped while its callout runs. The monitor must
/// not read the freed block (ASan builds catch it) and the guest goes on exactly.
TEST(MonitorSafety, CalloutThatDropsItsOwnBlock) {
  TwoRuns runs;
  constexpr uint32_t kPage = kCode + 0x2000;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kPage);
    auto& a = c.a();
    const Label top = a.newLabel();
    a.lgdt(x86::ptr_abs(kPage + 0x800, 6));
    a.mov(x86::ecx, 20);
    a.bind(top);
    a.mov(x86::eax, 0x10);
    a.mov(x86::ds, x86::ax);  // accessed bit: a write to this very page
    a.add(x86::ebx, 1);
    a.and_(x86::byte_ptr(kPage + 0x400 + 0x10 + 5), 0xFE);  // clear it again (another SMC write)
    a.dec(x86::ecx);
    a.jnz(top);
    a.hlt();
    m.load(c);
    // A copy of the GDT at kPage + 0x400 and its pseudo-descriptor at kPage + 0x800.
    for (uint32_t i = 0; i < 8 * 8; i += 4) m.poke32(kPage + 0x400 + i, m.peek32(kGdt + i));
    m.poke32(kPage + 0x800, (8 * 8 - 1) | ((kPage + 0x400) << 16));
    m.poke32(kPage + 0x804, (kPage + 0x400) >> 16);
    m.start(kPage, kStackTop, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Ebx), 20u);
}

/// fnstenv/fnsave/fxsave after x87 code ran translated: the last-instruction and operand
/// pointers would be host addresses; none may reach the guest.
TEST(MonitorSafety, X87EnvironmentShowsNoHostAddress) {
  BtMachine m;
  GuestCode c(kCode);
  auto& a = c.a();
  const Label top = a.newLabel();
  a.mov(x86::ecx, 20);
  a.bind(top);
  a.fld1();
  a.fadd(x86::dword_ptr(kData + 0x400));
  a.fstp(x86::dword_ptr(kData + 0x404));
  a.dec(x86::ecx);
  a.jnz(top);
  // An unmasked invalid operation left pending: hosts that store the pointers only when an
  // exception is pending (AMD) store them now.
  a.fldcw(x86::word_ptr(kData + 0x408));
  a.fld1();
  a.fchs();
  a.fsqrt();
  a.fnstenv(x86::ptr(kData));
  a.fxsave(x86::ptr(kData + 0x100));
  a.fnsave(x86::ptr(kData + 0x400 + 0x40));
  a.hlt();
  m.load(c);
  m.poke32(kData + 0x408, 0x037E);  // IM clear
  m.start(kCode, kStackTop, false);
  m.cpu().cr4 |= cr4::OSFXSR;
  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_GT(m.ctx().retired, 50u);
  EXPECT_EQ(m.peek32(kData + 12), 0u) << "fnstenv FIP";
  EXPECT_EQ(m.peek32(kData + 20), 0u) << "fnstenv FDP";
  EXPECT_EQ(m.peek32(kData + 0x100 + 8), 0u) << "fxsave FIP";
  EXPECT_EQ(m.peek32(kData + 0x100 + 16), 0u) << "fxsave FDP";
  EXPECT_EQ(m.peek32(kData + 0x440 + 12), 0u) << "fnsave FIP";
  // FOP's ModRM would be the host's re-encoding of the last operand: 0 as well.
  EXPECT_EQ(m.peek32(kData + 16) >> 16, 0u) << "fnstenv FOP";
  EXPECT_EQ(m.peek32(kData + 0x100 + 4) >> 16, 0u) << "fxsave FOP";
}

TEST(MonitorSafety, CodeCacheIsNeverWritableAndExecutable) {
  BtMachine m;
  GuestCode c(kCode);
  c.a().mov(x86::eax, 1);
  c.a().hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);
  ASSERT_EQ(m.run_bt(), RunEnd::Halted);
  const CodeCache& cache = m.engine().translator().cache();
  ASSERT_GT(cache.used_bytes(), 0u);
  // Scan /proc/self/maps: no mapping may be both writable and executable.
  FILE* maps = fopen("/proc/self/maps", "r");
  ASSERT_NE(maps, nullptr);
  char line[512];
  std::string wx;
  while (fgets(line, sizeof line, maps)) {
    char perms[8] = {};
    if (sscanf(line, "%*x-%*x %7s", perms) == 1 && perms[1] == 'w' && perms[2] == 'x') wx += line;
  }
  fclose(maps);
  EXPECT_EQ(wx, "");
}

}  // namespace
}  // namespace vmm86::bttest
