#include "decoder/classify.h"

#include <array>
#include <cstddef>
#include <iterator>

namespace vmm86 {
namespace {

using enum InsnClass;

#define M(name) ZYDIS_MNEMONIC_##name

// Shorthands for the most common rows.
constexpr InsnClassSet kFp = FloatingPoint;
constexpr InsnClassSet kJcc = ControlFlow;
constexpr InsnClassSet kString = StringOp;
// Exceptions and interrupts: delivered through the guest IDT by the monitor.
constexpr InsnClassSet kTrap = ControlFlow | Sensitive | StackOp | Callout;
// Descriptor-table and system-register loads: the monitor updates its shadow state.
constexpr InsnClassSet kSystemLoad = Privileged | Callout;

// THE table. Sections by ISA; rows inside a section sorted by mnemonic. Unique by mnemonic
// (checked at compile time below and by tests/decoder). Notes on the judgement calls:
// - cli/sti fault only when CPL > IOPL, but the guest kernel runs deprivileged, so both
//   must always be virtualized: Privileged (faults in guest user mode) + Sensitive (the
//   virtual IF). Both are cheap inline byte stores, hence no Callout.
// - cpuid/rdtsc/rdpmc are unprivileged (rdtsc/rdpmc depend on CR4.TSD/PCE) but return
//   virtual values: Sensitive + Callout.
// - fnsave/fnstenv/fxsave store the x87 last-instruction/operand pointers, which hold host
//   addresses after native execution: Sensitive on top of FloatingPoint.
// - Fences, prefetches, clflush, movnti and pause come with SSE/SSE2 but touch no FPU/XMM
//   state: Plain.
constexpr ClassEntry kTable[] = {
    // ---- Integer, system and control flow (P6 and earlier) ----
    {M(AAA), Invalid64},
    {M(AAD), Invalid64},
    {M(AAM), Invalid64},
    {M(AAS), Invalid64},
    {M(ADC), Plain, Refine::Group82},
    {M(ADD), Plain, Refine::Group82},
    {M(AND), Plain, Refine::Group82},
    {M(ARPL), Invalid64},
    {M(BOUND), Invalid64},  // #BR is an ordinary exception, like #DE from div
    {M(BSF), Plain},
    {M(BSR), Plain},
    {M(BSWAP), Plain},
    {M(BT), Plain},
    {M(BTC), Plain},
    {M(BTR), Plain},
    {M(BTS), Plain},
    {M(CALL), ControlFlow | StackOp, Refine::FarBranch},
    {M(CBW), Plain},
    {M(CDQ), Plain},
    {M(CLC), Plain},
    {M(CLD), Plain},
    {M(CLFLUSH), Plain},
    {M(CLI), Privileged | Sensitive},
    {M(CLTS), kSystemLoad},
    {M(CMC), Plain},
    {M(CMOVB), Plain}, {M(CMOVBE), Plain}, {M(CMOVL), Plain}, {M(CMOVLE), Plain},
    {M(CMOVNB), Plain}, {M(CMOVNBE), Plain}, {M(CMOVNL), Plain}, {M(CMOVNLE), Plain},
    {M(CMOVNO), Plain}, {M(CMOVNP), Plain}, {M(CMOVNS), Plain}, {M(CMOVNZ), Plain},
    {M(CMOVO), Plain}, {M(CMOVP), Plain}, {M(CMOVS), Plain}, {M(CMOVZ), Plain},
    {M(CMP), Plain, Refine::Group82},
    {M(CMPSB), kString},
    {M(CMPSD), kFp, Refine::StringForm},  // A7 cmpsd (string) or F2 0F C2 cmpsd (SSE2)
    {M(CMPSW), kString},
    {M(CMPXCHG), Plain},
    {M(CMPXCHG8B), Plain},
    {M(CPUID), Sensitive | Callout},
    {M(CWD), Plain},
    {M(CWDE), Plain},
    {M(DAA), Invalid64},
    {M(DAS), Invalid64},
    {M(DEC), Plain, Refine::ShortIncDec},
    {M(DIV), Plain},
    {M(ENTER), StackOp},
    {M(HLT), ControlFlow | kSystemLoad},  // waits for an interrupt: ends the block
    {M(IDIV), Plain},
    {M(IMUL), Plain},
    {M(IN), Io | Callout},
    {M(INC), Plain, Refine::ShortIncDec},
    {M(INSB), Io | StringOp | Callout},
    {M(INSD), Io | StringOp | Callout},
    {M(INSW), Io | StringOp | Callout},
    {M(INT), kTrap},
    {M(INT1), kTrap},
    {M(INT3), kTrap},
    {M(INTO), kTrap | Invalid64},
    {M(INVD), kSystemLoad},
    {M(INVLPG), kSystemLoad},
    {M(IRET), kTrap | SegmentLoad},
    {M(IRETD), kTrap | SegmentLoad},
    {M(JB), kJcc}, {M(JBE), kJcc}, {M(JCXZ), kJcc}, {M(JECXZ), kJcc}, {M(JL), kJcc}, {M(JLE), kJcc},
    {M(JMP), ControlFlow, Refine::FarBranch},
    {M(JNB), kJcc}, {M(JNBE), kJcc}, {M(JNL), kJcc}, {M(JNLE), kJcc}, {M(JNO), kJcc}, {M(JNP), kJcc},
    {M(JNS), kJcc}, {M(JNZ), kJcc}, {M(JO), kJcc}, {M(JP), kJcc}, {M(JS), kJcc}, {M(JZ), kJcc},
    {M(LAHF), Plain},
    {M(LAR), Sensitive | Callout},
    {M(LDS), SegmentLoad | Invalid64 | Callout},
    {M(LEA), Plain},
    {M(LEAVE), StackOp},
    {M(LES), SegmentLoad | Invalid64 | Callout},
    {M(LFENCE), Plain},
    {M(LFS), SegmentLoad | Callout},
    {M(LGDT), kSystemLoad},
    {M(LGS), SegmentLoad | Callout},
    {M(LIDT), kSystemLoad},
    {M(LLDT), kSystemLoad},
    {M(LMSW), kSystemLoad},
    {M(LODSB), kString},
    {M(LODSD), kString},
    {M(LODSW), kString},
    {M(LOOP), kJcc},
    {M(LOOPE), kJcc},
    {M(LOOPNE), kJcc},
    {M(LSL), Sensitive | Callout},
    {M(LSS), SegmentLoad | Callout},
    {M(LTR), kSystemLoad},
    {M(MFENCE), Plain},
    {M(MOV), Plain, Refine::MovSpecial},
    {M(MOVNTI), Plain},
    {M(MOVSB), kString},
    {M(MOVSD), kFp, Refine::StringForm},  // A5 movsd (string) or F2 0F 10/11 movsd (SSE2)
    {M(MOVSW), kString},
    {M(MOVSX), Plain},
    {M(MOVZX), Plain},
    {M(MUL), Plain},
    {M(NEG), Plain},
    {M(NOP), Plain},
    {M(NOT), Plain},
    {M(OR), Plain, Refine::Group82},
    {M(OUT), Io | Callout},
    {M(OUTSB), Io | StringOp | Callout},
    {M(OUTSD), Io | StringOp | Callout},
    {M(OUTSW), Io | StringOp | Callout},
    {M(PAUSE), Plain},
    {M(POP), StackOp, Refine::PopSreg},
    {M(POPA), StackOp | Invalid64},
    {M(POPAD), StackOp | Invalid64},
    {M(POPF), StackOp | Sensitive},
    {M(POPFD), StackOp | Sensitive},
    {M(PREFETCHNTA), Plain},
    {M(PREFETCHT0), Plain},
    {M(PREFETCHT1), Plain},
    {M(PREFETCHT2), Plain},
    {M(PUSH), StackOp, Refine::PushSreg},
    {M(PUSHA), StackOp | Invalid64},
    {M(PUSHAD), StackOp | Invalid64},
    {M(PUSHF), StackOp | Sensitive},
    {M(PUSHFD), StackOp | Sensitive},
    {M(RCL), Plain},
    {M(RCR), Plain},
    {M(RDMSR), kSystemLoad},
    {M(RDPMC), Sensitive | Callout},
    {M(RDTSC), Sensitive | Callout},
    {M(RET), ControlFlow | StackOp, Refine::FarBranch},
    {M(ROL), Plain},
    {M(ROR), Plain},
    {M(RSM), ControlFlow | Callout},  // #UD outside SMM, which the virtual CPU never enters
    {M(SAHF), Plain},
    {M(SALC), Invalid64},
    {M(SAR), Plain},
    {M(SBB), Plain, Refine::Group82},
    {M(SCASB), kString},
    {M(SCASD), kString},
    {M(SCASW), kString},
    {M(SETB), Plain}, {M(SETBE), Plain}, {M(SETL), Plain}, {M(SETLE), Plain},
    {M(SETNB), Plain}, {M(SETNBE), Plain}, {M(SETNL), Plain}, {M(SETNLE), Plain},
    {M(SETNO), Plain}, {M(SETNP), Plain}, {M(SETNS), Plain}, {M(SETNZ), Plain},
    {M(SETO), Plain}, {M(SETP), Plain}, {M(SETS), Plain}, {M(SETZ), Plain},
    {M(SFENCE), Plain},
    {M(SGDT), Sensitive},
    {M(SHL), Plain},
    {M(SHLD), Plain},
    {M(SHR), Plain},
    {M(SHRD), Plain},
    {M(SIDT), Sensitive},
    {M(SLDT), Sensitive},
    {M(SMSW), Sensitive},
    {M(STC), Plain},
    {M(STD), Plain},
    {M(STI), Privileged | Sensitive},
    {M(STOSB), kString},
    {M(STOSD), kString},
    {M(STOSW), kString},
    {M(STR), Sensitive},
    {M(SUB), Plain, Refine::Group82},
    {M(SYSENTER), ControlFlow | Sensitive | SegmentLoad | Callout},
    {M(SYSEXIT), ControlFlow | Privileged | SegmentLoad | Callout},
    {M(TEST), Plain},
    {M(UD0), ControlFlow | Callout},  // always #UD
    {M(UD1), ControlFlow | Callout},
    {M(UD2), ControlFlow | Callout},
    {M(VERR), Sensitive | Callout},
    {M(VERW), Sensitive | Callout},
    {M(WBINVD), kSystemLoad},
    {M(WRMSR), kSystemLoad},
    {M(XADD), Plain},
    {M(XCHG), Plain},
    {M(XLAT), Plain},  // its [EBX+AL] operand is implicit: Instruction::memory_operand() does not show it
    {M(XOR), Plain, Refine::Group82},

    // ---- x87 (P6 adds fcmov/fcomi/fucomi) ----
    {M(F2XM1), kFp}, {M(FABS), kFp}, {M(FADD), kFp}, {M(FADDP), kFp}, {M(FBLD), kFp}, {M(FBSTP), kFp},
    {M(FCHS), kFp}, {M(FCMOVB), kFp}, {M(FCMOVBE), kFp}, {M(FCMOVE), kFp}, {M(FCMOVNB), kFp},
    {M(FCMOVNBE), kFp}, {M(FCMOVNE), kFp}, {M(FCMOVNU), kFp}, {M(FCMOVU), kFp}, {M(FCOM), kFp},
    {M(FCOMI), kFp}, {M(FCOMIP), kFp}, {M(FCOMP), kFp}, {M(FCOMPP), kFp}, {M(FCOS), kFp},
    {M(FDECSTP), kFp}, {M(FDISI8087_NOP), kFp}, {M(FDIV), kFp}, {M(FDIVP), kFp}, {M(FDIVR), kFp},
    {M(FDIVRP), kFp}, {M(FENI8087_NOP), kFp}, {M(FFREE), kFp}, {M(FFREEP), kFp}, {M(FIADD), kFp},
    {M(FICOM), kFp}, {M(FICOMP), kFp}, {M(FIDIV), kFp}, {M(FIDIVR), kFp}, {M(FILD), kFp},
    {M(FIMUL), kFp}, {M(FINCSTP), kFp}, {M(FIST), kFp}, {M(FISTP), kFp}, {M(FISUB), kFp},
    {M(FISUBR), kFp}, {M(FLD), kFp}, {M(FLD1), kFp}, {M(FLDCW), kFp}, {M(FLDENV), kFp},
    {M(FLDL2E), kFp}, {M(FLDL2T), kFp}, {M(FLDLG2), kFp}, {M(FLDLN2), kFp}, {M(FLDPI), kFp},
    {M(FLDZ), kFp}, {M(FMUL), kFp}, {M(FMULP), kFp}, {M(FNCLEX), kFp}, {M(FNINIT), kFp},
    {M(FNOP), kFp}, {M(FNSAVE), kFp | Sensitive}, {M(FNSTCW), kFp}, {M(FNSTENV), kFp | Sensitive},
    {M(FNSTSW), kFp}, {M(FPATAN), kFp}, {M(FPREM), kFp}, {M(FPREM1), kFp}, {M(FPTAN), kFp},
    {M(FRNDINT), kFp}, {M(FRSTOR), kFp}, {M(FSCALE), kFp}, {M(FSETPM287_NOP), kFp}, {M(FSIN), kFp},
    {M(FSINCOS), kFp}, {M(FSQRT), kFp}, {M(FST), kFp}, {M(FSTP), kFp}, {M(FSTPNCE), kFp},
    {M(FSUB), kFp}, {M(FSUBP), kFp}, {M(FSUBR), kFp}, {M(FSUBRP), kFp}, {M(FTST), kFp},
    {M(FUCOM), kFp}, {M(FUCOMI), kFp}, {M(FUCOMIP), kFp}, {M(FUCOMP), kFp}, {M(FUCOMPP), kFp},
    {M(FWAIT), kFp}, {M(FXAM), kFp}, {M(FXCH), kFp}, {M(FXTRACT), kFp}, {M(FYL2X), kFp},
    {M(FYL2XP1), kFp},

    // ---- MMX (incl. the integer additions of SSE/SSE2 on MMX and XMM registers) ----
    // maskmovq/maskmovdqu store through an implicit DS:EDI operand.
    {M(EMMS), kFp}, {M(MASKMOVQ), kFp}, {M(MOVD), kFp}, {M(MOVNTQ), kFp}, {M(MOVQ), kFp},
    {M(PACKSSDW), kFp}, {M(PACKSSWB), kFp}, {M(PACKUSWB), kFp}, {M(PADDB), kFp}, {M(PADDD), kFp},
    {M(PADDQ), kFp}, {M(PADDSB), kFp}, {M(PADDSW), kFp}, {M(PADDUSB), kFp}, {M(PADDUSW), kFp},
    {M(PADDW), kFp}, {M(PAND), kFp}, {M(PANDN), kFp}, {M(PAVGB), kFp}, {M(PAVGW), kFp},
    {M(PCMPEQB), kFp}, {M(PCMPEQD), kFp}, {M(PCMPEQW), kFp}, {M(PCMPGTB), kFp}, {M(PCMPGTD), kFp},
    {M(PCMPGTW), kFp}, {M(PEXTRW), kFp}, {M(PINSRW), kFp}, {M(PMADDWD), kFp}, {M(PMAXSW), kFp},
    {M(PMAXUB), kFp}, {M(PMINSW), kFp}, {M(PMINUB), kFp}, {M(PMOVMSKB), kFp}, {M(PMULHUW), kFp},
    {M(PMULHW), kFp}, {M(PMULLW), kFp}, {M(PMULUDQ), kFp}, {M(POR), kFp}, {M(PSADBW), kFp},
    {M(PSHUFW), kFp}, {M(PSLLD), kFp}, {M(PSLLQ), kFp}, {M(PSLLW), kFp}, {M(PSRAD), kFp},
    {M(PSRAW), kFp}, {M(PSRLD), kFp}, {M(PSRLQ), kFp}, {M(PSRLW), kFp}, {M(PSUBB), kFp},
    {M(PSUBD), kFp}, {M(PSUBQ), kFp}, {M(PSUBSB), kFp}, {M(PSUBSW), kFp}, {M(PSUBUSB), kFp},
    {M(PSUBUSW), kFp}, {M(PSUBW), kFp}, {M(PUNPCKHBW), kFp}, {M(PUNPCKHDQ), kFp},
    {M(PUNPCKHWD), kFp}, {M(PUNPCKLBW), kFp}, {M(PUNPCKLDQ), kFp}, {M(PUNPCKLWD), kFp},
    {M(PXOR), kFp},

    // ---- SSE (single precision, MXCSR, FXSAVE) ----
    {M(ADDPS), kFp}, {M(ADDSS), kFp}, {M(ANDNPS), kFp}, {M(ANDPS), kFp}, {M(CMPPS), kFp},
    {M(CMPSS), kFp}, {M(COMISS), kFp}, {M(CVTPI2PS), kFp}, {M(CVTPS2PI), kFp}, {M(CVTSI2SS), kFp},
    {M(CVTSS2SI), kFp}, {M(CVTTPS2PI), kFp}, {M(CVTTSS2SI), kFp}, {M(DIVPS), kFp}, {M(DIVSS), kFp},
    {M(FXRSTOR), kFp}, {M(FXSAVE), kFp | Sensitive}, {M(LDMXCSR), kFp}, {M(MAXPS), kFp},
    {M(MAXSS), kFp}, {M(MINPS), kFp}, {M(MINSS), kFp}, {M(MOVAPS), kFp}, {M(MOVHLPS), kFp},
    {M(MOVHPS), kFp}, {M(MOVLHPS), kFp}, {M(MOVLPS), kFp}, {M(MOVMSKPS), kFp}, {M(MOVNTPS), kFp},
    {M(MOVSS), kFp}, {M(MOVUPS), kFp}, {M(MULPS), kFp}, {M(MULSS), kFp}, {M(ORPS), kFp},
    {M(RCPPS), kFp}, {M(RCPSS), kFp}, {M(RSQRTPS), kFp}, {M(RSQRTSS), kFp}, {M(SHUFPS), kFp},
    {M(SQRTPS), kFp}, {M(SQRTSS), kFp}, {M(STMXCSR), kFp}, {M(SUBPS), kFp}, {M(SUBSS), kFp},
    {M(UCOMISS), kFp}, {M(UNPCKHPS), kFp}, {M(UNPCKLPS), kFp}, {M(XORPS), kFp},

    // ---- SSE2 (double precision, 128-bit integer) ----
    {M(ADDPD), kFp}, {M(ADDSD), kFp}, {M(ANDNPD), kFp}, {M(ANDPD), kFp}, {M(CMPPD), kFp},
    {M(COMISD), kFp}, {M(CVTDQ2PD), kFp}, {M(CVTDQ2PS), kFp}, {M(CVTPD2DQ), kFp},
    {M(CVTPD2PI), kFp}, {M(CVTPD2PS), kFp}, {M(CVTPI2PD), kFp}, {M(CVTPS2DQ), kFp},
    {M(CVTPS2PD), kFp}, {M(CVTSD2SI), kFp}, {M(CVTSD2SS), kFp}, {M(CVTSI2SD), kFp},
    {M(CVTSS2SD), kFp}, {M(CVTTPD2DQ), kFp}, {M(CVTTPD2PI), kFp}, {M(CVTTPS2DQ), kFp},
    {M(CVTTSD2SI), kFp}, {M(DIVPD), kFp}, {M(DIVSD), kFp}, {M(MASKMOVDQU), kFp}, {M(MAXPD), kFp},
    {M(MAXSD), kFp}, {M(MINPD), kFp}, {M(MINSD), kFp}, {M(MOVAPD), kFp}, {M(MOVDQ2Q), kFp},
    {M(MOVDQA), kFp}, {M(MOVDQU), kFp}, {M(MOVHPD), kFp}, {M(MOVLPD), kFp}, {M(MOVMSKPD), kFp},
    {M(MOVNTDQ), kFp}, {M(MOVNTPD), kFp}, {M(MOVQ2DQ), kFp}, {M(MOVUPD), kFp}, {M(MULPD), kFp},
    {M(MULSD), kFp}, {M(ORPD), kFp}, {M(PSHUFD), kFp}, {M(PSHUFHW), kFp}, {M(PSHUFLW), kFp},
    {M(PSLLDQ), kFp}, {M(PSRLDQ), kFp}, {M(PUNPCKHQDQ), kFp}, {M(PUNPCKLQDQ), kFp},
    {M(SHUFPD), kFp}, {M(SQRTPD), kFp}, {M(SQRTSD), kFp}, {M(SUBPD), kFp}, {M(SUBSD), kFp},
    {M(UCOMISD), kFp}, {M(UNPCKHPD), kFp}, {M(UNPCKLPD), kFp}, {M(XORPD), kFp},
};

#undef M

constexpr size_t kMnemonicSlots = static_cast<size_t>(ZYDIS_MNEMONIC_MAX_VALUE) + 1;

// Row number + 1 for every mnemonic (0: no row), so that classify() is one array load.
// Building it is also the compile-time duplicate check: a second row for a mnemonic makes
// the initializer throw, which is not a constant expression.
constexpr auto kRowOf = [] {
  std::array<uint16_t, kMnemonicSlots> rows{};
  for (size_t i = 0; i < std::size(kTable); ++i) {
    const auto m = static_cast<size_t>(kTable[i].mnemonic);
    if (m == ZYDIS_MNEMONIC_INVALID || m >= kMnemonicSlots || rows[m] != 0) {
      throw "duplicate or invalid mnemonic in the classification table";
    }
    rows[m] = static_cast<uint16_t>(i + 1);
  }
  return rows;
}();

// Rows hold Plain only alone and never Unclassified: both are statements about the whole
// instruction.
constexpr bool rows_well_formed() {
  for (const ClassEntry& row : kTable) {
    if (row.classes.empty() || row.classes.has(Unclassified)) return false;
    if (row.classes.has(Plain) && row.classes != InsnClassSet{Plain}) return false;
  }
  return true;
}
static_assert(rows_well_formed(), "a row combines Plain with other classes, or names Unclassified");

// The encoding part of a refinement: what the rule adds for this instruction.
InsnClassSet refinement(Refine rule, const ZydisDecodedInstruction& insn) {
  const bool one_byte = insn.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT;
  const bool two_byte = insn.opcode_map == ZYDIS_OPCODE_MAP_0F;
  const uint8_t op = insn.opcode;
  switch (rule) {
    case Refine::None:
    case Refine::StringForm:
      return {};
    case Refine::ShortIncDec:
      return one_byte && op >= 0x40 && op <= 0x4F ? InsnClassSet{Invalid64} : InsnClassSet{};
    case Refine::Group82:
      return one_byte && op == 0x82 ? InsnClassSet{Invalid64} : InsnClassSet{};
    case Refine::MovSpecial:
      if (one_byte && op == 0x8C) return Sensitive;                  // mov r/m, Sreg
      if (one_byte && op == 0x8E) return SegmentLoad | Callout;      // mov Sreg, r/m
      if (two_byte && (op == 0x20 || op == 0x21)) return Privileged;  // mov r32, CRn/DRn
      if (two_byte && (op == 0x22 || op == 0x23)) return Privileged | Callout;
      return {};
    case Refine::PushSreg:
      if (one_byte && (op == 0x06 || op == 0x0E || op == 0x16 || op == 0x1E)) return Sensitive | Invalid64;
      if (two_byte && (op == 0xA0 || op == 0xA8)) return Sensitive;  // push fs / gs
      return {};
    case Refine::PopSreg:
      if (one_byte && (op == 0x07 || op == 0x17 || op == 0x1F)) return SegmentLoad | Callout | Invalid64;
      if (two_byte && (op == 0xA1 || op == 0xA9)) return SegmentLoad | Callout;  // pop fs / gs
      return {};
    case Refine::FarBranch:
      if (insn.meta.branch_type != ZYDIS_BRANCH_TYPE_FAR) return {};
      if (one_byte && (op == 0x9A || op == 0xEA)) return SegmentLoad | Callout | Invalid64;  // ptr16:32
      return SegmentLoad | Callout;
  }
  return {};
}

}  // namespace

std::span<const ClassEntry> classification_table() { return kTable; }

bool in_guest_isa(const ZydisDecodedInstruction& insn) {
  switch (insn.meta.isa_ext) {
    case ZYDIS_ISA_EXT_BASE:
      // syscall/sysret are AMD's; an Intel P6 raises #UD for them.
      return insn.meta.isa_set != ZYDIS_ISA_SET_AMD;
    case ZYDIS_ISA_EXT_X87:
    case ZYDIS_ISA_EXT_MMX:
    case ZYDIS_ISA_EXT_SSE:
    case ZYDIS_ISA_EXT_SSE2:
    case ZYDIS_ISA_EXT_PAUSE:  // F3 90: a plain nop on older CPUs anyway
    case ZYDIS_ISA_EXT_CLFSH:  // clflush came with SSE2 (CPUID.CLFSH)
      return true;
    default:
      return false;
  }
}

InsnClassSet classify(const ZydisDecodedInstruction& insn) {
  const auto m = static_cast<size_t>(insn.mnemonic);
  const uint16_t row = m < kMnemonicSlots ? kRowOf[m] : 0;
  if (row == 0 || !in_guest_isa(insn)) return Unclassified;
  const ClassEntry& entry = kTable[row - 1];
  if (entry.refine == Refine::StringForm && insn.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT) return StringOp;
  InsnClassSet classes = entry.classes | refinement(entry.refine, insn);
  // Plain means "nothing else": any refinement that adds a class makes it not plain.
  if (classes != InsnClassSet{Plain}) classes.remove(Plain);
  return classes;
}

std::string_view insn_class_name(InsnClass c) {
  switch (c) {
    case Plain: return "Plain";
    case ControlFlow: return "ControlFlow";
    case Privileged: return "Privileged";
    case Sensitive: return "Sensitive";
    case Io: return "Io";
    case Invalid64: return "Invalid64";
    case StackOp: return "StackOp";
    case StringOp: return "StringOp";
    case SegmentLoad: return "SegmentLoad";
    case FloatingPoint: return "FloatingPoint";
    case Callout: return "Callout";
    case Unclassified: return "Unclassified";
    case Count: break;
  }
  return "?";
}

}  // namespace vmm86
