// IDENT: an ordinary instruction is re-encoded for 64-bit mode with the same mnemonic and
// operands — guest ESP becomes R12, memory operands become gs:[addr32 ...] — which is
// close to a byte copy and keeps guest flags in host RFLAGS untouched (DESIGN.md §4).
//
// Isolation is decided here for every operand, visible or hidden, not by each form's care:
// a memory operand is windowed (gs: with a 32-bit address, or r11 = ea + segment base for
// fs:/gs:), or it is an implicit pointer that a gs: and an addr32 prefix window (xlat,
// maskmovq/maskmovdqu), or the instruction is not translated here (the engine runs it in
// the interpreter). The host bytes are then decoded again and must mean the guest's
// instruction with every memory access windowed: a re-encoding that changed the meaning
// (a hint nop encoded as 0F 0D, an operand dropped) never reaches the code cache.
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
    case ZYDIS_REGCLASS_XMM: return r;
    default: return ZYDIS_REGISTER_NONE;  // segment, control, debug registers: not ident
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

/// Instructions with no architectural effect on the P6 beyond retiring: every nop form
/// (0F 1F /0, 0F 0D, the 0F 18..1F hint space, ENDBR32 decoded as a hint nop) and the
/// prefetches. They touch no memory and raise nothing, so nothing is emitted: re-encoding
/// them could pick a form the host reads differently (0F 0D /r is #UD on some hosts).
bool has_no_effect(const Instruction& insn) {
  switch (insn.mnemonic()) {
    case ZYDIS_MNEMONIC_NOP:
    case ZYDIS_MNEMONIC_PREFETCHNTA:
    case ZYDIS_MNEMONIC_PREFETCHT0:
    case ZYDIS_MNEMONIC_PREFETCHT1:
    case ZYDIS_MNEMONIC_PREFETCHT2: return true;
    default: return false;
  }
}

/// Instructions whose only memory operand is an implicit pointer (DS:[EBX+AL], DS:[EDI])
/// that keeps its meaning in 64-bit mode under an addr32 prefix and takes a segment
/// override: with gs: and addr32 it is windowed like any explicit operand. Only for flat
/// DS (an override would name the segment the pointer goes through).
bool implicit_pointer_windowable(const BlockBuilder& b, const Instruction& insn) {
  switch (insn.mnemonic()) {
    case ZYDIS_MNEMONIC_XLAT:
    case ZYDIS_MNEMONIC_MASKMOVQ:
    case ZYDIS_MNEMONIC_MASKMOVDQU: return (b.mode & tmode::FlatData) && !insn.segment_override();
    default: return false;
  }
}

/// Instructions that CR4.OSFXSR = 0 makes #UD: SSE/SSE2 ones that use an XMM register
/// or MXCSR, or no MMX register at all (cvttss2si eax, [mem]). The SSE/SSE2 integer forms
/// on MMX registers are not (nor fences, movnti, clflush and pause, which are not
/// FloatingPoint).
bool uses_sse_state(const Instruction& insn) {
  const auto ext = insn.raw.meta.isa_ext;
  if (ext != ZYDIS_ISA_EXT_SSE && ext != ZYDIS_ISA_EXT_SSE2) return false;
  bool mmx = false;
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type != ZYDIS_OPERAND_TYPE_REGISTER) continue;
    const ZydisRegisterClass cls = ZydisRegisterGetClass(op.reg.value);
    if (cls == ZYDIS_REGCLASS_XMM || op.reg.value == ZYDIS_REGISTER_MXCSR) return true;
    mmx = mmx || cls == ZYDIS_REGCLASS_MMX;
  }
  return !mmx;
}

/// An x87/MMX/SSE instruction runs natively only when the guest's CR0/CR4 let it run
/// without a fault; otherwise the interpreter raises #NM or #UD.
bool fpu_usable(BlockBuilder& b, const Instruction& insn) {
  if (!insn.has(InsnClass::FloatingPoint)) return true;
  b.mode_sensitive = true;  // the same bytes translate differently in another mode
  if (b.mode & tmode::FpuTraps) return false;
  return !((b.mode & tmode::NoSse) && uses_sse_state(insn));
}

