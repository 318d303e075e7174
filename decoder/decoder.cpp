#include "decoder/decoder.h"

namespace vmm86 {

Decoder::Decoder(CodeSize size) {
  if (size == CodeSize::Bits32) {
    ZydisDecoderInit(&zydis_, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  } else {
    ZydisDecoderInit(&zydis_, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
  }
}

DecodeStatus Decoder::decode(std::span<const uint8_t> bytes, Instruction* out) const {
  const size_t len = bytes.size() < ZYDIS_MAX_INSTRUCTION_LENGTH ? bytes.size() : ZYDIS_MAX_INSTRUCTION_LENGTH;
  ZyanStatus status = ZydisDecoderDecodeFull(&zydis_, bytes.data(), len, &out->raw, out->operands);
  if (ZYAN_SUCCESS(status)) {
    out->classes = classify(out->raw);
    return DecodeStatus::Ok;
  }
  if (status == ZYDIS_STATUS_NO_MORE_DATA) {
    return len < ZYDIS_MAX_INSTRUCTION_LENGTH ? DecodeStatus::NeedMoreBytes : DecodeStatus::TooLong;
  }
  if (status == ZYDIS_STATUS_INSTRUCTION_TOO_LONG) return DecodeStatus::TooLong;
  return DecodeStatus::Invalid;
}

}  // namespace vmm86
