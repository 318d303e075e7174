// THE interpreter dispatch table: one constexpr array keyed by ZydisMnemonic, built from
// the list below. A duplicate mnemonic fails to compile; tests/interp checks coverage.
#include <array>
#include <utility>

#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

struct Entry {
  ZydisMnemonic mnemonic;
  Handler handler;
};

// clang-format off
constexpr Entry kEntries[] = {
    // Arithmetic and logic.
    {ZYDIS_MNEMONIC_ADD, h_binop}, {ZYDIS_MNEMONIC_OR, h_binop}, {ZYDIS_MNEMONIC_ADC, h_binop},
    {ZYDIS_MNEMONIC_SBB, h_binop}, {ZYDIS_MNEMONIC_AND, h_binop}, {ZYDIS_MNEMONIC_SUB, h_binop},
    {ZYDIS_MNEMONIC_XOR, h_binop}, {ZYDIS_MNEMONIC_CMP, h_binop}, {ZYDIS_MNEMONIC_TEST, h_binop},
    {ZYDIS_MNEMONIC_INC, h_incdec}, {ZYDIS_MNEMONIC_DEC, h_incdec},
    {ZYDIS_MNEMONIC_NEG, h_neg}, {ZYDIS_MNEMONIC_NOT, h_not},
    {ZYDIS_MNEMONIC_ROL, h_shift}, {ZYDIS_MNEMONIC_ROR, h_shift}, {ZYDIS_MNEMONIC_RCL, h_shift},
    {ZYDIS_MNEMONIC_RCR, h_shift}, {ZYDIS_MNEMONIC_SHL, h_shift}, {ZYDIS_MNEMONIC_SHR, h_shift},
    {ZYDIS_MNEMONIC_SAR, h_shift},
    {ZYDIS_MNEMONIC_SHLD, h_shxd}, {ZYDIS_MNEMONIC_SHRD, h_shxd},
    {ZYDIS_MNEMONIC_MUL, h_mul}, {ZYDIS_MNEMONIC_IMUL, h_imul},
    {ZYDIS_MNEMONIC_DIV, h_div}, {ZYDIS_MNEMONIC_IDIV, h_div},
    {ZYDIS_MNEMONIC_BT, h_bit}, {ZYDIS_MNEMONIC_BTS, h_bit}, {ZYDIS_MNEMONIC_BTR, h_bit},
    {ZYDIS_MNEMONIC_BTC, h_bit},
    {ZYDIS_MNEMONIC_BSF, h_bitscan}, {ZYDIS_MNEMONIC_BSR, h_bitscan},
    {ZYDIS_MNEMONIC_DAA, h_bcd}, {ZYDIS_MNEMONIC_DAS, h_bcd}, {ZYDIS_MNEMONIC_AAA, h_bcd},
    {ZYDIS_MNEMONIC_AAS, h_bcd}, {ZYDIS_MNEMONIC_AAM, h_aam}, {ZYDIS_MNEMONIC_AAD, h_aad},
    {ZYDIS_MNEMONIC_SETO, h_setcc}, {ZYDIS_MNEMONIC_SETNO, h_setcc}, {ZYDIS_MNEMONIC_SETB, h_setcc},
    {ZYDIS_MNEMONIC_SETNB, h_setcc}, {ZYDIS_MNEMONIC_SETZ, h_setcc}, {ZYDIS_MNEMONIC_SETNZ, h_setcc},
    {ZYDIS_MNEMONIC_SETBE, h_setcc}, {ZYDIS_MNEMONIC_SETNBE, h_setcc}, {ZYDIS_MNEMONIC_SETS, h_setcc},
    {ZYDIS_MNEMONIC_SETNS, h_setcc}, {ZYDIS_MNEMONIC_SETP, h_setcc}, {ZYDIS_MNEMONIC_SETNP, h_setcc},
    {ZYDIS_MNEMONIC_SETL, h_setcc}, {ZYDIS_MNEMONIC_SETNL, h_setcc}, {ZYDIS_MNEMONIC_SETLE, h_setcc},
    {ZYDIS_MNEMONIC_SETNLE, h_setcc},
    {ZYDIS_MNEMONIC_CMOVO, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVNO, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVB, h_cmovcc},
    {ZYDIS_MNEMONIC_CMOVNB, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVZ, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVNZ, h_cmovcc},
    {ZYDIS_MNEMONIC_CMOVBE, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVNBE, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVS, h_cmovcc},
    {ZYDIS_MNEMONIC_CMOVNS, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVP, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVNP, h_cmovcc},
    {ZYDIS_MNEMONIC_CMOVL, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVNL, h_cmovcc}, {ZYDIS_MNEMONIC_CMOVLE, h_cmovcc},
    {ZYDIS_MNEMONIC_CMOVNLE, h_cmovcc},
    {ZYDIS_MNEMONIC_CMPXCHG, h_cmpxchg}, {ZYDIS_MNEMONIC_CMPXCHG8B, h_cmpxchg8b},
    {ZYDIS_MNEMONIC_XADD, h_xadd}, {ZYDIS_MNEMONIC_BSWAP, h_bswap},
    // Data movement.
    {ZYDIS_MNEMONIC_MOV, h_mov}, {ZYDIS_MNEMONIC_MOVZX, h_movx}, {ZYDIS_MNEMONIC_MOVSX, h_movx},
    {ZYDIS_MNEMONIC_LEA, h_lea}, {ZYDIS_MNEMONIC_XCHG, h_xchg},
    {ZYDIS_MNEMONIC_CBW, h_convert}, {ZYDIS_MNEMONIC_CWDE, h_convert}, {ZYDIS_MNEMONIC_CWD, h_convert},
    {ZYDIS_MNEMONIC_CDQ, h_convert},
    {ZYDIS_MNEMONIC_CLC, h_flagop}, {ZYDIS_MNEMONIC_STC, h_flagop}, {ZYDIS_MNEMONIC_CMC, h_flagop},
    {ZYDIS_MNEMONIC_CLD, h_flagop}, {ZYDIS_MNEMONIC_STD, h_flagop},
    {ZYDIS_MNEMONIC_LAHF, h_lahf}, {ZYDIS_MNEMONIC_SAHF, h_sahf}, {ZYDIS_MNEMONIC_SALC, h_salc},
    {ZYDIS_MNEMONIC_NOP, h_nop}, {ZYDIS_MNEMONIC_PAUSE, h_nop}, {ZYDIS_MNEMONIC_PREFETCHNTA, h_nop},
    {ZYDIS_MNEMONIC_PREFETCHT0, h_nop}, {ZYDIS_MNEMONIC_PREFETCHT1, h_nop}, {ZYDIS_MNEMONIC_PREFETCHT2, h_nop},
    {ZYDIS_MNEMONIC_CLFLUSH, h_clflush}, {ZYDIS_MNEMONIC_LFENCE, h_nop}, {ZYDIS_MNEMONIC_MFENCE, h_nop},
    {ZYDIS_MNEMONIC_SFENCE, h_nop},
    {ZYDIS_MNEMONIC_XLAT, h_xlat}, {ZYDIS_MNEMONIC_BOUND, h_bound},
    {ZYDIS_MNEMONIC_UD0, h_ud}, {ZYDIS_MNEMONIC_UD1, h_ud}, {ZYDIS_MNEMONIC_UD2, h_ud},
    {ZYDIS_MNEMONIC_RSM, h_ud},  // no SMM: never in System Management Mode
    // Control flow and stack.
    {ZYDIS_MNEMONIC_JMP, h_jmp},
    {ZYDIS_MNEMONIC_JO, h_jcc}, {ZYDIS_MNEMONIC_JNO, h_jcc}, {ZYDIS_MNEMONIC_JB, h_jcc},
    {ZYDIS_MNEMONIC_JNB, h_jcc}, {ZYDIS_MNEMONIC_JZ, h_jcc}, {ZYDIS_MNEMONIC_JNZ, h_jcc},
    {ZYDIS_MNEMONIC_JBE, h_jcc}, {ZYDIS_MNEMONIC_JNBE, h_jcc}, {ZYDIS_MNEMONIC_JS, h_jcc},
    {ZYDIS_MNEMONIC_JNS, h_jcc}, {ZYDIS_MNEMONIC_JP, h_jcc}, {ZYDIS_MNEMONIC_JNP, h_jcc},
    {ZYDIS_MNEMONIC_JL, h_jcc}, {ZYDIS_MNEMONIC_JNL, h_jcc}, {ZYDIS_MNEMONIC_JLE, h_jcc},
    {ZYDIS_MNEMONIC_JNLE, h_jcc},
    {ZYDIS_MNEMONIC_CALL, h_call}, {ZYDIS_MNEMONIC_RET, h_ret},
    {ZYDIS_MNEMONIC_LOOP, h_loop}, {ZYDIS_MNEMONIC_LOOPE, h_loop}, {ZYDIS_MNEMONIC_LOOPNE, h_loop},
    {ZYDIS_MNEMONIC_JCXZ, h_jcxz}, {ZYDIS_MNEMONIC_JECXZ, h_jcxz},
    {ZYDIS_MNEMONIC_INT, h_int}, {ZYDIS_MNEMONIC_INT1, h_int}, {ZYDIS_MNEMONIC_INT3, h_int},
    {ZYDIS_MNEMONIC_INTO, h_int},
    {ZYDIS_MNEMONIC_IRET, h_iret}, {ZYDIS_MNEMONIC_IRETD, h_iret},
    {ZYDIS_MNEMONIC_PUSH, h_push}, {ZYDIS_MNEMONIC_POP, h_pop},
    {ZYDIS_MNEMONIC_PUSHA, h_pusha}, {ZYDIS_MNEMONIC_PUSHAD, h_pusha},
    {ZYDIS_MNEMONIC_POPA, h_popa}, {ZYDIS_MNEMONIC_POPAD, h_popa},
    {ZYDIS_MNEMONIC_PUSHF, h_pushf}, {ZYDIS_MNEMONIC_PUSHFD, h_pushf},
    {ZYDIS_MNEMONIC_POPF, h_popf}, {ZYDIS_MNEMONIC_POPFD, h_popf},
    {ZYDIS_MNEMONIC_ENTER, h_enter}, {ZYDIS_MNEMONIC_LEAVE, h_leave},
    // Strings and port I/O.
    {ZYDIS_MNEMONIC_MOVSB, h_string}, {ZYDIS_MNEMONIC_MOVSW, h_string}, {ZYDIS_MNEMONIC_MOVSD, h_string},
    {ZYDIS_MNEMONIC_CMPSB, h_string}, {ZYDIS_MNEMONIC_CMPSW, h_string}, {ZYDIS_MNEMONIC_CMPSD, h_string},
    {ZYDIS_MNEMONIC_STOSB, h_string}, {ZYDIS_MNEMONIC_STOSW, h_string}, {ZYDIS_MNEMONIC_STOSD, h_string},
    {ZYDIS_MNEMONIC_LODSB, h_string}, {ZYDIS_MNEMONIC_LODSW, h_string}, {ZYDIS_MNEMONIC_LODSD, h_string},
    {ZYDIS_MNEMONIC_SCASB, h_string}, {ZYDIS_MNEMONIC_SCASW, h_string}, {ZYDIS_MNEMONIC_SCASD, h_string},
    {ZYDIS_MNEMONIC_INSB, h_string}, {ZYDIS_MNEMONIC_INSW, h_string}, {ZYDIS_MNEMONIC_INSD, h_string},
    {ZYDIS_MNEMONIC_OUTSB, h_string}, {ZYDIS_MNEMONIC_OUTSW, h_string}, {ZYDIS_MNEMONIC_OUTSD, h_string},
    {ZYDIS_MNEMONIC_IN, h_in}, {ZYDIS_MNEMONIC_OUT, h_out},
    // Segments and descriptors.
    {ZYDIS_MNEMONIC_LDS, h_load_far_pointer}, {ZYDIS_MNEMONIC_LES, h_load_far_pointer},
    {ZYDIS_MNEMONIC_LFS, h_load_far_pointer}, {ZYDIS_MNEMONIC_LGS, h_load_far_pointer},
    {ZYDIS_MNEMONIC_LSS, h_load_far_pointer},
    {ZYDIS_MNEMONIC_LAR, h_lar_lsl}, {ZYDIS_MNEMONIC_LSL, h_lar_lsl},
    {ZYDIS_MNEMONIC_VERR, h_verr_verw}, {ZYDIS_MNEMONIC_VERW, h_verr_verw}, {ZYDIS_MNEMONIC_ARPL, h_arpl},
    // System.
    {ZYDIS_MNEMONIC_CLI, h_cli}, {ZYDIS_MNEMONIC_STI, h_sti}, {ZYDIS_MNEMONIC_HLT, h_hlt},
    {ZYDIS_MNEMONIC_LGDT, h_load_dtr}, {ZYDIS_MNEMONIC_LIDT, h_load_dtr},
    {ZYDIS_MNEMONIC_SGDT, h_store_dtr}, {ZYDIS_MNEMONIC_SIDT, h_store_dtr},
    {ZYDIS_MNEMONIC_LLDT, h_lldt}, {ZYDIS_MNEMONIC_LTR, h_ltr},
    {ZYDIS_MNEMONIC_SLDT, h_sldt_str}, {ZYDIS_MNEMONIC_STR, h_sldt_str},
    {ZYDIS_MNEMONIC_SMSW, h_smsw}, {ZYDIS_MNEMONIC_LMSW, h_lmsw}, {ZYDIS_MNEMONIC_CLTS, h_clts},
    {ZYDIS_MNEMONIC_INVLPG, h_invlpg}, {ZYDIS_MNEMONIC_WBINVD, h_cache}, {ZYDIS_MNEMONIC_INVD, h_cache},
    {ZYDIS_MNEMONIC_CPUID, h_cpuid}, {ZYDIS_MNEMONIC_RDTSC, h_rdtsc}, {ZYDIS_MNEMONIC_RDMSR, h_rdmsr},
    {ZYDIS_MNEMONIC_WRMSR, h_wrmsr}, {ZYDIS_MNEMONIC_RDPMC, h_rdpmc},
    {ZYDIS_MNEMONIC_SYSENTER, h_sysenter}, {ZYDIS_MNEMONIC_SYSEXIT, h_sysexit},
};
// clang-format on

