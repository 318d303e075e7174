// Far control transfers: jmp/call through code segments and call gates (with the TSS
// stack switch), far ret and iret to the same or an outer privilege level, iret to
// virtual-8086 mode (SDM Vol. 3 §5.8, Vol. 2 JMP/CALL/RET/IRET). Task switches are in
// task_switch.cpp.
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

Exec read_target_descriptor(Core& c, uint16_t sel, Descriptor* d) {
  if ((sel & 0xFFFC) == 0) return c.fail(vec::GP, 0);
  switch (c.read_descriptor(sel, d)) {
    case DescRead::Ok: return Exec::Ok;
    case DescRead::OutOfLimit: return c.fail(vec::GP, sel & 0xFFFCu);
    case DescRead::Fault: return Exec::Fault;
  }
  return Exec::Fault;
}

/// A task gate or an available 16/32-bit TSS: jmp/call to it switches tasks.
bool is_task_target(const Descriptor& d) {
  return d.is_system() && (d.type() == 0x5 || d.type() == 0x1 || d.type() == 0x9);
}

/// Checks a call gate for jmp/call and reads its target code descriptor.
Exec check_call_gate(Core& c, uint16_t gate_sel, const Descriptor& gate, Descriptor* code, uint16_t* code_sel) {
  if (gate.dpl() < c.cpl() || gate.dpl() < (gate_sel & 3)) return c.fail(vec::GP, gate_sel & 0xFFFCu);
  if (!gate.present()) return c.fail(vec::NP, gate_sel & 0xFFFCu);
  *code_sel = gate.gate_selector();
  VMM86_PROPAGATE(read_target_descriptor(c, *code_sel, code));
  if (!code->is_code() || code->dpl() > c.cpl()) return c.fail(vec::GP, *code_sel & 0xFFFCu);
  if (!code->present()) return c.fail(vec::NP, *code_sel & 0xFFFCu);
  return Exec::Ok;
}

/// Direct jmp/call to a code segment: the privilege rules shared by both.
Exec check_direct_code(Core& c, uint16_t sel, const Descriptor& d) {
  const uint8_t rpl = sel & 3;
  if (d.conforming() ? d.dpl() > c.cpl() : (rpl > c.cpl() || d.dpl() != c.cpl())) {
    return c.fail(vec::GP, sel & 0xFFFCu);
  }
  if (!d.present()) return c.fail(vec::NP, sel & 0xFFFCu);
  return Exec::Ok;
}

Exec enter_code(Core& c, uint16_t sel, Descriptor* d, uint8_t new_cpl, uint32_t offset) {
  if (offset > d->limit()) return c.fail(vec::GP, 0);
  VMM86_TRY_ACCESS(c.set_accessed(sel, d));
  c.cpu.sreg(SegReg::Cs) = Core::make_cache(static_cast<uint16_t>((sel & 0xFFFC) | new_cpl), *d);
  c.next_eip = offset;
  return Exec::Ok;
}

/// Loads SS from a ret/iret to an outer level (RPL of the new CS is the new CPL).
Exec check_outer_ss(Core& c, uint16_t ss_sel, uint8_t new_cpl, SegmentCache* out) {
  Descriptor d;
  VMM86_PROPAGATE(read_target_descriptor(c, ss_sel, &d));
  if ((ss_sel & 3) != new_cpl || !d.writable_data() || d.dpl() != new_cpl) return c.fail(vec::GP, ss_sel & 0xFFFCu);
  if (!d.present()) return c.fail(vec::SS, ss_sel & 0xFFFCu);
  VMM86_TRY_ACCESS(c.set_accessed(ss_sel, &d));
  *out = Core::make_cache(ss_sel, d);
  return Exec::Ok;
}

/// The return CS of far ret / iret: checks against the current CPL.
Exec check_return_cs(Core& c, uint16_t sel, Descriptor* d) {
  VMM86_PROPAGATE(read_target_descriptor(c, sel, d));
  const uint8_t rpl = sel & 3;
  if (rpl < c.cpl() || !d->is_code()) return c.fail(vec::GP, sel & 0xFFFCu);
  if (d->conforming() ? d->dpl() > rpl : d->dpl() != rpl) return c.fail(vec::GP, sel & 0xFFFCu);
  if (!d->present()) return c.fail(vec::NP, sel & 0xFFFCu);
  return Exec::Ok;
}

}  // namespace

