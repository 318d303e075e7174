// THE classification of IA-32 instructions: one constexpr table keyed by ZydisMnemonic
// that the translator and the interpreter both read (DESIGN.md §3, STYLE.md #2).
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>

namespace vmm86 {

/// Classes an instruction can belong to (several at once: `int` is control flow and
/// sensitive; `in` is I/O and may be privileged by IOPL).
enum class InsnClass : uint8_t {
  Plain,             ///< ordinary integer instruction, copied unchanged by the translator
  ControlFlow,       ///< ends a translated block (jmp/jcc/call/ret/loop/int/iret/...)
  Privileged,        ///< #GP(0) unless CPL 0 (hlt, lgdt, mov crN, wrmsr, ...)
  Sensitive,         ///< unprivileged but reveals or changes virtualized state (pushf, sgdt, smsw, lar, mov from Sreg, ...)
  Io,                ///< in/out/ins/outs (IOPL/TSS-bitmap checked)
  Invalid64,         ///< has no encoding in 64-bit mode (BCD, pusha, lds, bound, arpl, inc/dec 40-4F, ...)
  StackOp,           ///< uses the stack implicitly (push/pop/call/ret/enter/leave/pusha...)
  StringOp,          ///< movs/stos/lods/cmps/scas/ins/outs
  SegmentLoad,       ///< writes a segment register (mov Sreg, pop Sreg, lds, far jmp/call/ret)
  FloatingPoint,     ///< x87, MMX, SSE, SSE2: runs natively on the guest's FPU state
  Count,
};

/// A small bit set of InsnClass.
struct InsnClassSet {
  uint16_t bits = 0;
  constexpr InsnClassSet() = default;
  constexpr explicit InsnClassSet(uint16_t b) : bits(b) {}
  [[nodiscard]] constexpr bool has(InsnClass c) const { return (bits >> static_cast<unsigned>(c)) & 1u; }
  constexpr InsnClassSet& add(InsnClass c) { bits = static_cast<uint16_t>(bits | (1u << static_cast<unsigned>(c))); return *this; }
  constexpr bool operator==(const InsnClassSet&) const = default;
};

/// Classifies a decoded instruction (mnemonic first, refined by encoding where the
/// mnemonic alone is not enough, e.g. inc/dec short forms or mov to/from Sreg).
[[nodiscard]] InsnClassSet classify(const ZydisDecodedInstruction& insn);

}  // namespace vmm86
