#include "decoder/classify.h"

#include <array>
#include <cstddef>
#include <iterator>

namespace vmm86 {
namespace {

using enum InsnClass;

#define M(name) ZYDIS_MNEMONIC_##name
// x87/MMX/SSE/SSE2: copied and run natively by the translator, emulated by h_fpu.
// clang-format off
#define FP(name) {M(name), FloatingPoint, Route::Copy, Interp::Fpu}
using R = Route;
using I = Interp;

// Shorthands for the most common rows.
constexpr InsnClassSet kFp = FloatingPoint;
constexpr InsnClassSet kJcc = ControlFlow;
constexpr InsnClassSet kString = StringOp;
// Exceptions and interrupts: delivered through the guest IDT by the monitor.
constexpr InsnClassSet kTrap = ControlFlow | Sensitive | StackOp | Callout;
// Descriptor-table and system-register loads: the monitor updates its shadow state.
constexpr InsnClassSet kSystemLoad = Privileged | Callout;

// THE table. Sections by ISA; rows inside a section sorted by mnemonic. Unique by mnemonic
// (checked at compile time below and by tests/decoder). A row reads
//   {mnemonic, classes, R::route (the translator's rewrite class, see Route),
//    I::handler (Interp::FooBar runs in the interpreter's h_foo_bar), encoding refinement}.
// Notes on the judgement calls:
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
    {M(AAA), Invalid64, R::Callout, I::Bcd},
    {M(AAD), Invalid64, R::Callout, I::Aad},
    {M(AAM), Invalid64, R::Callout, I::Aam},
    {M(AAS), Invalid64, R::Callout, I::Bcd},
    {M(ADC), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(ADD), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(AND), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(ARPL), Invalid64, R::Callout, I::Arpl},
    {M(BOUND), Invalid64, R::Callout, I::Bound},  // #BR is an ordinary exception, like #DE from div
    {M(BSF), Plain, R::Copy, I::Bitscan},
    {M(BSR), Plain, R::Copy, I::Bitscan},
    {M(BSWAP), Plain, R::Copy, I::Bswap},
    {M(BT), Plain, R::Copy, I::Bit},
    {M(BTC), Plain, R::Copy, I::Bit},
    {M(BTR), Plain, R::Copy, I::Bit},
    {M(BTS), Plain, R::Copy, I::Bit},
    {M(CALL), ControlFlow | StackOp, R::Call, I::Call, Refine::FarBranch},
    {M(CBW), Plain, R::Copy, I::Convert},
    {M(CDQ), Plain, R::Copy, I::Convert},
    {M(CLC), Plain, R::Copy, I::Flagop},
    {M(CLD), Plain, R::Copy, I::Flagop},
    {M(CLFLUSH), Plain, R::Copy, I::Clflush},
    {M(CLI), Privileged | Sensitive, R::Flags, I::Cli},
    {M(CLTS), kSystemLoad, R::Callout, I::Clts},
    {M(CMC), Plain, R::Copy, I::Flagop},
    {M(CMOVB), Plain, R::Copy, I::Cmovcc}, {M(CMOVBE), Plain, R::Copy, I::Cmovcc}, {M(CMOVL), Plain, R::Copy, I::Cmovcc}, {M(CMOVLE), Plain, R::Copy, I::Cmovcc},
    {M(CMOVNB), Plain, R::Copy, I::Cmovcc}, {M(CMOVNBE), Plain, R::Copy, I::Cmovcc}, {M(CMOVNL), Plain, R::Copy, I::Cmovcc}, {M(CMOVNLE), Plain, R::Copy, I::Cmovcc},
    {M(CMOVNO), Plain, R::Copy, I::Cmovcc}, {M(CMOVNP), Plain, R::Copy, I::Cmovcc}, {M(CMOVNS), Plain, R::Copy, I::Cmovcc}, {M(CMOVNZ), Plain, R::Copy, I::Cmovcc},
    {M(CMOVO), Plain, R::Copy, I::Cmovcc}, {M(CMOVP), Plain, R::Copy, I::Cmovcc}, {M(CMOVS), Plain, R::Copy, I::Cmovcc}, {M(CMOVZ), Plain, R::Copy, I::Cmovcc},
    {M(CMP), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(CMPSB), kString, R::String, I::String},
    {M(CMPSD), kFp, R::Copy, I::Fpu, Refine::StringForm},  // A7 cmpsd (string) or F2 0F C2 cmpsd (SSE2)
    {M(CMPSW), kString, R::String, I::String},
    {M(CMPXCHG), Plain, R::Copy, I::Cmpxchg},
    {M(CMPXCHG8B), Plain, R::Copy, I::Cmpxchg8b},
    {M(CPUID), Sensitive | Callout, R::Callout, I::Cpuid},
    {M(CWD), Plain, R::Copy, I::Convert},
    {M(CWDE), Plain, R::Copy, I::Convert},
    {M(DAA), Invalid64, R::Callout, I::Bcd},
    {M(DAS), Invalid64, R::Callout, I::Bcd},
    {M(DEC), Plain, R::Copy, I::Incdec, Refine::ShortIncDec},
    {M(DIV), Plain, R::Copy, I::Div},
    {M(ENTER), StackOp, R::Callout, I::Enter},
    {M(HLT), ControlFlow | kSystemLoad, R::EndBlock, I::Hlt},  // waits for an interrupt: ends the block
    {M(IDIV), Plain, R::Copy, I::Div},
    {M(IMUL), Plain, R::Copy, I::Imul},
    {M(IN), Io | Callout, R::Callout, I::In},
    {M(INC), Plain, R::Copy, I::Incdec, Refine::ShortIncDec},
    {M(INSB), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(INSD), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(INSW), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(INT), kTrap, R::EndBlock, I::Int},
    {M(INT1), kTrap, R::EndBlock, I::Int},
    {M(INT3), kTrap, R::EndBlock, I::Int},
    {M(INTO), kTrap | Invalid64, R::EndBlock, I::Int},
    {M(INVD), kSystemLoad, R::Callout, I::Cache},
    {M(INVLPG), kSystemLoad, R::Callout, I::Invlpg},
    {M(IRET), kTrap | SegmentLoad, R::EndBlock, I::Iret},
    {M(IRETD), kTrap | SegmentLoad, R::EndBlock, I::Iret},
    {M(JB), kJcc, R::Branch, I::Jcc}, {M(JBE), kJcc, R::Branch, I::Jcc}, {M(JCXZ), kJcc, R::Branch, I::Jcxz}, {M(JECXZ), kJcc, R::Branch, I::Jcxz}, {M(JL), kJcc, R::Branch, I::Jcc}, {M(JLE), kJcc, R::Branch, I::Jcc},
    {M(JMP), ControlFlow, R::Branch, I::Jmp, Refine::FarBranch},
    {M(JNB), kJcc, R::Branch, I::Jcc}, {M(JNBE), kJcc, R::Branch, I::Jcc}, {M(JNL), kJcc, R::Branch, I::Jcc}, {M(JNLE), kJcc, R::Branch, I::Jcc}, {M(JNO), kJcc, R::Branch, I::Jcc}, {M(JNP), kJcc, R::Branch, I::Jcc},
    {M(JNS), kJcc, R::Branch, I::Jcc}, {M(JNZ), kJcc, R::Branch, I::Jcc}, {M(JO), kJcc, R::Branch, I::Jcc}, {M(JP), kJcc, R::Branch, I::Jcc}, {M(JS), kJcc, R::Branch, I::Jcc}, {M(JZ), kJcc, R::Branch, I::Jcc},
    {M(LAHF), Plain, R::Copy, I::Lahf},
    {M(LAR), Sensitive | Callout, R::Callout, I::LarLsl},
    {M(LDS), SegmentLoad | Invalid64 | Callout, R::Callout, I::LoadFarPointer},
    {M(LEA), Plain, R::Copy, I::Lea},
    {M(LEAVE), StackOp, R::Stack, I::Leave},
    {M(LES), SegmentLoad | Invalid64 | Callout, R::Callout, I::LoadFarPointer},
    {M(LFENCE), Plain, R::Copy, I::Nop},
    {M(LFS), SegmentLoad | Callout, R::Callout, I::LoadFarPointer},
    {M(LGDT), kSystemLoad, R::Callout, I::LoadDtr},
    {M(LGS), SegmentLoad | Callout, R::Callout, I::LoadFarPointer},
    {M(LIDT), kSystemLoad, R::Callout, I::LoadDtr},
    {M(LLDT), kSystemLoad, R::Callout, I::Lldt},
    {M(LMSW), kSystemLoad, R::Callout, I::Lmsw},
    {M(LODSB), kString, R::String, I::String},
    {M(LODSD), kString, R::String, I::String},
    {M(LODSW), kString, R::String, I::String},
    {M(LOOP), kJcc, R::Branch, I::Loop},
    {M(LOOPE), kJcc, R::Branch, I::Loop},
    {M(LOOPNE), kJcc, R::Branch, I::Loop},
    {M(LSL), Sensitive | Callout, R::Callout, I::LarLsl},
    {M(LSS), SegmentLoad | Callout, R::Callout, I::LoadFarPointer},
    {M(LTR), kSystemLoad, R::Callout, I::Ltr},
    {M(MFENCE), Plain, R::Copy, I::Nop},
    {M(MOV), Plain, R::Copy, I::Mov, Refine::MovSpecial},
    {M(MOVNTI), Plain, R::Copy, I::Mov},
    {M(MOVSB), kString, R::String, I::String},
    {M(MOVSD), kFp, R::Copy, I::Fpu, Refine::StringForm},  // A5 movsd (string) or F2 0F 10/11 movsd (SSE2)
    {M(MOVSW), kString, R::String, I::String},
    {M(MOVSX), Plain, R::Copy, I::Movx},
    {M(MOVZX), Plain, R::Copy, I::Movx},
    {M(MUL), Plain, R::Copy, I::Mul},
    {M(NEG), Plain, R::Copy, I::Neg},
    {M(NOP), Plain, R::Copy, I::Nop},
    {M(NOT), Plain, R::Copy, I::Not},
    {M(OR), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(OUT), Io | Callout, R::Callout, I::Out},
    {M(OUTSB), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(OUTSD), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(OUTSW), Io | StringOp | Callout, R::EndBlock, I::String},
    {M(PAUSE), Plain, R::Copy, I::Nop},
    {M(POP), StackOp, R::Stack, I::Pop, Refine::PopSreg},
    {M(POPA), StackOp | Invalid64, R::Callout, I::Popa},
    {M(POPAD), StackOp | Invalid64, R::Callout, I::Popa},
    {M(POPF), StackOp | Sensitive, R::Callout, I::Popf},
    {M(POPFD), StackOp | Sensitive, R::Flags, I::Popf},
    {M(PREFETCHNTA), Plain, R::Copy, I::Nop},
    {M(PREFETCHT0), Plain, R::Copy, I::Nop},
    {M(PREFETCHT1), Plain, R::Copy, I::Nop},
    {M(PREFETCHT2), Plain, R::Copy, I::Nop},
    {M(PUSH), StackOp, R::Stack, I::Push, Refine::PushSreg},
    {M(PUSHA), StackOp | Invalid64, R::Callout, I::Pusha},
    {M(PUSHAD), StackOp | Invalid64, R::Callout, I::Pusha},
    {M(PUSHF), StackOp | Sensitive, R::Callout, I::Pushf},
    {M(PUSHFD), StackOp | Sensitive, R::Flags, I::Pushf},
    {M(RCL), Plain, R::Copy, I::Shift},
    {M(RCR), Plain, R::Copy, I::Shift},
    {M(RDMSR), kSystemLoad, R::Callout, I::Rdmsr},
    {M(RDPMC), Sensitive | Callout, R::Callout, I::Rdpmc},
    {M(RDTSC), Sensitive | Callout, R::Time, I::Rdtsc},
    {M(RET), ControlFlow | StackOp, R::Branch, I::Ret, Refine::FarBranch},
    {M(ROL), Plain, R::Copy, I::Shift},
    {M(ROR), Plain, R::Copy, I::Shift},
    {M(RSM), ControlFlow | Callout, R::EndBlock, I::Ud},  // #UD outside SMM, which the virtual CPU never enters
    {M(SAHF), Plain, R::Copy, I::Sahf},
    {M(SALC), Invalid64, R::Callout, I::Salc},
    {M(SAR), Plain, R::Copy, I::Shift},
    {M(SBB), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(SCASB), kString, R::String, I::String},
    {M(SCASD), kString, R::String, I::String},
    {M(SCASW), kString, R::String, I::String},
    {M(SETB), Plain, R::Copy, I::Setcc}, {M(SETBE), Plain, R::Copy, I::Setcc}, {M(SETL), Plain, R::Copy, I::Setcc}, {M(SETLE), Plain, R::Copy, I::Setcc},
    {M(SETNB), Plain, R::Copy, I::Setcc}, {M(SETNBE), Plain, R::Copy, I::Setcc}, {M(SETNL), Plain, R::Copy, I::Setcc}, {M(SETNLE), Plain, R::Copy, I::Setcc},
    {M(SETNO), Plain, R::Copy, I::Setcc}, {M(SETNP), Plain, R::Copy, I::Setcc}, {M(SETNS), Plain, R::Copy, I::Setcc}, {M(SETNZ), Plain, R::Copy, I::Setcc},
    {M(SETO), Plain, R::Copy, I::Setcc}, {M(SETP), Plain, R::Copy, I::Setcc}, {M(SETS), Plain, R::Copy, I::Setcc}, {M(SETZ), Plain, R::Copy, I::Setcc},
    {M(SFENCE), Plain, R::Copy, I::Nop},
    {M(SGDT), Sensitive, R::Callout, I::StoreDtr},
    {M(SHL), Plain, R::Copy, I::Shift},
    {M(SHLD), Plain, R::Copy, I::Shxd},
    {M(SHR), Plain, R::Copy, I::Shift},
    {M(SHRD), Plain, R::Copy, I::Shxd},
    {M(SIDT), Sensitive, R::Callout, I::StoreDtr},
    {M(SLDT), Sensitive, R::Callout, I::SldtStr},
    {M(SMSW), Sensitive, R::Callout, I::Smsw},
    {M(STC), Plain, R::Copy, I::Flagop},
    {M(STD), Plain, R::Copy, I::Flagop},
    {M(STI), Privileged | Sensitive, R::Flags, I::Sti},
    {M(STOSB), kString, R::String, I::String},
    {M(STOSD), kString, R::String, I::String},
    {M(STOSW), kString, R::String, I::String},
    {M(STR), Sensitive, R::Callout, I::SldtStr},
    {M(SUB), Plain, R::Copy, I::Binop, Refine::Group82},
    {M(SYSENTER), ControlFlow | Sensitive | SegmentLoad | Callout, R::EndBlock, I::Sysenter},
    {M(SYSEXIT), ControlFlow | Privileged | SegmentLoad | Callout, R::EndBlock, I::Sysexit},
    {M(TEST), Plain, R::Copy, I::Binop},
    {M(UD0), ControlFlow | Callout, R::EndBlock, I::Ud},  // always #UD
    {M(UD1), ControlFlow | Callout, R::EndBlock, I::Ud},
    {M(UD2), ControlFlow | Callout, R::EndBlock, I::Ud},
    {M(VERR), Sensitive | Callout, R::Callout, I::VerrVerw},
    {M(VERW), Sensitive | Callout, R::Callout, I::VerrVerw},
    {M(WBINVD), kSystemLoad, R::Callout, I::Cache},
    {M(WRMSR), kSystemLoad, R::Callout, I::Wrmsr},
    {M(XADD), Plain, R::Copy, I::Xadd},
    {M(XCHG), Plain, R::Copy, I::Xchg},
    {M(XLAT), Plain, R::Copy, I::Xlat},  // its [EBX+AL] operand is implicit: Instruction::memory_operand() does not show it
    {M(XOR), Plain, R::Copy, I::Binop, Refine::Group82},