bool Core::tss_stack(uint8_t dpl, uint16_t* ss, uint32_t* esp, uint32_t ext) {
  const bool tss32 = (cpu.tr.type() & 8) != 0;
  const uint32_t off = tss32 ? 4u + dpl * 8u : 2u + dpl * 4u;
  const uint32_t width = tss32 ? 4u : 2u;
  if (off + width + 1 > cpu.tr.limit) return raise(vec::TS, (cpu.tr.selector & 0xFFFCu) | ext);
  uint32_t sp_value = 0, ss_value = 0;
  if (!read_sys(cpu.tr.base + off, &sp_value, width)) return false;
  if (!read_sys(cpu.tr.base + off + width, &ss_value, 2)) return false;
  *esp = sp_value;
  *ss = static_cast<uint16_t>(ss_value);
  return true;
}

bool Core::load_inner_ss(uint16_t sel, uint8_t new_cpl, uint32_t ext, SegmentCache* out) {
  if ((sel & 0xFFFC) == 0) return raise(vec::TS, ext);
  const uint32_t err = (sel & 0xFFFCu) | ext;
  Descriptor d;
  switch (read_descriptor(sel, &d)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return raise(vec::TS, err);
    case DescRead::Fault: return false;
  }
  if ((sel & 3) != new_cpl || !d.writable_data() || d.dpl() != new_cpl) return raise(vec::TS, err);
  if (!d.present()) return raise(vec::SS, err);
  if (!set_accessed(sel, &d)) return false;
  *out = make_cache(sel, d);
  return true;
}

Exec Core::far_jump(uint16_t sel, uint32_t offset) {
  if (!pmode()) {
    if (offset > cpu.sreg(SegReg::Cs).limit) return fail(vec::GP, 0);
    load_real_sreg(SegReg::Cs, sel);
    next_eip = offset;
    return Exec::Ok;
  }
  Descriptor d;
  VMM86_PROPAGATE(read_target_descriptor(*this, sel, &d));
  if (d.is_code()) {
    VMM86_PROPAGATE(check_direct_code(*this, sel, d));
    return enter_code(*this, sel, &d, cpl(), offset);
  }
  if (d.is_system() && (d.type() == 0x4 || d.type() == 0xC)) {
    Descriptor code;
    uint16_t code_sel = 0;
    VMM86_PROPAGATE(check_call_gate(*this, sel, d, &code, &code_sel));
    if (!code.conforming() && code.dpl() != cpl()) return fail(vec::GP, code_sel & 0xFFFCu);
    const uint32_t target = d.type() == 0xC ? d.gate_offset() : (d.gate_offset() & 0xFFFF);
    return enter_code(*this, code_sel, &code, cpl(), target);
  }
  if (is_task_target(d)) return task_transfer(sel, d, TaskSource::Jmp);
  return fail(vec::GP, sel & 0xFFFCu);
}

