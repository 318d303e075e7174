// The classification table against the whole decodable opcode space: no gaps (every
// instruction the decoder accepts is classified), no duplicate or dead rows, and agreement
// with what Zydis itself knows about each instruction (privilege, branch kind, operands,
// and how the same bytes decode in 64-bit mode).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "decoder/classify.h"
#include "decoder/decoder.h"
#include "test_util.h"

namespace vmm86 {
namespace {

using test::Sample;

// One representative pattern per (code size, mnemonic, opcode, ModRM.reg, register/memory
// form, operand size): the table and its refinements depend on nothing finer.
const std::vector<Sample>& samples() {
  static const std::vector<Sample> kSamples = [] {
    std::set<std::tuple<int, int, int, int, int, int, int>> seen;
    std::vector<Sample> out;
    test::walk_opcode_space([&](const Sample& s) {
      const ZydisDecodedInstruction& r = s.insn.raw;
      const int mod_reg = (r.attributes & ZYDIS_ATTRIB_HAS_MODRM) != 0 ? r.raw.modrm.reg : -1;
      const int mod_is_reg = (r.attributes & ZYDIS_ATTRIB_HAS_MODRM) != 0 && r.raw.modrm.mod == 3;
      if (seen.insert(
                  {static_cast<int>(s.size), r.mnemonic, r.opcode_map, r.opcode, mod_reg, mod_is_reg, r.operand_width})
              .second) {
        out.push_back(s);
      }
    });
    return out;
  }();
  return kSamples;
}

std::string describe(const Sample& s) {
  char name[96];
  std::snprintf(name, sizeof name, "%s (%d-bit: %s) classes=%s", ZydisMnemonicGetString(s.insn.mnemonic()),
                s.size == CodeSize::Bits32 ? 32 : 16, test::hex(s.bytes, s.insn.length()).c_str(),
                test::to_string(s.insn.classes).c_str());
  return name;
}

// Collects one message per mnemonic (the first offending encoding), so that a broken row
// reports once, not thousands of times.
class Violations {
 public:
  void add(const Sample& s, const std::string& what) {
    if (by_mnemonic_.emplace(s.insn.mnemonic(), describe(s) + ": " + what).second) ++count_;
  }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] std::string report() const {
    std::string out;
    for (const auto& [m, text] : by_mnemonic_) out += "  " + text + "\n";
    return out;
  }