    // ---- x87 (P6 adds fcmov/fcomi/fucomi) ----
    FP(F2XM1), FP(FABS), FP(FADD), FP(FADDP), FP(FBLD), FP(FBSTP),
    FP(FCHS), FP(FCMOVB), FP(FCMOVBE), FP(FCMOVE), FP(FCMOVNB),
    FP(FCMOVNBE), FP(FCMOVNE), FP(FCMOVNU), FP(FCMOVU), FP(FCOM),
    FP(FCOMI), FP(FCOMIP), FP(FCOMP), FP(FCOMPP), FP(FCOS),
    FP(FDECSTP), FP(FDISI8087_NOP), FP(FDIV), FP(FDIVP), FP(FDIVR),
    FP(FDIVRP), FP(FENI8087_NOP), FP(FFREE), FP(FFREEP), FP(FIADD),
    FP(FICOM), FP(FICOMP), FP(FIDIV), FP(FIDIVR), FP(FILD),
    FP(FIMUL), FP(FINCSTP), FP(FIST), FP(FISTP), FP(FISUB),
    FP(FISUBR), FP(FLD), FP(FLD1), FP(FLDCW), FP(FLDENV),
    FP(FLDL2E), FP(FLDL2T), FP(FLDLG2), FP(FLDLN2), FP(FLDPI),
    FP(FLDZ), FP(FMUL), FP(FMULP), FP(FNCLEX), FP(FNINIT),
    FP(FNOP), {M(FNSAVE), kFp | Sensitive, R::EndBlock, I::Fpu}, FP(FNSTCW), {M(FNSTENV), kFp | Sensitive, R::EndBlock, I::Fpu},
    FP(FNSTSW), FP(FPATAN), FP(FPREM), FP(FPREM1), FP(FPTAN),
    FP(FRNDINT), FP(FRSTOR), FP(FSCALE), FP(FSETPM287_NOP), FP(FSIN),
    FP(FSINCOS), FP(FSQRT), FP(FST), FP(FSTP), FP(FSTPNCE),
    FP(FSUB), FP(FSUBP), FP(FSUBR), FP(FSUBRP), FP(FTST),
    FP(FUCOM), FP(FUCOMI), FP(FUCOMIP), FP(FUCOMP), FP(FUCOMPP),
    FP(FWAIT), FP(FXAM), FP(FXCH), FP(FXTRACT), FP(FYL2X),
    FP(FYL2XP1),