Exec Core::far_call(uint16_t sel, uint32_t offset) {
  const unsigned osize = insn->operand_size() / 8u;
  const uint16_t old_cs = cpu.sreg(SegReg::Cs).selector;
  const uint32_t return_eip = next_eip;
  if (!pmode()) {
    if (offset > cpu.sreg(SegReg::Cs).limit) return fail(vec::GP, 0);
    VMM86_TRY_ACCESS(push(old_cs, osize));
    VMM86_TRY_ACCESS(push(next_eip, osize));
    load_real_sreg(SegReg::Cs, sel);
    next_eip = offset;
    return Exec::Ok;
  }
  Descriptor d;
  VMM86_PROPAGATE(read_target_descriptor(*this, sel, &d));
  if (d.is_code()) {
    VMM86_PROPAGATE(check_direct_code(*this, sel, d));
    if (offset > d.limit()) return fail(vec::GP, 0);
    VMM86_TRY_ACCESS(push(old_cs, osize));
    VMM86_TRY_ACCESS(push(next_eip, osize));
    return enter_code(*this, sel, &d, cpl(), offset);
  }
  if (is_task_target(d)) return task_transfer(sel, d, TaskSource::Call);
  if (!d.is_system() || (d.type() != 0x4 && d.type() != 0xC)) return fail(vec::GP, sel & 0xFFFCu);

  Descriptor code;
  uint16_t code_sel = 0;
  VMM86_PROPAGATE(check_call_gate(*this, sel, d, &code, &code_sel));
  const bool gate32 = d.type() == 0xC;
  const unsigned psize = gate32 ? 4 : 2;
  const uint32_t target = gate32 ? d.gate_offset() : (d.gate_offset() & 0xFFFF);
  if (target > code.limit()) return fail(vec::GP, 0);
  const uint8_t new_cpl = code.conforming() ? cpl() : code.dpl();
  if (new_cpl == cpl()) {
    VMM86_TRY_ACCESS(push(old_cs, psize));
    VMM86_TRY_ACCESS(push(next_eip, psize));
    return enter_code(*this, code_sel, &code, new_cpl, target);
  }

  // More privileged: new stack from the TSS, parameters copied from the caller's stack.
  const unsigned params = d.gate_params();
  uint32_t param_values[31] = {};
  for (unsigned i = 0; i < params; ++i) VMM86_TRY_ACCESS(stack_peek(i * psize, psize, &param_values[i]));
  const uint16_t old_ss = cpu.sreg(SegReg::Ss).selector;
  const uint32_t old_esp = cpu.reg(Gpr::Esp);
  uint16_t new_ss = 0;
  uint32_t new_esp = 0;
  SegmentCache ss_cache;
  VMM86_TRY_ACCESS(tss_stack(new_cpl, &new_ss, &new_esp, 0));
  VMM86_TRY_ACCESS(load_inner_ss(new_ss, new_cpl, 0, &ss_cache));
  cpu.sreg(SegReg::Ss) = ss_cache;
  cpu.reg(Gpr::Esp) = new_esp;
  VMM86_PROPAGATE(enter_code(*this, code_sel, &code, new_cpl, target));
  bool ok = push(old_ss, psize) && push(old_esp, psize);
  for (unsigned i = params; ok && i-- > 0;) ok = push(param_values[i], psize);
  ok = ok && push(old_cs, psize) && push(return_eip, psize);
  if (!ok) {
    if (fault.vector == vec::SS) fault.error = new_ss & 0xFFFCu;
    return Exec::Fault;
  }
  return Exec::Ok;
}

Exec Core::far_return(uint16_t pop_bytes) {
  const unsigned osize = insn->operand_size() / 8u;
  uint32_t eip = 0, cs = 0;
  VMM86_TRY_ACCESS(pop(osize, &eip));
  VMM86_TRY_ACCESS(pop(osize, &cs));
  const uint16_t cs_sel = static_cast<uint16_t>(cs);
  if (!pmode()) {
    if (eip > cpu.sreg(SegReg::Cs).limit) return fail(vec::GP, 0);
    load_real_sreg(SegReg::Cs, cs_sel);
    set_sp(sp() + pop_bytes);
    next_eip = eip;
    return Exec::Ok;
  }
  Descriptor d;
  VMM86_PROPAGATE(check_return_cs(*this, cs_sel, &d));
  const uint8_t rpl = cs_sel & 3;
  if (rpl == cpl()) {
    VMM86_PROPAGATE(enter_code(*this, cs_sel, &d, rpl, eip));
    set_sp(sp() + pop_bytes);
    return Exec::Ok;
  }
  set_sp(sp() + pop_bytes);
  uint32_t new_esp = 0, ss = 0;
  VMM86_TRY_ACCESS(pop(osize, &new_esp));
  VMM86_TRY_ACCESS(pop(osize, &ss));
  SegmentCache ss_cache;
  VMM86_PROPAGATE(check_outer_ss(*this, static_cast<uint16_t>(ss), rpl, &ss_cache));
  VMM86_PROPAGATE(enter_code(*this, cs_sel, &d, rpl, eip));
  cpu.sreg(SegReg::Ss) = ss_cache;
  cpu.reg(Gpr::Esp) = osize == 4 ? new_esp : ((cpu.reg(Gpr::Esp) & 0xFFFF0000u) | (new_esp & 0xFFFF));
  set_sp(sp() + pop_bytes);
  null_inaccessible_segments();
  return Exec::Ok;
}

