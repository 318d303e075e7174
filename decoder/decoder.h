// IA-32 decoding on top of Zydis. Every engine (interpreter, translator, MMIO emulation)
// decodes through here and classifies through the one table in classify.h.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <optional>
#include <span>

#include "decoder/classify.h"

namespace vmm86 {

/// Default operand/address size of the code being decoded (CS.D, or real mode).
enum class CodeSize : uint8_t { Bits16, Bits32 };

/// The repeat prefix of a string instruction, as the CPU interprets it.
enum class RepPrefix : uint8_t {
  None,
  Rep,    ///< F3 (or F2) on movs/stos/lods/ins/outs: repeat ECX times
  RepE,   ///< F3 on cmps/scas: repeat while equal
  RepNE,  ///< F2 on cmps/scas: repeat while not equal
};

/// One decoded guest instruction.
struct Instruction {
  ZydisDecodedInstruction raw{};
  ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT]{};
  InsnClassSet classes{};         ///< from the classification table (classify.h)
  Route route = Route::EndBlock;  ///< the translator's rewrite class (the row's, refined)
  Interp interp = Interp::Ud;     ///< the interpreter's handler (the row's, refined)

  [[nodiscard]] uint8_t length() const { return raw.length; }
  [[nodiscard]] ZydisMnemonic mnemonic() const { return raw.mnemonic; }
  /// Effective operand size in bits (16 or 32 for most instructions).
  [[nodiscard]] uint8_t operand_size() const { return raw.operand_width; }
  /// Effective address size in bits (16 or 32).
  [[nodiscard]] uint8_t address_size() const { return raw.address_width; }
  [[nodiscard]] uint8_t visible_operand_count() const { return raw.operand_count_visible; }
  [[nodiscard]] bool has(InsnClass c) const { return classes.has(c); }

  /// The visible memory operand that the instruction reads or writes (a ModRM or moffs
  /// reference), or nullptr. Not lea's address computation. Implicit accesses (stack,
  /// string operands, xlat's [EBX+AL], maskmovq's [EDI]) are hidden operands: look at
  /// operands[0..raw.operand_count) for those.
  [[nodiscard]] const ZydisDecodedOperand* memory_operand() const;
  /// A LOCK prefix (the decoder has already rejected it where the CPU raises #UD).
  [[nodiscard]] bool has_lock() const { return (raw.attributes & ZYDIS_ATTRIB_HAS_LOCK) != 0; }
  /// The repeat prefix; None for instructions where F2/F3 is mandatory or ignored.
  [[nodiscard]] RepPrefix rep_prefix() const;
  /// The segment-override prefix in effect (the last one wins), as a segment number (see
  /// segment_number), or nullopt.
  [[nodiscard]] std::optional<uint8_t> segment_override() const;
};

/// Segment register number in mov-Sreg encoding order: ES=0 CS=1 SS=2 DS=3 FS=4 GS=5 (the
/// order of vmm86::SegReg in vmm/arch), or nullopt for a register that is not one.
[[nodiscard]] std::optional<uint8_t> segment_number(ZydisRegister reg);

/// The segment a memory operand goes through, as a segment number. Zydis resolves it in
/// the CPU's order: an override prefix if the operand accepts one (never the ES:EDI
/// string destination), otherwise SS for a (E)BP/(E)SP base and DS for everything else.
/// Precondition: `mem.type == ZYDIS_OPERAND_TYPE_MEMORY`.
[[nodiscard]] uint8_t effective_segment(const ZydisDecodedOperand& mem);

/// A general-purpose register operand resolved to the register file.
struct GprRef {
  uint8_t index = 0;       ///< 0..7 in ModRM order (EAX ECX EDX EBX ESP EBP ESI EDI)
  uint8_t width = 32;      ///< 8, 16 or 32 bits
  bool high_byte = false;  ///< AH/CH/DH/BH: bits 8..15 of register `index`
};
/// Resolves AL..BH, AX..DI and EAX..EDI; nullopt for any other register.
[[nodiscard]] std::optional<GprRef> gpr_ref(ZydisRegister reg);

/// Why decoding failed.
enum class DecodeStatus : uint8_t {
  Ok,
  NeedMoreBytes,  ///< the buffer ended inside the instruction (e.g. at a page end)
  Invalid,        ///< not a valid instruction for the virtual P6 CPU: the guest gets #UD
  TooLong,        ///< more than 15 bytes: the guest gets #GP(0)
};

/// Makes a Zydis decoder read encodings as the virtual P6 does (see Decoder): rep bsf/bsr,
/// hint nops (not MPX/CET), plain prefixes. For decoders of other modes too (the
/// translator decodes its 64-bit host code with the same meanings).
void use_p6_meanings(ZydisDecoder* decoder);

/// A reusable decoder for one code size. Cheap to construct; not thread-safe to share.
///
/// It decodes as the virtual P6 does, not as a modern CPU: F3 0F BC/BD are bsf/bsr (not
/// tzcnt/lzcnt), 0F 1A/1B and F3 0F 1E FB are hint nops (not MPX/CET), and encodings from
/// ISA extensions the P6 lacks (SSE3+, AVX, VMX, 3DNow!, syscall, ...) are Invalid.
class Decoder {
 public:
  explicit Decoder(CodeSize size);
  /// Decodes the instruction at the start of `bytes` (at most 15 are looked at).
  [[nodiscard]] DecodeStatus decode(std::span<const uint8_t> bytes, Instruction* out) const;

 private:
  ZydisDecoder zydis_{};
};

}  // namespace vmm86