    // ---- MMX (incl. the integer additions of SSE/SSE2 on MMX and XMM registers) ----
    // maskmovq/maskmovdqu store through an implicit DS:EDI operand.
    FP(EMMS), FP(MASKMOVQ), FP(MOVD), FP(MOVNTQ), FP(MOVQ),
    FP(PACKSSDW), FP(PACKSSWB), FP(PACKUSWB), FP(PADDB), FP(PADDD),
    FP(PADDQ), FP(PADDSB), FP(PADDSW), FP(PADDUSB), FP(PADDUSW),
    FP(PADDW), FP(PAND), FP(PANDN), FP(PAVGB), FP(PAVGW),
    FP(PCMPEQB), FP(PCMPEQD), FP(PCMPEQW), FP(PCMPGTB), FP(PCMPGTD),
    FP(PCMPGTW), FP(PEXTRW), FP(PINSRW), FP(PMADDWD), FP(PMAXSW),
    FP(PMAXUB), FP(PMINSW), FP(PMINUB), FP(PMOVMSKB), FP(PMULHUW),
    FP(PMULHW), FP(PMULLW), FP(PMULUDQ), FP(POR), FP(PSADBW),
    FP(PSHUFW), FP(PSLLD), FP(PSLLQ), FP(PSLLW), FP(PSRAD),
    FP(PSRAW), FP(PSRLD), FP(PSRLQ), FP(PSRLW), FP(PSUBB),
    FP(PSUBD), FP(PSUBQ), FP(PSUBSB), FP(PSUBSW), FP(PSUBUSB),
    FP(PSUBUSW), FP(PSUBW), FP(PUNPCKHBW), FP(PUNPCKHDQ),
    FP(PUNPCKHWD), FP(PUNPCKLBW), FP(PUNPCKLDQ), FP(PUNPCKLWD),
    FP(PXOR),