namespace {

Exec iret_real_or_v86(Core& c, unsigned osize) {
  if (c.cpu.v86_mode() && c.cpu.iopl() < 3) return c.fail(vec::GP, 0);
  uint32_t eip = 0, cs = 0, fl = 0;
  VMM86_TRY_ACCESS(c.pop(osize, &eip));
  VMM86_TRY_ACCESS(c.pop(osize, &cs));
  VMM86_TRY_ACCESS(c.pop(osize, &fl));
  if (eip > c.cpu.sreg(SegReg::Cs).limit) return c.fail(vec::GP, 0);
  c.load_real_sreg(SegReg::Cs, static_cast<uint16_t>(cs));
  c.write_eflags(fl, osize, true);
  c.next_eip = eip;
  return Exec::Ok;
}

Exec iret_to_v86(Core& c, uint32_t eip, uint16_t cs, uint32_t fl) {
  // Stack after EIP/CS/EFLAGS: ESP, SS, ES, DS, FS, GS (32 bits each).
  uint32_t vals[6];
  for (uint32_t& v : vals) VMM86_TRY_ACCESS(c.pop(4, &v));
  c.cpu.eflags = (fl & flags::Writable) | flags::Reserved1;
  const SegReg order[] = {SegReg::Ss, SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs};
  for (unsigned i = 0; i < 5; ++i) c.load_real_sreg(order[i], static_cast<uint16_t>(vals[i + 1]));
  c.load_real_sreg(SegReg::Cs, cs);
  c.cpu.reg(Gpr::Esp) = vals[0];
  c.next_eip = eip & 0xFFFF;
  return Exec::Ok;
}

}  // namespace

Exec Core::iret() {
  const unsigned osize = insn->operand_size() / 8u;
  cpu.pending.nmi_blocked = false;  // even if the iret faults (SDM Vol. 3 §6.7.1)
  if (!pmode()) return iret_real_or_v86(*this, osize);
  if (cpu.eflags & flags::NT) return task_return();
  uint32_t eip = 0, cs = 0, fl = 0;
  VMM86_TRY_ACCESS(pop(osize, &eip));
  VMM86_TRY_ACCESS(pop(osize, &cs));
  VMM86_TRY_ACCESS(pop(osize, &fl));
  const uint16_t cs_sel = static_cast<uint16_t>(cs);
  if (osize == 4 && (fl & flags::VM) && cpl() == 0) return iret_to_v86(*this, eip, cs_sel, fl);
  Descriptor d;
  VMM86_PROPAGATE(check_return_cs(*this, cs_sel, &d));
  const uint8_t rpl = cs_sel & 3;
  if (rpl == cpl()) {
    VMM86_PROPAGATE(enter_code(*this, cs_sel, &d, rpl, eip));
    write_eflags(fl, osize, true);
    return Exec::Ok;
  }
  uint32_t new_esp = 0, ss = 0;
  VMM86_TRY_ACCESS(pop(osize, &new_esp));
  VMM86_TRY_ACCESS(pop(osize, &ss));
  SegmentCache ss_cache;
  VMM86_PROPAGATE(check_outer_ss(*this, static_cast<uint16_t>(ss), rpl, &ss_cache));
  write_eflags(fl, osize, true);  // with the old (inner) CPL's rights
  VMM86_PROPAGATE(enter_code(*this, cs_sel, &d, rpl, eip));
  cpu.sreg(SegReg::Ss) = ss_cache;
  cpu.reg(Gpr::Esp) = osize == 4 ? new_esp : ((cpu.reg(Gpr::Esp) & 0xFFFF0000u) | (new_esp & 0xFFFF));
  null_inaccessible_segments();
  return Exec::Ok;
}

}  // namespace vmm86::interp
