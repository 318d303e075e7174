// IDENT: an ordinary instruction is re-encoded for 64-bit mode with the same mnemonic and
// operands — guest ESP becomes R12, memory operands become gs:[addr32 ...] — which is
// close to a byte copy and keeps guest flags in host RFLAGS untouched (DESIGN.md §4).
#include <cstring>

#include "translator/block_builder.h"

namespace vmm86 {

namespace {

constexpr ZyanU64 kSegmentPrefixes = ZYDIS_ATTRIB_HAS_SEGMENT_CS | ZYDIS_ATTRIB_HAS_SEGMENT_SS |
                                     ZYDIS_ATTRIB_HAS_SEGMENT_DS | ZYDIS_ATTRIB_HAS_SEGMENT_ES |
                                     ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS;

/// Guest register -> host register for an ident operand; NONE when it has no mapping.
ZydisRegister map_register(ZydisRegister r) {
  switch (r) {
    case ZYDIS_REGISTER_ESP: return ZYDIS_REGISTER_R12D;
    case ZYDIS_REGISTER_SP: return ZYDIS_REGISTER_R12W;
    default: break;
  }
  const ZydisRegisterClass cls = ZydisRegisterGetClass(r);
  switch (cls) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_X87:
    case ZYDIS_REGCLASS_MMX:
    case ZYDIS_REGCLASS_XMM:
      return r;
    default:
      return ZYDIS_REGISTER_NONE;  // segment, control, debug registers: not ident
  }
}

bool is_ident_candidate(const Instruction& insn) {
  // inc/dec 40-4F are REX prefixes in 64-bit mode; re-encoding picks the FF /0 /1 forms.
  if (insn.mnemonic() == ZYDIS_MNEMONIC_INC || insn.mnemonic() == ZYDIS_MNEMONIC_DEC) {
    return insn.address_size() == 32;
  }
  const InsnClassSet c = insn.classes;
  if (!(c.has(InsnClass::Plain) || c.has(InsnClass::FloatingPoint))) return false;
  for (InsnClass bad : {InsnClass::ControlFlow, InsnClass::Privileged, InsnClass::Sensitive, InsnClass::Io,
                        InsnClass::Invalid64, InsnClass::StackOp, InsnClass::StringOp, InsnClass::SegmentLoad}) {
    if (c.has(bad)) return false;
  }
  return insn.address_size() == 32;
}

}  // namespace

RewriteStatus rewrite_ident(BlockBuilder& b, const Instruction& insn) {
  if (!is_ident_candidate(insn)) return RewriteStatus::NotHandled;

  ZydisEncoderRequest req;
  if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(&insn.raw, insn.operands,
                                                                   insn.raw.operand_count_visible, &req))) {
    return RewriteStatus::NotHandled;
  }
  req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
  req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_32;
  req.prefixes &= ~kSegmentPrefixes;

  for (ZyanU8 i = 0; i < req.operand_count; ++i) {
    ZydisEncoderOperand& op = req.operands[i];
    const ZydisDecodedOperand& guest = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
      const ZydisRegister host = map_register(op.reg.value);
      if (host == ZYDIS_REGISTER_NONE) return RewriteStatus::NotHandled;
      op.reg.value = host;
    } else if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
      if (guest.mem.type == ZYDIS_MEMOP_TYPE_AGEN) {  // lea: address only, no segment
        if (op.mem.base == ZYDIS_REGISTER_ESP) op.mem.base = ZYDIS_REGISTER_R12D;
        if (op.mem.base == ZYDIS_REGISTER_NONE && op.mem.index == ZYDIS_REGISTER_NONE) {
          // lea r, [disp32]: the same as mov r, imm32 (which also leaves flags alone).
          if (insn.operand_size() != 32) return RewriteStatus::NotHandled;
          const ZydisRegister dst = req.operands[0].reg.value;
          std::memset(&req, 0, sizeof(req));
          req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
          req.mnemonic = ZYDIS_MNEMONIC_MOV;
          req.operand_count = 2;
          req.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
          req.operands[0].reg.value = dst;
          req.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
          // Signed: the encoder takes 0xFFFFxxxx given unsigned for a 64-bit immediate and
          // refuses it for a 32-bit register.
          req.operands[1].imm.s = static_cast<int32_t>(guest.mem.disp.value);
          break;
        }
        continue;
      }
      asmjit::x86::Mem host;
      if (!guest_mem_operand(b, insn, guest, &host)) return RewriteStatus::NotHandled;
      // guest_mem_operand may have materialized the address in r11 (absolute or index-only).
      if (host.baseId() == asmjit::x86::Gp::kIdR11 && !host.hasIndex()) {
        op.mem.base = ZYDIS_REGISTER_R11D;
        op.mem.index = ZYDIS_REGISTER_NONE;
        op.mem.scale = 0;
        op.mem.displacement = 0;
      } else {
        if (op.mem.base == ZYDIS_REGISTER_ESP) op.mem.base = ZYDIS_REGISTER_R12D;
        if (op.mem.base == ZYDIS_REGISTER_NONE) return RewriteStatus::NotHandled;
      }
      req.prefixes |= ZYDIS_ATTRIB_HAS_SEGMENT_GS;
    }
  }

  uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
  ZyanUSize length = sizeof(bytes);
  if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, bytes, &length))) return RewriteStatus::NotHandled;
  b.a.embed(bytes, length);
  return RewriteStatus::Emitted;
}

}  // namespace vmm86