    // ---- SSE (single precision, MXCSR, FXSAVE) ----
    FP(ADDPS), FP(ADDSS), FP(ANDNPS), FP(ANDPS), FP(CMPPS),
    FP(CMPSS), FP(COMISS), FP(CVTPI2PS), FP(CVTPS2PI), FP(CVTSI2SS),
    FP(CVTSS2SI), FP(CVTTPS2PI), FP(CVTTSS2SI), FP(DIVPS), FP(DIVSS),
    FP(FXRSTOR), {M(FXSAVE), kFp | Sensitive, R::EndBlock, I::Fpu}, FP(LDMXCSR), FP(MAXPS),
    FP(MAXSS), FP(MINPS), FP(MINSS), FP(MOVAPS), FP(MOVHLPS),
    FP(MOVHPS), FP(MOVLHPS), FP(MOVLPS), FP(MOVMSKPS), FP(MOVNTPS),
    FP(MOVSS), FP(MOVUPS), FP(MULPS), FP(MULSS), FP(ORPS),
    FP(RCPPS), FP(RCPSS), FP(RSQRTPS), FP(RSQRTSS), FP(SHUFPS),
    FP(SQRTPS), FP(SQRTSS), FP(STMXCSR), FP(SUBPS), FP(SUBSS),
    FP(UCOMISS), FP(UNPCKHPS), FP(UNPCKLPS), FP(XORPS),

