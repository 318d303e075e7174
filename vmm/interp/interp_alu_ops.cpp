// Arithmetic, logic, shifts, multiply/divide, bit operations, BCD, setcc/cmovcc and the
// atomic-style exchanges. Flag semantics come from alu.h; this file only moves operands.
#include "vmm/interp/alu.h"
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

alu::BinOp bin_op(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_ADD: return alu::BinOp::Add;
    case ZYDIS_MNEMONIC_OR: return alu::BinOp::Or;
    case ZYDIS_MNEMONIC_ADC: return alu::BinOp::Adc;
    case ZYDIS_MNEMONIC_SBB: return alu::BinOp::Sbb;
    case ZYDIS_MNEMONIC_AND: return alu::BinOp::And;
    case ZYDIS_MNEMONIC_SUB: return alu::BinOp::Sub;
    case ZYDIS_MNEMONIC_XOR: return alu::BinOp::Xor;
    case ZYDIS_MNEMONIC_CMP: return alu::BinOp::Cmp;
    default: return alu::BinOp::Test;
  }
}

alu::ShiftOp shift_op(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_ROL: return alu::ShiftOp::Rol;
    case ZYDIS_MNEMONIC_ROR: return alu::ShiftOp::Ror;
    case ZYDIS_MNEMONIC_RCL: return alu::ShiftOp::Rcl;
    case ZYDIS_MNEMONIC_RCR: return alu::ShiftOp::Rcr;
    case ZYDIS_MNEMONIC_SHL: return alu::ShiftOp::Shl;
    case ZYDIS_MNEMONIC_SHR: return alu::ShiftOp::Shr;
    default: return alu::ShiftOp::Sar;
  }
}

/// AL, AX or EAX for an operand size in bytes.
ZydisRegister accumulator(unsigned size) {
  return size == 1 ? ZYDIS_REGISTER_AL : size == 2 ? ZYDIS_REGISTER_AX : ZYDIS_REGISTER_EAX;
}

/// The register holding the high half of a widening multiply / dividend: AH, DX or EDX.
ZydisRegister high_half(unsigned size) {
  return size == 1 ? ZYDIS_REGISTER_AH : size == 2 ? ZYDIS_REGISTER_DX : ZYDIS_REGISTER_EDX;
}

/// Applies a Result to a resolved destination and EFLAGS.
Exec commit(Core& c, const OpRef& dst, const alu::Result& r) {
  c.store(dst, r.value);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

}  // namespace

Exec h_binop(Core& c) {
  const alu::BinOp op = bin_op(c.insn->mnemonic());
  const bool writes = op != alu::BinOp::Cmp && op != alu::BinOp::Test;
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, writes ? Access::ReadWrite : Access::Read, &dst));
  uint32_t src = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &src));
  const alu::Result r = alu::binary(op, dst.size, c.load(dst), src, c.cpu.eflags);
  if (!writes) {
    c.set_status_flags(r.eflags);
    return Exec::Ok;
  }
  return commit(c, dst, r);
}

Exec h_incdec(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  const uint32_t v = c.load(dst);
  const bool inc = c.insn->mnemonic() == ZYDIS_MNEMONIC_INC;
  return commit(c, dst, inc ? alu::inc(dst.size, v, c.cpu.eflags) : alu::dec(dst.size, v, c.cpu.eflags));
}

Exec h_neg(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  return commit(c, dst, alu::neg(dst.size, c.load(dst), c.cpu.eflags));
}

Exec h_not(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  c.store(dst, ~c.load(dst));
  return Exec::Ok;
}

Exec h_shift(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  uint32_t count = 1;
  if (c.insn->visible_operand_count() > 1) VMM86_TRY_ACCESS(c.read_op(1, &count));
  const alu::Result r = alu::shift(shift_op(c.insn->mnemonic()), dst.size, c.load(dst), static_cast<uint8_t>(count),
                                   c.cpu.eflags);
  return commit(c, dst, r);
}

Exec h_shxd(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  uint32_t count = 0;
  VMM86_TRY_ACCESS(c.read_op(2, &count));
  const uint32_t fill = c.get_reg(c.op(1).reg.value);
  const uint8_t n = static_cast<uint8_t>(count);
  const uint32_t v = c.load(dst);
  if (dst.size == 2 && (n & 31u) > 16) ++c.undefined_results;  // result and flags: the SDM says undefined
  const alu::Result r = c.insn->mnemonic() == ZYDIS_MNEMONIC_SHLD ? alu::shld(dst.size, v, fill, n, c.cpu.eflags)
                                                                  : alu::shrd(dst.size, v, fill, n, c.cpu.eflags);
  return commit(c, dst, r);
}

