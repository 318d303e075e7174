// IA-32 decoding on top of Zydis. Every engine (interpreter, translator, MMIO emulation)
// decodes through here and classifies through the one table in classify.h.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <span>

#include "decoder/classify.h"

namespace vmm86 {

/// Default operand/address size of the code being decoded (CS.D, or real mode).
enum class CodeSize : uint8_t { Bits16, Bits32 };

/// One decoded guest instruction.
struct Instruction {
  ZydisDecodedInstruction raw{};
  ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT]{};
  InsnClassSet classes{};  ///< from the classification table (classify.h)

  [[nodiscard]] uint8_t length() const { return raw.length; }
  [[nodiscard]] ZydisMnemonic mnemonic() const { return raw.mnemonic; }
  /// Effective operand size in bits (16 or 32 for most instructions).
  [[nodiscard]] uint8_t operand_size() const { return raw.operand_width; }
  /// Effective address size in bits (16 or 32).
  [[nodiscard]] uint8_t address_size() const { return raw.address_width; }
  [[nodiscard]] uint8_t visible_operand_count() const { return raw.operand_count_visible; }
  [[nodiscard]] bool has(InsnClass c) const { return classes.has(c); }
};

/// Why decoding failed.
enum class DecodeStatus : uint8_t {
  Ok,
  NeedMoreBytes,  ///< the buffer ended inside the instruction (e.g. at a page end)
  Invalid,        ///< not a valid IA-32 instruction: the guest gets #UD
  TooLong,        ///< more than 15 bytes: the guest gets #GP(0)
};

/// A reusable decoder for one code size. Cheap to construct; not thread-safe to share.
class Decoder {
 public:
  explicit Decoder(CodeSize size);
  /// Decodes the instruction at the start of `bytes` (at most 15 are looked at).
  [[nodiscard]] DecodeStatus decode(std::span<const uint8_t> bytes, Instruction* out) const;

 private:
  ZydisDecoder zydis_{};
};

}  // namespace vmm86
