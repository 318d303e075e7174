// Operand access for handlers: Zydis registers onto CpuState, effective addresses in
// 16- and 32-bit addressing, immediates, branch targets and condition codes.
#include <cstring>

#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

bool in_range(ZydisRegister r, ZydisRegister first, ZydisRegister last) { return r >= first && r <= last; }
size_t index_from(ZydisRegister r, ZydisRegister first) { return static_cast<size_t>(r - first); }

}  // namespace

uint32_t Core::get_reg(ZydisRegister r) const {
  if (in_range(r, ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_EDI)) return cpu.gpr[index_from(r, ZYDIS_REGISTER_EAX)];
  if (in_range(r, ZYDIS_REGISTER_AX, ZYDIS_REGISTER_DI)) return cpu.gpr[index_from(r, ZYDIS_REGISTER_AX)] & 0xFFFF;
  if (in_range(r, ZYDIS_REGISTER_AL, ZYDIS_REGISTER_BL)) return cpu.gpr[index_from(r, ZYDIS_REGISTER_AL)] & 0xFF;
  if (in_range(r, ZYDIS_REGISTER_AH, ZYDIS_REGISTER_BH)) return (cpu.gpr[index_from(r, ZYDIS_REGISTER_AH)] >> 8) & 0xFF;
  if (in_range(r, ZYDIS_REGISTER_ES, ZYDIS_REGISTER_GS)) return cpu.seg[index_from(r, ZYDIS_REGISTER_ES)].selector;
  return 0;
}

void Core::set_reg(ZydisRegister r, uint32_t v) {
  if (in_range(r, ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_EDI)) {
    cpu.gpr[index_from(r, ZYDIS_REGISTER_EAX)] = v;
  } else if (in_range(r, ZYDIS_REGISTER_AX, ZYDIS_REGISTER_DI)) {
    uint32_t& g = cpu.gpr[index_from(r, ZYDIS_REGISTER_AX)];
    g = (g & 0xFFFF0000u) | (v & 0xFFFFu);
  } else if (in_range(r, ZYDIS_REGISTER_AL, ZYDIS_REGISTER_BL)) {
    uint32_t& g = cpu.gpr[index_from(r, ZYDIS_REGISTER_AL)];
    g = (g & 0xFFFFFF00u) | (v & 0xFFu);
  } else if (in_range(r, ZYDIS_REGISTER_AH, ZYDIS_REGISTER_BH)) {
    uint32_t& g = cpu.gpr[index_from(r, ZYDIS_REGISTER_AH)];
    g = (g & 0xFFFF00FFu) | ((v & 0xFFu) << 8);
  }
}

SegReg Core::seg_of(ZydisRegister r) {
  return in_range(r, ZYDIS_REGISTER_ES, ZYDIS_REGISTER_GS) ? static_cast<SegReg>(r - ZYDIS_REGISTER_ES) : SegReg::Ds;
}

SegReg Core::override_or_ds() const {
  const auto a = insn->raw.attributes;
  if (a & ZYDIS_ATTRIB_HAS_SEGMENT_ES) return SegReg::Es;
  if (a & ZYDIS_ATTRIB_HAS_SEGMENT_CS) return SegReg::Cs;
  if (a & ZYDIS_ATTRIB_HAS_SEGMENT_SS) return SegReg::Ss;
  if (a & ZYDIS_ATTRIB_HAS_SEGMENT_FS) return SegReg::Fs;
  if (a & ZYDIS_ATTRIB_HAS_SEGMENT_GS) return SegReg::Gs;
  return SegReg::Ds;
}

uint32_t Core::effective_address(const ZydisDecodedOperand& o) const {
  uint32_t ea = static_cast<uint32_t>(o.mem.disp.value);
  if (o.mem.base != ZYDIS_REGISTER_NONE) ea += get_reg(o.mem.base);
  if (o.mem.index != ZYDIS_REGISTER_NONE) ea += get_reg(o.mem.index) * o.mem.scale;
  return ea & addr_mask();
}

bool Core::resolve(unsigned i, Access a, OpRef* r) {
  const ZydisDecodedOperand& o = op(i);
  r->size = o.size / 8u;
  if (o.type == ZYDIS_OPERAND_TYPE_REGISTER) {
    r->is_mem = false;
    r->reg = o.reg.value;
    return true;
  }
  r->is_mem = true;
  return translate(mem_seg(o), effective_address(o), r->size, a, &r->mem);
}

uint32_t Core::load(const OpRef& r) {
  if (!r.is_mem) return get_reg(r.reg);
  uint32_t v = 0;
  read_target(r.mem, &v);
  return v;
}

void Core::store(const OpRef& r, uint32_t v) {
  if (r.is_mem) {
    write_target(r.mem, &v);
  } else {
    set_reg(r.reg, v);
  }
}

uint32_t Core::imm(unsigned i) const { return static_cast<uint32_t>(op(i).imm.value.u); }

bool Core::read_op(unsigned i, uint32_t* v) {
  const ZydisDecodedOperand& o = op(i);
  switch (o.type) {
    case ZYDIS_OPERAND_TYPE_REGISTER: *v = get_reg(o.reg.value); return true;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE: *v = imm(i); return true;
    case ZYDIS_OPERAND_TYPE_MEMORY: return read_mem(mem_seg(o), effective_address(o), o.size / 8u, v);
    default: *v = 0; return true;
  }
}

bool Core::write_op(unsigned i, uint32_t v) {
  const ZydisDecodedOperand& o = op(i);
  if (o.type == ZYDIS_OPERAND_TYPE_MEMORY) return write_mem(mem_seg(o), effective_address(o), o.size / 8u, v);
  set_reg(o.reg.value, v);
  return true;
}

uint32_t Core::branch_target(unsigned i) const {
  const uint32_t t = next_eip + imm(i);
  return insn->operand_size() == 16 ? (t & 0xFFFFu) : t;
}

bool Core::cond(unsigned cc) const {
  const uint32_t f = cpu.eflags;
  const bool cf = f & flags::CF, zf = f & flags::ZF, sf = f & flags::SF, of = f & flags::OF, pf = f & flags::PF;
  bool r = false;
  switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 5: r = pf; break;
    case 6: r = sf != of; break;
    default: r = zf || (sf != of); break;
  }
  return (cc & 1) ? !r : r;
}

bool Core::jump_within_cs(uint32_t target) {
  // Real mode checks the limit too (the cached one, normally 0xFFFF).
  if (target > cpu.sreg(SegReg::Cs).limit) return raise(vec::GP, 0);
  next_eip = target;
  return true;
}

}  // namespace vmm86::interp
