// Data movement and small flag instructions: mov and movnti (the Sreg/CRn/DRn forms have
// their own handlers: Refine::MovSpecial), movzx/movsx, lea, xchg, conversions, lahf/sahf, xlat, bound, nop-likes and
// ud.
#include "vmm/interp/core.h"

namespace vmm86::interp {

Exec h_mov(Core& c) {
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &v));
  VMM86_TRY_ACCESS(c.write_op(0, v));
  return Exec::Ok;
}

Exec h_movx(Core& c) {
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &v));
  if (c.insn->mnemonic() == ZYDIS_MNEMONIC_MOVSX) {
    v = c.op_bytes(1) == 1 ? static_cast<uint32_t>(static_cast<int8_t>(v))
                           : static_cast<uint32_t>(static_cast<int16_t>(v));
  }
  c.set_reg(c.op(0).reg.value, v);
  return Exec::Ok;
}

Exec h_lea(Core& c) {
  if (c.op(1).type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  c.set_reg(c.op(0).reg.value, c.effective_address(c.op(1)));
  return Exec::Ok;
}

Exec h_xchg(Core& c) {
  OpRef a, b;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &a));
  VMM86_TRY_ACCESS(c.resolve(1, Access::ReadWrite, &b));
  const uint32_t va = c.load(a), vb = c.load(b);
  c.store(a, vb);
  c.store(b, va);
  return Exec::Ok;
}

Exec h_convert(Core& c) {
  uint32_t& eax = c.cpu.reg(Gpr::Eax);
  switch (c.insn->mnemonic()) {
    case ZYDIS_MNEMONIC_CBW: c.set_reg(ZYDIS_REGISTER_AX, static_cast<uint32_t>(static_cast<int8_t>(eax))); break;
    case ZYDIS_MNEMONIC_CWDE: eax = static_cast<uint32_t>(static_cast<int16_t>(eax)); break;
    case ZYDIS_MNEMONIC_CWD: c.set_reg(ZYDIS_REGISTER_DX, (eax & 0x8000) ? 0xFFFF : 0); break;
    default:  // CDQ
      c.cpu.reg(Gpr::Edx) = (eax & 0x80000000u) ? 0xFFFFFFFFu : 0;
      break;
  }
  return Exec::Ok;
}

Exec h_flagop(Core& c) {
  uint32_t& f = c.cpu.eflags;
  switch (c.insn->mnemonic()) {
    case ZYDIS_MNEMONIC_CLC: f &= ~flags::CF; break;
    case ZYDIS_MNEMONIC_STC: f |= flags::CF; break;
    case ZYDIS_MNEMONIC_CMC: f ^= flags::CF; break;
    case ZYDIS_MNEMONIC_CLD: f &= ~flags::DF; break;
    default: f |= flags::DF; break;  // STD
  }
  return Exec::Ok;
}

namespace {
constexpr uint32_t kLahfFlags = flags::SF | flags::ZF | flags::AF | flags::PF | flags::CF;
}

Exec h_lahf(Core& c) {
  c.set_reg(ZYDIS_REGISTER_AH, (c.cpu.eflags & kLahfFlags) | flags::Reserved1);
  return Exec::Ok;
}

Exec h_sahf(Core& c) {
  c.cpu.eflags = (c.cpu.eflags & ~kLahfFlags) | (c.get_reg(ZYDIS_REGISTER_AH) & kLahfFlags);
  return Exec::Ok;
}

Exec h_salc(Core& c) {
  c.set_reg(ZYDIS_REGISTER_AL, (c.cpu.eflags & flags::CF) ? 0xFF : 0);
  return Exec::Ok;
}

Exec h_nop(Core&) { return Exec::Ok; }

// clflush is checked like a one-byte load (SDM): segment limit, #PF, the Accessed bit.
// There is no cache to flush.
Exec h_clflush(Core& c) {
  if (c.op(0).type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  MemTarget target;
  VMM86_TRY_ACCESS(c.translate(c.mem_seg(c.op(0)), c.effective_address(c.op(0)), 1, Access::Read, &target));
  return Exec::Ok;
}

Exec h_xlat(Core& c) {
  const uint32_t offset = (c.get_reg(c.insn->address_size() == 16 ? ZYDIS_REGISTER_BX : ZYDIS_REGISTER_EBX) +
                           c.get_reg(ZYDIS_REGISTER_AL)) &
                          c.addr_mask();
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.read_mem(c.override_or_ds(), offset, 1, &v));
  c.set_reg(ZYDIS_REGISTER_AL, v);
  return Exec::Ok;
}

Exec h_bound(Core& c) {
  const ZydisDecodedOperand& m = c.op(1);
  if (m.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  const unsigned size = c.op_bytes(0);
  const uint32_t ea = c.effective_address(m);
  uint32_t lo = 0, hi = 0;
  VMM86_TRY_ACCESS(c.read_mem(c.mem_seg(m), ea, size, &lo));
  VMM86_TRY_ACCESS(c.read_mem(c.mem_seg(m), (ea + size) & c.addr_mask(), size, &hi));
  const uint32_t idx = c.get_reg(c.op(0).reg.value);
  auto sx = [size](uint32_t v) {
    return size == 2 ? static_cast<int32_t>(static_cast<int16_t>(v)) : static_cast<int32_t>(v);
  };
  if (sx(idx) < sx(lo) || sx(idx) > sx(hi)) return c.fail(vec::BR);
  return Exec::Ok;
}

Exec h_ud(Core& c) { return c.fail(vec::UD); }

}  // namespace vmm86::interp