namespace {

Exec widening_multiply(Core& c, bool is_signed) {
  const unsigned size = c.op_bytes(0);
  uint32_t src = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &src));
  const uint32_t a = c.get_reg(accumulator(size));
  const alu::WideResult r = is_signed ? alu::imul(size, a, src, c.cpu.eflags) : alu::mul(size, a, src, c.cpu.eflags);
  if (size == 1) {
    c.set_reg(ZYDIS_REGISTER_AX, (r.high << 8) | (r.low & 0xFF));
  } else {
    c.set_reg(accumulator(size), r.low);
    c.set_reg(high_half(size), r.high);
  }
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

}  // namespace

Exec h_mul(Core& c) { return widening_multiply(c, false); }

Exec h_imul(Core& c) {
  const unsigned visible = c.insn->visible_operand_count();
  if (visible == 1) return widening_multiply(c, true);
  uint32_t a = 0, b = 0;
  if (visible == 2) {
    a = c.get_reg(c.op(0).reg.value);
    VMM86_TRY_ACCESS(c.read_op(1, &b));
  } else {
    VMM86_TRY_ACCESS(c.read_op(1, &a));
    b = c.imm(2);
  }
  const alu::Result r = alu::imul_trunc(c.op_bytes(0), a, b, c.cpu.eflags);
  c.set_reg(c.op(0).reg.value, r.value);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_div(Core& c) {
  const unsigned size = c.op_bytes(0);
  uint32_t divisor = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &divisor));
  const uint32_t low = c.get_reg(accumulator(size));
  const uint32_t high = c.get_reg(high_half(size));
  const bool is_signed = c.insn->mnemonic() == ZYDIS_MNEMONIC_IDIV;
  const alu::DivResult r = is_signed ? alu::idiv(size, low, high, divisor, c.cpu.eflags)
                                     : alu::div(size, low, high, divisor, c.cpu.eflags);
  if (!r.ok) return c.fail(vec::DE);
  c.set_reg(accumulator(size), r.quotient);
  c.set_reg(high_half(size), r.remainder);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_bit(Core& c) {
  alu::BitOp op = alu::BitOp::Bt;
  switch (c.insn->mnemonic()) {
    case ZYDIS_MNEMONIC_BTS: op = alu::BitOp::Bts; break;
    case ZYDIS_MNEMONIC_BTR: op = alu::BitOp::Btr; break;
    case ZYDIS_MNEMONIC_BTC: op = alu::BitOp::Btc; break;
    default: break;
  }
  const Access access = op == alu::BitOp::Bt ? Access::Read : Access::ReadWrite;
  const unsigned size = c.op_bytes(0);
  uint32_t bit = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &bit));
  OpRef dst;
  const ZydisDecodedOperand& o = c.op(0);
  if (o.type == ZYDIS_OPERAND_TYPE_MEMORY && c.op(1).type == ZYDIS_OPERAND_TYPE_REGISTER) {
    // A register bit offset is signed and may address memory outside the operand.
    const int32_t signed_bit = size == 2 ? static_cast<int16_t>(bit) : static_cast<int32_t>(bit);
    const int32_t unit = signed_bit >> (size == 2 ? 4 : 5);
    const uint32_t ea = (c.effective_address(o) + static_cast<uint32_t>(unit) * size) & c.addr_mask();
    dst.is_mem = true;
    dst.size = size;
    VMM86_TRY_ACCESS(c.translate(c.mem_seg(o), ea, size, access, &dst.mem));
  } else {
    VMM86_TRY_ACCESS(c.resolve(0, access, &dst));
  }
  const alu::Result r = alu::bit_test(op, size, c.load(dst), bit & (size * 8 - 1), c.cpu.eflags);
  if (op == alu::BitOp::Bt) {
    c.set_status_flags(r.eflags);
    return Exec::Ok;
  }
  return commit(c, dst, r);
}