 private:
  std::map<ZydisMnemonic, std::string> by_mnemonic_;
  int count_ = 0;
};

bool any_operand(const Sample& s, const std::function<bool(const ZydisDecodedOperand&)>& pred) {
  for (uint8_t i = 0; i < s.insn.raw.operand_count; ++i) {
    if (pred(s.insn.operands[i])) return true;
  }
  return false;
}

bool is_reg_of(const ZydisDecodedOperand& op, std::initializer_list<ZydisRegisterClass> classes) {
  if (op.type != ZYDIS_OPERAND_TYPE_REGISTER) return false;
  for (ZydisRegisterClass c : classes) {
    if (ZydisRegisterGetClass(op.reg.value) == c) return true;
  }
  return false;
}

TEST(ClassifyTable, WalkFindsTheWholeGuestIsa) {
  // Sanity of the walk itself: P6 + MMX/SSE/SSE2 has a bit over 450 mnemonics.
  std::set<ZydisMnemonic> mnemonics;
  for (const Sample& s : samples()) mnemonics.insert(s.insn.mnemonic());
  EXPECT_GT(mnemonics.size(), 450u);
}

TEST(ClassifyTable, EveryDecodableInstructionIsClassified) {
  Violations gaps;
  for (const Sample& s : samples()) {
    if (s.insn.classes.has(InsnClass::Unclassified)) gaps.add(s, "no row in the table");
    if (s.insn.classes.empty()) gaps.add(s, "empty class set");
  }
  EXPECT_TRUE(gaps.empty()) << "gaps:\n" << gaps.report();
}

TEST(ClassifyTable, NoDuplicateRows) {
  std::set<ZydisMnemonic> seen;
  for (const ClassEntry& row : classification_table()) {
    EXPECT_TRUE(seen.insert(row.mnemonic).second) << "duplicate row: " << ZydisMnemonicGetString(row.mnemonic);
  }
}

TEST(ClassifyTable, EveryRowIsReachable) {
  std::set<ZydisMnemonic> decoded;
  for (const Sample& s : samples()) decoded.insert(s.insn.mnemonic());
  for (const ClassEntry& row : classification_table()) {
    EXPECT_TRUE(decoded.count(row.mnemonic)) << "dead row (never decoded): " << ZydisMnemonicGetString(row.mnemonic);
  }
}

TEST(ClassifyTable, RowsAreWellFormed) {
  for (const ClassEntry& row : classification_table()) {
    SCOPED_TRACE(ZydisMnemonicGetString(row.mnemonic));
    EXPECT_FALSE(row.classes.empty());
    EXPECT_FALSE(row.classes.has(InsnClass::Unclassified));
    if (row.classes.has(InsnClass::Plain)) {
      EXPECT_EQ(row.classes, InsnClassSet{InsnClass::Plain});
    }
  }
}

TEST(ClassifyTable, MnemonicWithoutRowIsUnclassified) {
  // Decoded by Zydis, but not a P6 instruction (SSSE3): classify() must not call it Plain.
  ZydisDecoder zydis;
  ZydisDecoderInit(&zydis, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  const uint8_t pshufb[] = {0x66, 0x0F, 0x38, 0x00, 0xC1};
  ZydisDecodedInstruction raw;
  ASSERT_TRUE(ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&zydis, nullptr, pshufb, sizeof pshufb, &raw)));
  EXPECT_EQ(classify(raw), InsnClassSet{InsnClass::Unclassified});
  // A mnemonic that has a row but whose encoding is from a later extension (SSE4.1
  // pextrw to memory) is not covered either.
  const uint8_t pextrw_mem[] = {0x66, 0x0F, 0x3A, 0x15, 0x00, 0x01};
  ASSERT_TRUE(ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&zydis, nullptr, pextrw_mem, sizeof pextrw_mem, &raw)));
  EXPECT_EQ(raw.mnemonic, ZYDIS_MNEMONIC_PEXTRW);
  EXPECT_EQ(classify(raw), InsnClassSet{InsnClass::Unclassified});
}

// ---- Agreement with Zydis's own metadata ----