constexpr size_t kTableSize = static_cast<size_t>(ZYDIS_MNEMONIC_MAX_VALUE) + 1;

constexpr std::array<Handler, kTableSize> build_table() {
  std::array<Handler, kTableSize> t{};
  for (const Entry& e : kEntries) {
    // A duplicate is a compile error: throwing is not allowed in a constant expression.
    if (t[static_cast<size_t>(e.mnemonic)] != nullptr) throw "duplicate mnemonic in the interpreter table";
    t[static_cast<size_t>(e.mnemonic)] = e.handler;
  }
  return t;
}

constexpr std::array<Handler, kTableSize> kTable = build_table();

// Instruction sets of the modelled CPU (P6 with MMX, SSE, SSE2, FXSR, CMOV, SEP, CLFLUSH).
constexpr ZydisISASet kIntegerSets[] = {
    ZYDIS_ISA_SET_I86,        ZYDIS_ISA_SET_I186,         ZYDIS_ISA_SET_I286REAL, ZYDIS_ISA_SET_I286PROTECTED,
    ZYDIS_ISA_SET_I386,       ZYDIS_ISA_SET_I486,         ZYDIS_ISA_SET_I486REAL, ZYDIS_ISA_SET_PENTIUMREAL,
    ZYDIS_ISA_SET_PPRO,       ZYDIS_ISA_SET_CMOV,         ZYDIS_ISA_SET_FAT_NOP,  ZYDIS_ISA_SET_LAHF,
    ZYDIS_ISA_SET_RDPMC,      ZYDIS_ISA_SET_PAUSE,        ZYDIS_ISA_SET_CLFSH,    ZYDIS_ISA_SET_SSE_PREFETCH,
    ZYDIS_ISA_SET_PREFETCH_NOP,
};
constexpr ZydisISASet kFpuSets[] = {
    ZYDIS_ISA_SET_X87, ZYDIS_ISA_SET_FCMOV, ZYDIS_ISA_SET_FXSAVE,  ZYDIS_ISA_SET_PENTIUMMMX,
    ZYDIS_ISA_SET_SSE, ZYDIS_ISA_SET_SSE2,  ZYDIS_ISA_SET_SSE2MMX, ZYDIS_ISA_SET_SSEMXCSR,
};