    // ---- SSE2 (double precision, 128-bit integer) ----
    FP(ADDPD), FP(ADDSD), FP(ANDNPD), FP(ANDPD), FP(CMPPD),
    FP(COMISD), FP(CVTDQ2PD), FP(CVTDQ2PS), FP(CVTPD2DQ),
    FP(CVTPD2PI), FP(CVTPD2PS), FP(CVTPI2PD), FP(CVTPS2DQ),
    FP(CVTPS2PD), FP(CVTSD2SI), FP(CVTSD2SS), FP(CVTSI2SD),
    FP(CVTSS2SD), FP(CVTTPD2DQ), FP(CVTTPD2PI), FP(CVTTPS2DQ),
    FP(CVTTSD2SI), FP(DIVPD), FP(DIVSD), FP(MASKMOVDQU), FP(MAXPD),
    FP(MAXSD), FP(MINPD), FP(MINSD), FP(MOVAPD), FP(MOVDQ2Q),
    FP(MOVDQA), FP(MOVDQU), FP(MOVHPD), FP(MOVLPD), FP(MOVMSKPD),
    FP(MOVNTDQ), FP(MOVNTPD), FP(MOVQ2DQ), FP(MOVUPD), FP(MULPD),
    FP(MULSD), FP(ORPD), FP(PSHUFD), FP(PSHUFHW), FP(PSHUFLW),
    FP(PSLLDQ), FP(PSRLDQ), FP(PUNPCKHQDQ), FP(PUNPCKLQDQ),
    FP(SHUFPD), FP(SQRTPD), FP(SQRTSD), FP(SUBPD), FP(SUBSD),
    FP(UCOMISD), FP(UNPCKHPD), FP(UNPCKLPD), FP(XORPD),
};
// clang-format on

#undef FP

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
// instruction. A row's route agrees with its classes: Callout and EndBlock are what the
// classes would fall back to anyway (fallback_route), the rewrite classes have the classes
// their rules expect.
constexpr bool route_fits(const ClassEntry& row) {
  const InsnClassSet c = row.classes;
  switch (row.route) {
    case Route::Copy: return c.has(Plain) || c.has(FloatingPoint) || row.refine == Refine::ShortIncDec;
    case Route::Stack: return c.has(StackOp) && !c.has(ControlFlow);
    case Route::Flags: return c.has(Sensitive) && fallback_route(c) == Route::Callout;
    case Route::String: return c.has(StringOp);
    case Route::Branch:
    case Route::Call: return c.has(ControlFlow);
    case Route::Time: return c.has(Sensitive) && fallback_route(c) == Route::Callout;
    case Route::Callout:
    case Route::EndBlock: return fallback_route(c) == row.route;
  }
  return false;
}

constexpr bool rows_well_formed() {
  for (const ClassEntry& row : kTable) {
    if (row.classes.empty() || row.classes.has(Unclassified)) return false;
    if (row.classes.has(Plain) && row.classes != InsnClassSet{Plain}) return false;
    if (!route_fits(row) || row.interp >= Interp::Count) return false;
    if ((row.interp == Interp::Fpu) != row.classes.has(FloatingPoint)) return false;
  }
  return true;
}
static_assert(rows_well_formed(),
              "a row combines Plain with other classes, names Unclassified, or routes against its classes");

// The encoding part of a refinement: what the rule changes for this instruction.
struct Refinement {
  InsnClassSet add{};              ///< classes added to the row's
  std::optional<Route> route{};    ///< replaces the row's route
  std::optional<Interp> interp{};  ///< replaces the row's handler
};

Refinement refinement(Refine rule, const ZydisDecodedInstruction& insn) {
  const bool one_byte = insn.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT;
  const bool two_byte = insn.opcode_map == ZYDIS_OPCODE_MAP_0F;
  const uint8_t op = insn.opcode;
  switch (rule) {
    case Refine::None: return {};
    case Refine::StringForm:
      if (one_byte) return {StringOp, Route::String, Interp::String};
      return {};
    case Refine::ShortIncDec:  // rewrite_ident re-encodes it as FF /0 or /1
      return one_byte && op >= 0x40 && op <= 0x4F ? Refinement{Invalid64} : Refinement{};
    case Refine::Group82: return one_byte && op == 0x82 ? Refinement{Invalid64, Route::Callout} : Refinement{};
    case Refine::MovSpecial:
      if (one_byte && op == 0x8C) return {Sensitive, Route::Callout};                               // mov r/m, Sreg
      if (one_byte && op == 0x8E) return {SegmentLoad | Callout, Route::Callout, Interp::MovSreg};  // mov Sreg, r/m
      if (two_byte && op == 0x20) return {Privileged, Route::Callout, Interp::MovCr};               // mov r32, CRn
      if (two_byte && op == 0x21) return {Privileged, Route::Callout, Interp::MovDr};               // mov r32, DRn
      if (two_byte && op == 0x22) return {Privileged | Callout, Route::Callout, Interp::MovCr};
      if (two_byte && op == 0x23) return {Privileged | Callout, Route::Callout, Interp::MovDr};
      return {};
    case Refine::PushSreg:  // rewrite_stack pushes the selector inline
      if (one_byte && (op == 0x06 || op == 0x0E || op == 0x16 || op == 0x1E)) return {Sensitive | Invalid64};
      if (two_byte && (op == 0xA0 || op == 0xA8)) return {Sensitive};  // push fs / gs
      return {};
    case Refine::PopSreg:
      if (one_byte && (op == 0x07 || op == 0x17 || op == 0x1F)) {
        return {SegmentLoad | Callout | Invalid64, Route::Callout};
      }
      if (two_byte && (op == 0xA1 || op == 0xA9)) return {SegmentLoad | Callout, Route::Callout};  // pop fs / gs
      return {};
    case Refine::FarBranch:
      if (insn.meta.branch_type != ZYDIS_BRANCH_TYPE_FAR) return {};
      if (one_byte && (op == 0x9A || op == 0xEA))
        return {SegmentLoad | Callout | Invalid64, Route::EndBlock};  // ptr16:32
      return {SegmentLoad | Callout, Route::EndBlock};
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
    default: return false;
  }
}

Classification classify_and_route(const ZydisDecodedInstruction& insn) {
  const auto m = static_cast<size_t>(insn.mnemonic);
  const uint16_t row = m < kMnemonicSlots ? kRowOf[m] : 0;
  if (row == 0 || !in_guest_isa(insn)) return {Unclassified, Route::EndBlock, Interp::Ud};
  const ClassEntry& entry = kTable[row - 1];
  const Refinement refined = refinement(entry.refine, insn);
  Classification c{entry.classes | refined.add, refined.route.value_or(entry.route),
                   refined.interp.value_or(entry.interp)};
  // Plain means "nothing else": any refinement that adds a class makes it not plain.
  if (c.classes != InsnClassSet{Plain}) c.classes.remove(Plain);
  // The SSE2 mnemonic's row says FloatingPoint; the string form is only a string operation.
  if (refined.route == Route::String) c.classes = StringOp;
  return c;
}

std::optional<StringForm> string_form(ZydisMnemonic m, InsnClassSet classes) {
  if (!classes.has(StringOp)) return std::nullopt;
  switch (m) {
    case M(MOVSB):
    case M(MOVSW):
    case M(MOVSD): return StringForm{StringKind::Movs, 0xA4, true, true};
    case M(CMPSB):
    case M(CMPSW):
    case M(CMPSD): return StringForm{StringKind::Cmps, 0xA6, true, true};
    case M(STOSB):
    case M(STOSW):
    case M(STOSD): return StringForm{StringKind::Stos, 0xAA, false, true};
    case M(LODSB):
    case M(LODSW):
    case M(LODSD): return StringForm{StringKind::Lods, 0xAC, true, false};
    case M(SCASB):
    case M(SCASW):
    case M(SCASD): return StringForm{StringKind::Scas, 0xAE, false, true};
    case M(INSB):
    case M(INSW):
    case M(INSD): return StringForm{StringKind::Ins, 0x6C, false, true};
    case M(OUTSB):
    case M(OUTSW):
    case M(OUTSD): return StringForm{StringKind::Outs, 0x6E, true, false};
    default: return std::nullopt;
  }
}

std::string_view route_name(Route r) {
  switch (r) {
    case Route::Copy: return "Copy";
    case Route::Stack: return "Stack";
    case Route::Flags: return "Flags";
    case Route::String: return "String";
    case Route::Branch: return "Branch";
    case Route::Call: return "Call";
    case Route::Time: return "Time";
    case Route::Callout: return "Callout";
    case Route::EndBlock: return "EndBlock";
  }
  return "?";
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

#undef M

}  // namespace vmm86