TEST(ClassifyTable, PrivilegedAgreesWithZydis) {
  Violations v;
  for (const Sample& s : samples()) {
    const bool zydis = (s.insn.raw.attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) != 0;
    const bool ours = s.insn.has(InsnClass::Privileged);
    // cli/sti are privileged by IOPL, not by CPL 0 alone; Zydis does not flag them. Zydis
    // 4.0 also misses the flag on lgdt (it has it on lidt).
    const ZydisMnemonic m = s.insn.mnemonic();
    const bool known_gap = m == ZYDIS_MNEMONIC_CLI || m == ZYDIS_MNEMONIC_STI || m == ZYDIS_MNEMONIC_LGDT;
    if (zydis && !ours) v.add(s, "Zydis says CPL-0 only");
    if (ours && !zydis && !known_gap) v.add(s, "Zydis says unprivileged");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, ControlFlowAgreesWithZydis) {
  Violations v;
  for (const Sample& s : samples()) {
    // bound is an "interrupt" to Zydis, but #BR is a fault like #DE from div: a fault in
    // the middle of a block is handled by the precise-exception path, not by ending blocks.
    if (s.insn.mnemonic() == ZYDIS_MNEMONIC_BOUND) continue;
    const ZydisInstructionCategory cat = s.insn.raw.meta.category;
    const bool branch = s.insn.raw.meta.branch_type != ZYDIS_BRANCH_TYPE_NONE || cat == ZYDIS_CATEGORY_COND_BR ||
                        cat == ZYDIS_CATEGORY_UNCOND_BR || cat == ZYDIS_CATEGORY_CALL || cat == ZYDIS_CATEGORY_RET ||
                        cat == ZYDIS_CATEGORY_INTERRUPT || cat == ZYDIS_CATEGORY_SYSCALL ||
                        cat == ZYDIS_CATEGORY_SYSRET;
    if (branch && !s.insn.has(InsnClass::ControlFlow)) v.add(s, "a branch that is not ControlFlow");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, IoAndStringAgreeWithZydis) {
  Violations v;
  for (const Sample& s : samples()) {
    const ZydisInstructionCategory cat = s.insn.raw.meta.category;
    const bool io = cat == ZYDIS_CATEGORY_IO || cat == ZYDIS_CATEGORY_IOSTRINGOP;
    const bool str = cat == ZYDIS_CATEGORY_STRINGOP || cat == ZYDIS_CATEGORY_IOSTRINGOP;
    if (io != s.insn.has(InsnClass::Io)) v.add(s, "Io disagrees with the Zydis category");
    if (str != s.insn.has(InsnClass::StringOp)) v.add(s, "StringOp disagrees with the Zydis category");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, SegmentRegisterOperands) {
  Violations v;
  for (const Sample& s : samples()) {
    const bool writes_sreg = any_operand(s, [](const ZydisDecodedOperand& op) {
      return is_reg_of(op, {ZYDIS_REGCLASS_SEGMENT}) && (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
    });
    const bool shows_sreg = any_operand(s, [](const ZydisDecodedOperand& op) {
      return is_reg_of(op, {ZYDIS_REGCLASS_SEGMENT}) && (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0 &&
             op.visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN;
    });
    if (writes_sreg && !s.insn.has(InsnClass::SegmentLoad)) v.add(s, "writes a segment register");
    if (writes_sreg && !s.insn.has(InsnClass::Callout)) v.add(s, "a segment load needs a descriptor walk");
    if (shows_sreg && !s.insn.has(InsnClass::Sensitive)) v.add(s, "reveals a (virtual) selector");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, ControlAndDebugRegistersArePrivileged) {
  Violations v;
  for (const Sample& s : samples()) {
    const bool crdr = any_operand(s, [](const ZydisDecodedOperand& op) {
      return is_reg_of(op, {ZYDIS_REGCLASS_CONTROL, ZYDIS_REGCLASS_DEBUG}) &&
             op.visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT;
    });
    if (crdr && !s.insn.has(InsnClass::Privileged)) v.add(s, "moves a CRn/DRn");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, FloatingPointMeansFpuOrXmmState) {
  // FloatingPoint is exactly the x87/MMX/SSE/SSE2 extensions, less the SSE-era instructions
  // that touch no FPU/XMM state. Every instruction with an FPU/XMM register or state
  // access must be in it (Zydis does not flag every x87 control instruction, hence one way).
  Violations v;
  constexpr ZydisInstructionAttributes kFpuState = ZYDIS_ATTRIB_FPU_STATE_CR | ZYDIS_ATTRIB_FPU_STATE_CW |
                                                   ZYDIS_ATTRIB_XMM_STATE_CR | ZYDIS_ATTRIB_XMM_STATE_CW;
  for (const Sample& s : samples()) {
    const ZydisISAExt ext = s.insn.raw.meta.isa_ext;
    const ZydisMnemonic m = s.insn.mnemonic();
    const bool stateless = m == ZYDIS_MNEMONIC_SFENCE || m == ZYDIS_MNEMONIC_LFENCE || m == ZYDIS_MNEMONIC_MFENCE ||
                           m == ZYDIS_MNEMONIC_MOVNTI || m == ZYDIS_MNEMONIC_PREFETCHNTA ||
                           m == ZYDIS_MNEMONIC_PREFETCHT0 || m == ZYDIS_MNEMONIC_PREFETCHT1 ||
                           m == ZYDIS_MNEMONIC_PREFETCHT2;
    const bool fp_ext = (ext == ZYDIS_ISA_EXT_X87 || ext == ZYDIS_ISA_EXT_MMX || ext == ZYDIS_ISA_EXT_SSE ||
                         ext == ZYDIS_ISA_EXT_SSE2) &&
                        !stateless;
    if (fp_ext != s.insn.has(InsnClass::FloatingPoint)) {
      v.add(s, fp_ext ? "x87/MMX/SSE/SSE2 but not FloatingPoint" : "FloatingPoint outside x87/MMX/SSE/SSE2");
    }
    const bool fp_regs = any_operand(s, [](const ZydisDecodedOperand& op) {
      return is_reg_of(op, {ZYDIS_REGCLASS_X87, ZYDIS_REGCLASS_MMX, ZYDIS_REGCLASS_XMM});
    });
    if ((fp_regs || (s.insn.raw.attributes & kFpuState) != 0) && !s.insn.has(InsnClass::FloatingPoint)) {
      v.add(s, "uses FPU/XMM state");
    }
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, StackOpMeansImplicitStackAccess) {
  Violations v;
  for (const Sample& s : samples()) {
    // leave pops through [ebp]; Zydis does not list the pushes of interrupt delivery.
    const bool stack = any_operand(s, [](const ZydisDecodedOperand& op) {
      const ZydisRegister b = op.mem.base;
      return op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
             (b == ZYDIS_REGISTER_ESP || b == ZYDIS_REGISTER_SP || b == ZYDIS_REGISTER_EBP || b == ZYDIS_REGISTER_BP);
    });
    const bool interrupt = s.insn.raw.meta.category == ZYDIS_CATEGORY_INTERRUPT && s.insn.has(InsnClass::ControlFlow);
    if (stack && !s.insn.has(InsnClass::StackOp)) v.add(s, "pushes or pops");
    if (!stack && !interrupt && s.insn.has(InsnClass::StackOp)) v.add(s, "touches no stack");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, Invalid64MatchesTheSameBytesIn64BitMode) {
  // An IA-32 instruction has no 64-bit encoding exactly when its bytes mean something else
  // (or nothing) in 64-bit mode. Only 32-bit code: 16-bit code differs in operand size.
  ZydisDecoder zydis64;
  ZydisDecoderInit(&zydis64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  // The same P6 reading of hint nops and rep prefixes as vmm86::Decoder.
  for (ZydisDecoderMode mode : {ZYDIS_DECODER_MODE_MPX, ZYDIS_DECODER_MODE_CET, ZYDIS_DECODER_MODE_LZCNT,
                                ZYDIS_DECODER_MODE_TZCNT, ZYDIS_DECODER_MODE_CLDEMOTE}) {
    ZydisDecoderEnableMode(&zydis64, mode, ZYAN_FALSE);
  }
  Violations v;
  for (const Sample& s : samples()) {
    if (s.size != CodeSize::Bits32) continue;
    ZydisDecodedInstruction raw64;
    const bool same = ZYAN_SUCCESS(
                          ZydisDecoderDecodeInstruction(&zydis64, nullptr, s.bytes.data(), s.bytes.size(), &raw64)) &&
                      raw64.mnemonic == s.insn.mnemonic();
    // Renamed in 64-bit mode by operand/address size only: pushfd -> pushfq, jecxz -> jrcxz.
    const ZydisMnemonic m = s.insn.mnemonic();
    const bool renamed = m == ZYDIS_MNEMONIC_PUSHFD || m == ZYDIS_MNEMONIC_POPFD || m == ZYDIS_MNEMONIC_JECXZ ||
                         m == ZYDIS_MNEMONIC_JCXZ;
    if (!same && !renamed && !s.insn.has(InsnClass::Invalid64)) v.add(s, "means something else in 64-bit mode");
    if (same && s.insn.has(InsnClass::Invalid64)) v.add(s, "decodes the same in 64-bit mode");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

TEST(ClassifyTable, PlainIsNeverCombined) {
  Violations v;
  for (const Sample& s : samples()) {
    if (s.insn.has(InsnClass::Plain) && s.insn.classes != InsnClassSet{InsnClass::Plain}) v.add(s, "Plain plus more");
  }
  EXPECT_TRUE(v.empty()) << v.report();
}

}  // namespace
}  // namespace vmm86