template <size_t N>
bool contains(const ZydisISASet (&sets)[N], ZydisISASet s) {
  for (ZydisISASet x : sets) {
    if (x == s) return true;
  }
  return false;
}

/// Instructions of the FP extensions that touch no FP state: run as integer no-ops.
bool is_fp_extension_nop(const Instruction& insn) {
  const ZydisMnemonic m = insn.mnemonic();
  const ZydisISASet s = insn.raw.meta.isa_set;
  return m == ZYDIS_MNEMONIC_LFENCE || m == ZYDIS_MNEMONIC_MFENCE || m == ZYDIS_MNEMONIC_SFENCE ||
         s == ZYDIS_ISA_SET_SSE_PREFETCH || s == ZYDIS_ISA_SET_CLFSH;
}

}  // namespace

bool is_fpu_isa(const Instruction& insn) {
  const ZydisISAExt ext = insn.raw.meta.isa_ext;
  const bool fp = contains(kFpuSets, insn.raw.meta.isa_set) || ext == ZYDIS_ISA_EXT_X87 ||
                  ext == ZYDIS_ISA_EXT_MMX || ext == ZYDIS_ISA_EXT_SSE || ext == ZYDIS_ISA_EXT_SSE2;
  return fp && !is_fp_extension_nop(insn);
}

bool is_supported_isa(const Instruction& insn) {
  if (insn.raw.attributes & (ZYDIS_ATTRIB_HAS_VEX | ZYDIS_ATTRIB_HAS_EVEX | ZYDIS_ATTRIB_HAS_XOP)) return false;
  return contains(kIntegerSets, insn.raw.meta.isa_set) || contains(kFpuSets, insn.raw.meta.isa_set);
}

Handler handler_for(const Instruction& insn) {
  // FP first: SSE2 reuses string mnemonics (movsd, cmpsd).
  if (is_fpu_isa(insn)) return h_fpu;
  return kTable[static_cast<size_t>(insn.mnemonic())];
}

size_t handled_mnemonic_count() { return std::size(kEntries); }

}  // namespace vmm86::interp
