// Control flow and the stack: jmp/jcc/call/ret (near and far), loop/jcxz, int/into/int3,
// iret, push/pop (incl. segment registers), pusha/popa, pushf/popf, enter/leave.
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

bool is_far(const Core& c) { return c.insn->raw.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR; }

/// Reads the selector:offset of a far jmp/call (immediate pointer or m16:16/m16:32).
bool far_pointer(Core& c, uint16_t* sel, uint32_t* offset) {
  const ZydisDecodedOperand& o = c.op(0);
  if (o.type == ZYDIS_OPERAND_TYPE_POINTER) {
    *sel = o.ptr.segment;
    *offset = o.ptr.offset;
    return true;
  }
  if (o.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.raise(vec::UD);
  const unsigned off_size = c.insn->operand_size() / 8u;
  const uint32_t ea = c.effective_address(o);
  uint32_t s = 0;
  if (!c.read_mem(c.mem_seg(o), ea, off_size, offset)) return false;
  if (!c.read_mem(c.mem_seg(o), (ea + off_size) & c.addr_mask(), 2, &s)) return false;
  *sel = static_cast<uint16_t>(s);
  return true;
}

/// Target of a near jmp/call: relative immediate, register or memory.
bool near_target(Core& c, uint32_t* target) {
  if (c.op(0).type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
    *target = c.branch_target(0);
    return true;
  }
  return c.read_op(0, target);
}

unsigned osize(const Core& c) { return c.insn->operand_size() / 8u; }

}  // namespace

Exec h_jmp(Core& c) {
  if (is_far(c)) {
    uint16_t sel = 0;
    uint32_t offset = 0;
    VMM86_TRY_ACCESS(far_pointer(c, &sel, &offset));
    return c.far_jump(sel, offset);
  }
  uint32_t target = 0;
  VMM86_TRY_ACCESS(near_target(c, &target));
  VMM86_TRY_ACCESS(c.jump_within_cs(target));
  return Exec::Ok;
}

Exec h_jcc(Core& c) {
  if (c.cond(c.insn->raw.opcode & 0xF)) VMM86_TRY_ACCESS(c.jump_within_cs(c.branch_target(0)));
  return Exec::Ok;
}

Exec h_call(Core& c) {
  if (is_far(c)) {
    uint16_t sel = 0;
    uint32_t offset = 0;
    VMM86_TRY_ACCESS(far_pointer(c, &sel, &offset));
    return c.far_call(sel, offset);
  }
  uint32_t target = 0;
  VMM86_TRY_ACCESS(near_target(c, &target));
  const uint32_t ret = c.next_eip;
  VMM86_TRY_ACCESS(c.jump_within_cs(target));
  VMM86_TRY_ACCESS(c.push(ret, osize(c)));
  return Exec::Ok;
}

Exec h_ret(Core& c) {
  const uint16_t extra = c.insn->visible_operand_count() > 0 ? static_cast<uint16_t>(c.imm(0)) : 0;
  if (is_far(c)) return c.far_return(extra);
  uint32_t target = 0;
  VMM86_TRY_ACCESS(c.pop(osize(c), &target));
  VMM86_TRY_ACCESS(c.jump_within_cs(target));
  c.set_sp(c.sp() + extra);
  return Exec::Ok;
}

Exec h_loop(Core& c) {
  const ZydisRegister count_reg = c.insn->address_size() == 16 ? ZYDIS_REGISTER_CX : ZYDIS_REGISTER_ECX;
  const uint32_t count = (c.get_reg(count_reg) - 1) & c.addr_mask();
  const bool zf = (c.cpu.eflags & flags::ZF) != 0;
  bool taken = count != 0;
  if (c.insn->mnemonic() == ZYDIS_MNEMONIC_LOOPE) taken = taken && zf;
  if (c.insn->mnemonic() == ZYDIS_MNEMONIC_LOOPNE) taken = taken && !zf;
  if (taken) VMM86_TRY_ACCESS(c.jump_within_cs(c.branch_target(0)));
  c.set_reg(count_reg, count);
  return Exec::Ok;
}

Exec h_jcxz(Core& c) {
  const ZydisRegister count_reg = c.insn->address_size() == 16 ? ZYDIS_REGISTER_CX : ZYDIS_REGISTER_ECX;
  if (c.get_reg(count_reg) == 0) VMM86_TRY_ACCESS(c.jump_within_cs(c.branch_target(0)));
  return Exec::Ok;
}

