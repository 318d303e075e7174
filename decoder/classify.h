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
#include <span>
#include <string_view>

namespace vmm86 {

/// Classes an instruction can belong to (several at once: `int` is control flow and
/// sensitive; `ins` is I/O and a string operation).
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
  constexpr InsnClassSet& add(InsnClass c) { bits = static_cast<uint16_t>(bits | bit(c)); return *this; }
  constexpr InsnClassSet& remove(InsnClass c) { bits = static_cast<uint16_t>(bits & ~bit(c)); return *this; }
  constexpr bool operator==(const InsnClassSet&) const = default;

 private:
  static constexpr uint16_t bit(InsnClass c) { return static_cast<uint16_t>(1u << static_cast<unsigned>(c)); }
};
static_assert(static_cast<unsigned>(InsnClass::Count) <= 16, "InsnClassSet holds 16 bits");

constexpr InsnClassSet operator|(InsnClassSet a, InsnClassSet b) { return InsnClassSet{static_cast<uint16_t>(a.bits | b.bits)}; }
constexpr InsnClassSet operator|(InsnClass a, InsnClass b) { return InsnClassSet{a} | InsnClassSet{b}; }

/// Encoding rule that refines the classes of a row (the mnemonic alone is not enough).
enum class Refine : uint8_t {
  None,
  ShortIncDec,  ///< inc/dec 40-4F: + Invalid64 (REX prefixes in 64-bit mode); FE/FF forms are not
  Group82,      ///< 82 /r (an alias of 80 /r): + Invalid64
  MovSpecial,   ///< mov Sreg,x: SegmentLoad+Callout; mov x,Sreg: Sensitive; mov CRn/DRn: Privileged (+Callout on writes)
  PushSreg,     ///< push Sreg: + Sensitive (the selector is virtual); 06/0E/16/1E also Invalid64
  PopSreg,      ///< pop Sreg: + SegmentLoad + Callout; 07/17/1F also Invalid64
  FarBranch,    ///< far jmp/call/ret: + SegmentLoad + Callout; the ptr16:32 forms (EA/9A) also Invalid64
  StringForm,   ///< movsd/cmpsd share a mnemonic with SSE2: the one-byte opcodes (A5/A7) are StringOp only
};

/// One row of the classification table.
struct ClassEntry {
  ZydisMnemonic mnemonic;
  InsnClassSet classes;
  Refine refine = Refine::None;
};

/// The table itself (for tests and tools); rows are unique by mnemonic.
[[nodiscard]] std::span<const ClassEntry> classification_table();

/// True when the encoding belongs to the virtual CPU's ISA (P6 + x87/MMX/SSE/SSE2). Zydis
/// decodes much more (SSE3+, AVX, VMX, ...); a real P6 raises #UD for all of it.
[[nodiscard]] bool in_guest_isa(const ZydisDecodedInstruction& insn);

/// Classifies a decoded instruction: its table row, refined by encoding. Returns exactly
/// {Unclassified} for a mnemonic without a row or an encoding outside the guest ISA.
[[nodiscard]] InsnClassSet classify(const ZydisDecodedInstruction& insn);

/// Name of a class, for messages and statistics ("ControlFlow", ...).
[[nodiscard]] std::string_view insn_class_name(InsnClass c);

}  // namespace vmm86
