// THE classification of IA-32 instructions: one constexpr table keyed by ZydisMnemonic
// that the translator and the interpreter both read (DESIGN.md §3, STYLE.md #2).
//
// The table describes the virtual CPU's instruction set: IA-32 up to the P6 (Pentium Pro /
// II / III) with x87, MMX, SSE and SSE2 (DESIGN.md §2). Each mnemonic has a set of classes;
// where the mnemonic alone does not say enough (inc/dec short forms, mov Sreg/CRn/DRn, far
// branches, ...) an encoding rule (Refine) in the same row refines it.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace vmm86 {

/// Classes an instruction can belong to (several at once: `int` is control flow and
/// sensitive; `ins` is I/O and a string operation).
// clang-format off
enum class InsnClass : uint8_t {
  Plain,          ///< ordinary instruction copied unchanged (memory operands aside); never combined with another class
  ControlFlow,    ///< ends a translated block (jmp/jcc/call/ret/loop/int/iret/hlt/ud2/...)
  Privileged,     ///< #GP(0) unless CPL 0 (hlt, lgdt, mov crN, wrmsr, ...); cli/sti too (IOPL-dependent, see classify.cpp)
  Sensitive,      ///< unprivileged but reveals or changes virtualized state (pushf, sgdt, smsw, lar, mov from Sreg, cpuid, ...)
  Io,             ///< in/out/ins/outs (IOPL/TSS-bitmap checked)
  Invalid64,      ///< has no encoding in 64-bit mode (BCD, pusha, lds, bound, arpl, inc/dec 40-4F, ...)
  StackOp,        ///< uses the stack implicitly (push/pop/call/ret/enter/leave/pusha...)
  StringOp,       ///< movs/stos/lods/cmps/scas/ins/outs
  SegmentLoad,    ///< writes a segment register (mov Sreg, pop Sreg, lds, far jmp/call/ret, iret, sysenter)
  FloatingPoint,  ///< x87, MMX, SSE, SSE2: runs natively on the guest's FPU state
  /// Always needs the monitor at run time: no inline rewrite can produce the effect (a
  /// descriptor-table walk, an MMU/TLB or device action, exception delivery, a virtual
  /// clock / CPUID / MSR value). The translator emits a callout for these.
  Callout,
  /// Not covered by the table: a mnemonic without a row, or an encoding from an ISA
  /// extension the virtual CPU lacks. Engines send it to the slow path. Never combined.
  Unclassified,
  Count,
};
// clang-format on

/// A small bit set of InsnClass.
struct InsnClassSet {
  uint16_t bits = 0;
  constexpr InsnClassSet() = default;
  constexpr explicit InsnClassSet(uint16_t b) : bits(b) {}
  /// Implicit on purpose: one class is a set, so rows read `ControlFlow | StackOp` and
  /// `classify(i) == InsnClass::Unclassified` means exactly {Unclassified}.
  constexpr InsnClassSet(InsnClass c) : bits(bit(c)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] constexpr bool has(InsnClass c) const { return (bits & bit(c)) != 0; }
  [[nodiscard]] constexpr bool empty() const { return bits == 0; }
  constexpr InsnClassSet& add(InsnClass c) {
    bits = static_cast<uint16_t>(bits | bit(c));
    return *this;
  }
  constexpr InsnClassSet& remove(InsnClass c) {
    bits = static_cast<uint16_t>(bits & ~bit(c));
    return *this;
  }
  constexpr bool operator==(const InsnClassSet&) const = default;

 private:
  static constexpr uint16_t bit(InsnClass c) { return static_cast<uint16_t>(1u << static_cast<unsigned>(c)); }
};
static_assert(static_cast<unsigned>(InsnClass::Count) <= 16, "InsnClassSet holds 16 bits");

constexpr InsnClassSet operator|(InsnClassSet a, InsnClassSet b) {
  return InsnClassSet{static_cast<uint16_t>(a.bits | b.bits)};
}
constexpr InsnClassSet operator|(InsnClass a, InsnClass b) { return InsnClassSet{a} | InsnClassSet{b}; }

/// Encoding rule that refines the classes of a row (the mnemonic alone is not enough).
enum class Refine : uint8_t {
  None,
  ShortIncDec,  ///< inc/dec 40-4F: + Invalid64 (REX prefixes in 64-bit mode); FE/FF forms are not
  Group82,      ///< 82 /r (an alias of 80 /r): + Invalid64, route Callout
  /// mov Sreg,x: SegmentLoad+Callout, h_mov_sreg; mov x,Sreg: Sensitive; mov CRn/DRn:
  /// Privileged (+Callout on writes), h_mov_cr/h_mov_dr; all of them route Callout
  MovSpecial,
  PushSreg,   ///< push Sreg: + Sensitive (the selector is virtual; rewrite_stack reads it); 06/0E/16/1E also Invalid64
  PopSreg,    ///< pop Sreg: + SegmentLoad + Callout, route Callout; 07/17/1F also Invalid64
  FarBranch,  ///< far jmp/call/ret: + SegmentLoad + Callout, route EndBlock; ptr16:32 forms (EA/9A) also Invalid64
  /// movsd/cmpsd share a mnemonic with SSE2: the one-byte opcodes (A5/A7) are StringOp
  /// only, route String, h_string
  StringForm,
};