Exec h_int(Core& c) {
  switch (c.insn->mnemonic()) {
    case ZYDIS_MNEMONIC_INT3: return c.software_interrupt(vec::BP);
    case ZYDIS_MNEMONIC_INTO: return (c.cpu.eflags & flags::OF) ? c.software_interrupt(vec::OF) : Exec::Ok;
    case ZYDIS_MNEMONIC_INT1: {
      // ICEBP: a #DB trap without the gate DPL check.
      c.cpu.eip = c.next_eip;
      VMM86_PROPAGATE(c.deliver_once(Event{vec::DB, EventKind::Exception, false, 0}));
      c.next_eip = c.cpu.eip;
      return Exec::Ok;
    }
    default:
      // In virtual-8086 mode without VME, INT n is IOPL-sensitive.
      if (c.cpu.v86_mode() && c.cpu.iopl() < 3) return c.fail(vec::GP, 0);
      return c.software_interrupt(static_cast<uint8_t>(c.imm(0)));
  }
}

Exec h_iret(Core& c) { return c.iret(); }

Exec h_push(Core& c) {
  const ZydisDecodedOperand& o = c.op(0);
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &v));
  if (o.type == ZYDIS_OPERAND_TYPE_IMMEDIATE && osize(c) == 2) v &= 0xFFFF;
  VMM86_TRY_ACCESS(c.push(v, osize(c)));
  return Exec::Ok;
}

Exec h_pop(Core& c) {
  const ZydisDecodedOperand& o = c.op(0);
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.pop(osize(c), &v));
  if (o.type == ZYDIS_OPERAND_TYPE_REGISTER && o.reg.value >= ZYDIS_REGISTER_ES && o.reg.value <= ZYDIS_REGISTER_GS) {
    const SegReg s = Core::seg_of(o.reg.value);
    VMM86_TRY_ACCESS(c.load_sreg(s, static_cast<uint16_t>(v)));
    if (s == SegReg::Ss) c.begin_stack_load_shadow();
    return Exec::Ok;
  }
  // pop [esp+...] addresses memory with the already incremented ESP.
  VMM86_TRY_ACCESS(c.write_op(0, v));
  return Exec::Ok;
}

Exec h_pusha(Core& c) {
  const unsigned size = osize(c);
  const uint32_t original_esp = c.cpu.reg(Gpr::Esp);
  for (int i = 0; i < kNumGprs; ++i) {
    const uint32_t v = i == static_cast<int>(Gpr::Esp) ? original_esp : c.cpu.gpr[static_cast<size_t>(i)];
    VMM86_TRY_ACCESS(c.push(v, size));
  }
  return Exec::Ok;
}

Exec h_popa(Core& c) {
  const unsigned size = osize(c);
  for (int i = kNumGprs - 1; i >= 0; --i) {
    uint32_t v = 0;
    VMM86_TRY_ACCESS(c.pop(size, &v));
    if (i == static_cast<int>(Gpr::Esp)) continue;  // the saved ESP is skipped
    uint32_t& g = c.cpu.gpr[static_cast<size_t>(i)];
    g = size == 4 ? v : ((g & 0xFFFF0000u) | (v & 0xFFFF));
  }
  return Exec::Ok;
}

Exec h_pushf(Core& c) {
  if (c.cpu.v86_mode() && c.cpu.iopl() < 3) return c.fail(vec::GP, 0);
  VMM86_TRY_ACCESS(c.push(c.cpu.eflags & ~(flags::VM | flags::RF), osize(c)));
  return Exec::Ok;
}

Exec h_popf(Core& c) {
  if (c.cpu.v86_mode() && c.cpu.iopl() < 3) return c.fail(vec::GP, 0);
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.pop(osize(c), &v));
  c.write_eflags(v, osize(c), false);
  return Exec::Ok;
}

Exec h_enter(Core& c) {
  const unsigned size = osize(c);
  const uint32_t alloc = c.imm(0) & 0xFFFF;
  const unsigned level = c.imm(1) & 31;
  const ZydisRegister bp = size == 4 ? ZYDIS_REGISTER_EBP : ZYDIS_REGISTER_BP;
  const uint32_t bp_mask = c.stack32() ? 0xFFFFFFFFu : 0xFFFFu;
  VMM86_TRY_ACCESS(c.push(c.get_reg(bp), size));
  const uint32_t frame = c.sp();
  if (level > 0) {
    uint32_t frame_ptr = c.cpu.reg(Gpr::Ebp);
    for (unsigned i = 1; i < level; ++i) {
      frame_ptr = (frame_ptr - size) & bp_mask;
      uint32_t v = 0;
      VMM86_TRY_ACCESS(c.read_mem(SegReg::Ss, frame_ptr, size, &v));
      VMM86_TRY_ACCESS(c.push(v, size));
    }
    VMM86_TRY_ACCESS(c.push(frame, size));
  }
  c.set_reg(bp, frame);
  c.set_sp(c.sp() - alloc);
  return Exec::Ok;
}

Exec h_leave(Core& c) {
  c.set_sp(c.stack32() ? c.cpu.reg(Gpr::Ebp) : (c.cpu.reg(Gpr::Ebp) & 0xFFFF));
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.pop(osize(c), &v));
  c.set_reg(osize(c) == 4 ? ZYDIS_REGISTER_EBP : ZYDIS_REGISTER_BP, v);
  return Exec::Ok;
}

}  // namespace vmm86::interp
