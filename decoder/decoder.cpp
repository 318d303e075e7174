#include "decoder/decoder.h"

namespace vmm86 {

Decoder::Decoder(CodeSize size) {
  if (size == CodeSize::Bits32) {
    ZydisDecoderInit(&zydis_, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  } else {
    ZydisDecoderInit(&zydis_, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
  }
  use_p6_meanings(&zydis_);
}

void use_p6_meanings(ZydisDecoder* decoder) {
  // Zydis decodes for a modern CPU by default. On a P6 these encodings mean something
  // else: rep bsf/bsr (Linux emits `rep; bsf` for tzcnt), hint nops, and plain prefixes.
  for (ZydisDecoderMode mode : {ZYDIS_DECODER_MODE_MPX, ZYDIS_DECODER_MODE_CET, ZYDIS_DECODER_MODE_LZCNT,
                                ZYDIS_DECODER_MODE_TZCNT, ZYDIS_DECODER_MODE_CLDEMOTE, ZYDIS_DECODER_MODE_WBNOINVD}) {
    ZydisDecoderEnableMode(decoder, mode, ZYAN_FALSE);
  }
}

DecodeStatus Decoder::decode(std::span<const uint8_t> bytes, Instruction* out) const {
  const size_t len = bytes.size() < ZYDIS_MAX_INSTRUCTION_LENGTH ? bytes.size() : ZYDIS_MAX_INSTRUCTION_LENGTH;
  ZydisDecoderContext context;
  ZyanStatus status = ZydisDecoderDecodeInstruction(&zydis_, &context, bytes.data(), len, &out->raw);
  if (ZYAN_SUCCESS(status)) {
    // Reject what the P6 lacks before paying for the operands.
    if (!in_guest_isa(out->raw)) return DecodeStatus::Invalid;
    status = ZydisDecoderDecodeOperands(&zydis_, &context, &out->raw, out->operands, ZYDIS_MAX_OPERAND_COUNT);
    if (!ZYAN_SUCCESS(status)) return DecodeStatus::Invalid;
    const Classification c = classify_and_route(out->raw);
    out->classes = c.classes;
    out->route = c.route;
    out->interp = c.interp;
    return DecodeStatus::Ok;
  }
  if (status == ZYDIS_STATUS_NO_MORE_DATA) {
    return len < ZYDIS_MAX_INSTRUCTION_LENGTH ? DecodeStatus::NeedMoreBytes : DecodeStatus::TooLong;
  }
  if (status == ZYDIS_STATUS_INSTRUCTION_TOO_LONG) return DecodeStatus::TooLong;
  return DecodeStatus::Invalid;
}

const ZydisDecodedOperand* Instruction::memory_operand() const {
  for (uint8_t i = 0; i < raw.operand_count_visible; ++i) {
    const ZydisDecodedOperand& op = operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_MEM) return &op;
  }
  return nullptr;
}

RepPrefix Instruction::rep_prefix() const {
  if (!has(InsnClass::StringOp)) return RepPrefix::None;
  const bool f3 = (raw.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE)) != 0;
  const bool f2 = (raw.attributes & ZYDIS_ATTRIB_HAS_REPNE) != 0;
  if (!f3 && !f2) return RepPrefix::None;
  switch (raw.mnemonic) {
    case ZYDIS_MNEMONIC_CMPSB:
    case ZYDIS_MNEMONIC_CMPSW:
    case ZYDIS_MNEMONIC_CMPSD:
    case ZYDIS_MNEMONIC_SCASB:
    case ZYDIS_MNEMONIC_SCASW:
    case ZYDIS_MNEMONIC_SCASD: return f2 ? RepPrefix::RepNE : RepPrefix::RepE;
    default: return RepPrefix::Rep;  // F2 repeats these too: the CPU ignores the condition
  }
}

std::optional<uint8_t> Instruction::segment_override() const {
  // Zydis records only the prefix that takes effect.
  static constexpr struct {
    ZydisInstructionAttributes attr;
    ZydisRegister reg;
  } kPrefixes[] = {
      {ZYDIS_ATTRIB_HAS_SEGMENT_ES, ZYDIS_REGISTER_ES}, {ZYDIS_ATTRIB_HAS_SEGMENT_CS, ZYDIS_REGISTER_CS},
      {ZYDIS_ATTRIB_HAS_SEGMENT_SS, ZYDIS_REGISTER_SS}, {ZYDIS_ATTRIB_HAS_SEGMENT_DS, ZYDIS_REGISTER_DS},
      {ZYDIS_ATTRIB_HAS_SEGMENT_FS, ZYDIS_REGISTER_FS}, {ZYDIS_ATTRIB_HAS_SEGMENT_GS, ZYDIS_REGISTER_GS},
  };
  for (const auto& p : kPrefixes) {
    if ((raw.attributes & p.attr) != 0) return segment_number(p.reg);
  }
  return std::nullopt;
}

std::optional<uint8_t> segment_number(ZydisRegister reg) {
  switch (reg) {
    case ZYDIS_REGISTER_ES: return 0;
    case ZYDIS_REGISTER_CS: return 1;
    case ZYDIS_REGISTER_SS: return 2;
    case ZYDIS_REGISTER_DS: return 3;
    case ZYDIS_REGISTER_FS: return 4;
    case ZYDIS_REGISTER_GS: return 5;
    default: return std::nullopt;
  }
}

uint8_t effective_segment(const ZydisDecodedOperand& mem) {
  // Zydis fills mem.segment for every memory operand, defaults included.
  return segment_number(mem.mem.segment).value_or(3);
}

std::optional<GprRef> gpr_ref(ZydisRegister reg) {
  // Zydis numbers each register class in encoding order, so the id is the ModRM number;
  // for 8-bit registers ids 4..7 are AH..BH (SPL..DIL need REX, which IA-32 has not).
  const ZyanI8 id = ZydisRegisterGetId(reg);
  if (id < 0 || id > 7) return std::nullopt;
  const auto n = static_cast<uint8_t>(id);
  switch (ZydisRegisterGetClass(reg)) {
    case ZYDIS_REGCLASS_GPR8: return n < 4 ? GprRef{n, 8, false} : GprRef{static_cast<uint8_t>(n - 4), 8, true};
    case ZYDIS_REGCLASS_GPR16: return GprRef{n, 16, false};
    case ZYDIS_REGCLASS_GPR32: return GprRef{n, 32, false};
    default: return std::nullopt;
  }
}

}  // namespace vmm86