Exec h_bitscan(Core& c) {
  uint32_t src = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &src));
  const ZydisRegister d = c.op(0).reg.value;
  const unsigned size = c.op_bytes(0);
  const uint32_t old = c.get_reg(d);
  const alu::Result r = c.insn->mnemonic() == ZYDIS_MNEMONIC_BSF ? alu::bsf(size, src, old, c.cpu.eflags)
                                                                 : alu::bsr(size, src, old, c.cpu.eflags);
  c.set_reg(d, r.value);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_bcd(Core& c) {
  alu::BcdOp op = alu::BcdOp::Daa;
  switch (c.insn->mnemonic()) {
    case ZYDIS_MNEMONIC_DAS: op = alu::BcdOp::Das; break;
    case ZYDIS_MNEMONIC_AAA: op = alu::BcdOp::Aaa; break;
    case ZYDIS_MNEMONIC_AAS: op = alu::BcdOp::Aas; break;
    default: break;
  }
  const alu::Result r = alu::bcd(op, c.get_reg(ZYDIS_REGISTER_AX), c.cpu.eflags);
  c.set_reg(ZYDIS_REGISTER_AX, r.value);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_aam(Core& c) {
  const alu::DivResult r = alu::aam(c.get_reg(ZYDIS_REGISTER_AX), static_cast<uint8_t>(c.imm(0)), c.cpu.eflags);
  if (!r.ok) return c.fail(vec::DE);
  c.set_reg(ZYDIS_REGISTER_AX, ((r.quotient & 0xFF) << 8) | (r.remainder & 0xFF));
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_aad(Core& c) {
  const alu::Result r = alu::aad(c.get_reg(ZYDIS_REGISTER_AX), static_cast<uint8_t>(c.imm(0)), c.cpu.eflags);
  c.set_reg(ZYDIS_REGISTER_AX, r.value);
  c.set_status_flags(r.eflags);
  return Exec::Ok;
}

Exec h_setcc(Core& c) { return c.write_op(0, c.cond(c.insn->raw.opcode & 0xF) ? 1 : 0) ? Exec::Ok : Exec::Fault; }

Exec h_cmovcc(Core& c) {
  uint32_t src = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &src));  // the source is read (and may fault) even when false
  if (c.cond(c.insn->raw.opcode & 0xF)) c.set_reg(c.op(0).reg.value, src);
  return Exec::Ok;
}

Exec h_cmpxchg(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  const uint32_t cur = c.load(dst);
  const ZydisRegister acc = accumulator(dst.size);
  const alu::Result cmp = alu::binary(alu::BinOp::Cmp, dst.size, c.get_reg(acc), cur, c.cpu.eflags);
  c.set_status_flags(cmp.eflags);
  if (cmp.eflags & flags::ZF) {
    c.store(dst, c.get_reg(c.op(1).reg.value));
  } else {
    c.store(dst, cur);  // the locked cycle always writes
    c.set_reg(acc, cur);
  }
  return Exec::Ok;
}

Exec h_cmpxchg8b(Core& c) {
  const ZydisDecodedOperand& o = c.op(0);
  if (o.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  MemTarget t;
  VMM86_TRY_ACCESS(c.translate(c.mem_seg(o), c.effective_address(o), 8, Access::ReadWrite, &t));
  uint32_t cur[2];
  c.read_target(t, cur);
  const uint32_t eax = c.cpu.reg(Gpr::Eax), edx = c.cpu.reg(Gpr::Edx);
  if (cur[0] == eax && cur[1] == edx) {
    const uint32_t repl[2] = {c.cpu.reg(Gpr::Ebx), c.cpu.reg(Gpr::Ecx)};
    c.write_target(t, repl);
    c.cpu.eflags |= flags::ZF;
  } else {
    c.write_target(t, cur);
    c.cpu.reg(Gpr::Eax) = cur[0];
    c.cpu.reg(Gpr::Edx) = cur[1];
    c.cpu.eflags &= ~flags::ZF;
  }
  return Exec::Ok;
}

Exec h_xadd(Core& c) {
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  const uint32_t cur = c.load(dst);
  const ZydisRegister src = c.op(1).reg.value;
  const alu::Result r = alu::binary(alu::BinOp::Add, dst.size, cur, c.get_reg(src), c.cpu.eflags);
  c.set_reg(src, cur);
  return commit(c, dst, r);
}

Exec h_bswap(Core& c) {
  const ZydisRegister r = c.op(0).reg.value;
  // The 16-bit form is undefined; P6 parts clear the low word.
  c.set_reg(r, c.op_bytes(0) == 4 ? __builtin_bswap32(c.get_reg(r)) : 0);
  return Exec::Ok;
}

}  // namespace vmm86::interp