/// What the operands of a guest instruction need, checked before anything is emitted.
struct OperandPlan {
  bool ok = true;
  bool implicit_pointer = false;  ///< a hidden memory operand windowed by gs: + addr32
};

/// bt/bts/btr/btc m, r: the byte reached is ea + (bit offset >> 3), anywhere within
/// ±256 MiB. Through a flat segment that lands in the window or its guards like any access;
/// through fs:/gs: it would skip the segment's limit check (and an unusable segment's
/// guard offset could be undone by a negative offset), so those run in the interpreter.
bool based_bit_string(const Instruction& insn) {
  switch (insn.mnemonic()) {
    case ZYDIS_MNEMONIC_BT:
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC: break;
    default: return false;
  }
  const ZydisDecodedOperand& base = insn.operands[0];
  return base.type == ZYDIS_OPERAND_TYPE_MEMORY && insn.operands[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
         (base.mem.segment == ZYDIS_REGISTER_FS || base.mem.segment == ZYDIS_REGISTER_GS);
}

OperandPlan plan_operands(const BlockBuilder& b, const Instruction& insn) {
  OperandPlan plan;
  if (based_bit_string(insn)) plan.ok = false;
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    const bool hidden = i >= insn.raw.operand_count_visible;
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && hidden) {
      // Implicit registers keep their meaning, except the guest stack pointer (in R12).
      if (op.reg.value == ZYDIS_REGISTER_ESP || op.reg.value == ZYDIS_REGISTER_SP) plan.ok = false;
    } else if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_MEM && hidden) {
      if (implicit_pointer_windowable(b, insn)) {
        plan.implicit_pointer = true;
      } else {
        plan.ok = false;
      }
    }
  }
  return plan;
}

/// The host instruction in `bytes` is the guest's `insn` (same mnemonic, same number of
/// operands) and every memory access of it goes through the window: gs: with a 32-bit
/// address, or gs:[r11] (ea + segment base, see guest_mem_operand).
bool host_encoding_is_windowed(const Instruction& insn, const uint8_t* bytes, size_t length) {
  static const ZydisDecoder decoder = [] {
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    use_p6_meanings(&d);  // as the guest decoder: hint nops, rep bsf/bsr
    return d;
  }();
  ZydisDecodedInstruction host;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes, length, &host, ops))) return false;
  if (host.length != length || host.mnemonic != insn.mnemonic() || host.operand_count != insn.raw.operand_count) {
    return false;
  }
  for (uint8_t i = 0; i < host.operand_count; ++i) {
    const ZydisDecodedOperand& op = ops[i];
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.type != ZYDIS_MEMOP_TYPE_MEM) continue;
    if (op.mem.segment != ZYDIS_REGISTER_GS) return false;
    const bool addr32 = host.address_width == 32;
    const bool based = op.mem.base == ZYDIS_REGISTER_R11 && op.mem.index == ZYDIS_REGISTER_NONE &&
                       op.mem.disp.value == 0;
    if (!addr32 && !based) return false;
  }
  return true;
}