/// How the translator handles an instruction: the rewrite class `rewrite_by_route`
/// (translator/block_scanner.cpp) dispatches it to, one file per class.
enum class Route : uint8_t {
  Copy,    ///< re-emitted as itself, memory operands windowed; x87/MMX/SSE run natively (rewrite_ident.cpp)
  Stack,   ///< push/pop/leave as 32-bit accesses at gs:[r12d] (rewrite_stack.cpp)
  Flags,   ///< cli/sti/pushfd/popfd on the virtual IF (rewrite_flags.cpp)
  String,  ///< the host's own string instruction on host pointers (rewrite_string.cpp)
  Branch,  ///< near jmp/jcc/ret/loop/jecxz: exit stubs, chaining, the inline table (rewrite_branch.cpp)
  Call,    ///< near call: a PC thunk is inlined (rewrite_pc_thunk.cpp), else as Branch
  Time,    ///< rdtsc as the host's own (rewrite_time.cpp)
  /// No inline form: the interpreter runs it in place from the block (rewrite_callout.cpp):
  /// segment loads, port I/O, CR/DR/MSR and descriptor tables, cpuid, 32-bit-only forms.
  Callout,
  /// No inline form, and it cannot run in place: the block ends before it and the
  /// interpreter runs it (int/iret/sysenter, far transfers, hlt, ins/outs, FPU-state stores).
  EndBlock,
};

/// Where a rewrite that declines an instruction (a form or mode its rule does not cover:
/// 16-bit operands, a non-flat segment, CPL 3) sends it. In place through a callout unless
/// it transfers control (its successor is not the next instruction), uses the FPU (the
/// guest's FPU state is live in the host FPU; the interpreter keeps it in CpuState) or is
/// a string operation (rep may run long): those end the block.
[[nodiscard]] constexpr Route fallback_route(InsnClassSet c) {
  return c.has(InsnClass::ControlFlow) || c.has(InsnClass::FloatingPoint) || c.has(InsnClass::StringOp) ||
                 c.has(InsnClass::Unclassified)
             ? Route::EndBlock
             : Route::Callout;
}

/// Which interpreter handler runs an instruction: Interp::FooBar is h_foo_bar
/// (vmm/interp/core.h; vmm/interp/handler_table.cpp maps one to the other).
enum class Interp : uint8_t {
  // interp_alu_ops.cpp
  Binop,
  Incdec,
  Neg,
  Not,
  Shift,
  Shxd,
  Mul,
  Imul,
  Div,
  Bit,
  Bitscan,
  Bcd,
  Aam,
  Aad,
  Setcc,
  Cmovcc,
  Cmpxchg,
  Cmpxchg8b,
  Xadd,
  Bswap,
  // interp_data.cpp
  Mov,
  Movx,
  Lea,
  Xchg,
  Convert,
  Flagop,
  Lahf,
  Sahf,
  Salc,
  Nop,
  Clflush,
  Xlat,
  Bound,
  Ud,
  // interp_control.cpp
  Jmp,
  Jcc,
  Call,
  Ret,
  Loop,
  Jcxz,
  Int,
  Iret,
  Push,
  Pop,
  Pusha,
  Popa,
  Pushf,
  Popf,
  Enter,
  Leave,
  // interp_string.cpp
  String,
  In,
  Out,
  // segments.cpp
  MovSreg,
  LoadFarPointer,
  LarLsl,
  VerrVerw,
  Arpl,
  // interp_system.cpp
  Cli,
  Sti,
  Hlt,
  LoadDtr,
  StoreDtr,
  Lldt,
  Ltr,
  SldtStr,
  Smsw,
  Lmsw,
  Clts,
  MovCr,
  MovDr,
  Invlpg,
  Cache,
  Cpuid,
  Rdtsc,
  Rdmsr,
  Wrmsr,
  Rdpmc,
  Sysenter,
  Sysexit,
  // interp_fpu.cpp
  Fpu,
  Count,
};

/// One row of the table: what the instruction is, and where each engine handles it.
struct ClassEntry {
  ZydisMnemonic mnemonic;
  InsnClassSet classes;
  Route route;
  Interp interp;
  Refine refine = Refine::None;
};

/// A decoded instruction's row, refined by its encoding.
struct Classification {
  InsnClassSet classes;
  Route route;
  Interp interp;
};

/// The table itself (for tests and tools); rows are unique by mnemonic.
[[nodiscard]] std::span<const ClassEntry> classification_table();

/// True when the encoding belongs to the virtual CPU's ISA (P6 + x87/MMX/SSE/SSE2). Zydis
/// decodes much more (SSE3+, AVX, VMX, ...); a real P6 raises #UD for all of it.
[[nodiscard]] bool in_guest_isa(const ZydisDecodedInstruction& insn);

/// Classifies a decoded instruction: its table row, refined by encoding. Classes are
/// exactly {Unclassified} (route EndBlock, Interp::Ud) for a mnemonic without a row or an
/// encoding outside the guest ISA.
[[nodiscard]] Classification classify_and_route(const ZydisDecodedInstruction& insn);
/// The classes alone.
[[nodiscard]] inline InsnClassSet classify(const ZydisDecodedInstruction& insn) {
  return classify_and_route(insn).classes;
}

/// The kind of a string instruction (StringOp).
enum class StringKind : uint8_t { Movs, Cmps, Stos, Lods, Scas, Ins, Outs };
/// What both engines need to know about a string instruction beyond its operand size.
struct StringForm {
  StringKind kind;
  uint8_t opcode;  ///< its byte-sized one-byte opcode; +1 is the word/dword form
  bool reads_esi;  ///< goes through DS:ESI (overridable)
  bool uses_edi;   ///< goes through ES:EDI
};
/// The form of a string instruction; nullopt for anything else (the SSE2 movsd/cmpsd too).
[[nodiscard]] std::optional<StringForm> string_form(ZydisMnemonic m, InsnClassSet classes);

/// Name of a route, for messages and tests ("Copy", ...).
[[nodiscard]] std::string_view route_name(Route r);

/// Name of a class, for messages and statistics ("ControlFlow", ...).
[[nodiscard]] std::string_view insn_class_name(InsnClass c);

}  // namespace vmm86