/// The host form of an instruction whose operands need no mapping: its own bytes with the
/// segment prefixes left out and, for a memory operand, gs: and addr32 in front. That is
/// what the encoder would make of it, without the encoder (a third of a translation's
/// time): no register operand is ESP (R12 on the host) or a register without a host
/// twin, and the memory operand is a ModRM one with a base register other than ESP (no
/// base means [disp32], which 64-bit mode reads as EIP-relative) through a flat segment.
/// Its output is checked like the encoder's (host_encoding_is_windowed). False: use the
/// encoder.
bool copy_windowed(const BlockBuilder& b, const Instruction& insn, uint8_t* out, size_t* length) {
  if (!b.insn_bytes) return false;
  bool memory = false;
  for (uint8_t i = 0; i < insn.raw.operand_count_visible; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
      if (map_register(op.reg.value) != op.reg.value) return false;
    } else if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
      if (!(insn.raw.attributes & ZYDIS_ATTRIB_HAS_MODRM) || op.mem.base == ZYDIS_REGISTER_NONE ||
          op.mem.base == ZYDIS_REGISTER_ESP) {
        return false;
      }
      if (op.mem.type == ZYDIS_MEMOP_TYPE_MEM &&
          !flat_segment_usable(b, op.mem.segment, (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0)) {
        return false;
      }
      memory = true;
    }
  }
  size_t n = 0;
  if (memory) {
    if (insn.mnemonic() != ZYDIS_MNEMONIC_LEA) out[n++] = 0x65;  // gs: (lea computes, reads nothing)
    out[n++] = 0x67;                                             // addr32: the guest's wrap at 4 GiB
  }
  const uint8_t prefixes = insn.raw.raw.prefix_count;
  for (uint8_t i = 0; i < prefixes; ++i) {
    const uint8_t p = b.insn_bytes[i];
    const bool segment = p == 0x26 || p == 0x2E || p == 0x36 || p == 0x3E || p == 0x64 || p == 0x65;
    if (!segment) out[n++] = p;
  }
  std::memcpy(out + n, b.insn_bytes + prefixes, insn.length() - prefixes);
  *length = n + insn.length() - prefixes;
  return *length <= ZYDIS_MAX_INSTRUCTION_LENGTH;
}

}  // namespace

RewriteStatus rewrite_ident(BlockBuilder& b, const Instruction& insn) {
  if (!is_ident_candidate(insn)) return RewriteStatus::NotHandled;
  if (has_no_effect(insn)) return RewriteStatus::Emitted;
  if (!fpu_usable(b, insn)) return RewriteStatus::NotHandled;
  const OperandPlan plan = plan_operands(b, insn);
  if (!plan.ok) return RewriteStatus::NotHandled;
  if (!plan.implicit_pointer && insn.mnemonic() != ZYDIS_MNEMONIC_INC && insn.mnemonic() != ZYDIS_MNEMONIC_DEC) {
    uint8_t copied[ZYDIS_MAX_INSTRUCTION_LENGTH + 2];
    size_t copied_length = 0;
    if (copy_windowed(b, insn, copied, &copied_length) && host_encoding_is_windowed(insn, copied, copied_length)) {
      b.a.embed(copied, copied_length);
      return RewriteStatus::Emitted;
    }
  }

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
          uint8_t mov[ZYDIS_MAX_INSTRUCTION_LENGTH];
          ZyanUSize mov_length = sizeof(mov);
          if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, mov, &mov_length))) return RewriteStatus::NotHandled;
          b.a.embed(mov, mov_length);
          return RewriteStatus::Emitted;
        }
        continue;
      }
      asmjit::x86::Mem host;
      if (!guest_mem_operand(b, insn, guest, &host)) return RewriteStatus::NotHandled;
      // guest_mem_operand may have materialized the address in r11 (absolute or index-only).
      if (host.baseId() == asmjit::x86::Gp::kIdR11 && !host.hasIndex()) {
        // fs:/gs: leave ea + base in the 64-bit r11, which may pass 4 GiB on purpose (an
        // unusable segment's base is 4 GiB: its accesses must fault in the guard, not wrap
        // back into the window); the flat forms a 32-bit address in r11d.
        op.mem.base = host.baseType() == asmjit::RegType::kX86_Gpq ? ZYDIS_REGISTER_R11 : ZYDIS_REGISTER_R11D;
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

  uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH + 2];
  size_t prefix = 0;
  if (plan.implicit_pointer) {
    // No visible operand tells the encoder about the pointer: the prefixes go in by hand.
    bytes[prefix++] = 0x65;  // gs:
    bytes[prefix++] = 0x67;  // addr32: EBX/EDI, wrapped to 32 bits
  }
  ZyanUSize length = ZYDIS_MAX_INSTRUCTION_LENGTH;
  if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, bytes + prefix, &length))) return RewriteStatus::NotHandled;
  length += prefix;
  if (length > ZYDIS_MAX_INSTRUCTION_LENGTH || !host_encoding_is_windowed(insn, bytes, length)) {
    return RewriteStatus::NotHandled;
  }
  b.a.embed(bytes, length);
  return RewriteStatus::Emitted;
}

}  // namespace vmm86
