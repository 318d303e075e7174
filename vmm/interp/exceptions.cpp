// Event delivery: the real-mode IVT and protected-mode interrupt/trap gates, with the
// ring switch through the TSS (also out of virtual-8086 mode); task gates switch tasks
// (task_switch.cpp). Escalation to #DF and
// shutdown is in Core::deliver; this file performs one attempt.
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

Exec deliver_real(Core& c, const Event& ev) {
  const uint32_t entry = ev.vector * 4u;
  if (entry + 3 > c.cpu.idtr.limit) return c.fail(vec::GP, ev.vector * 8u + 2u);
  uint32_t vector_ptr = 0;
  VMM86_TRY_ACCESS(c.read_sys(c.cpu.idtr.base + entry, &vector_ptr, 4));
  VMM86_TRY_ACCESS(c.push(c.cpu.eflags & 0xFFFF, 2));
  VMM86_TRY_ACCESS(c.push(c.cpu.sreg(SegReg::Cs).selector, 2));
  VMM86_TRY_ACCESS(c.push(c.cpu.eip & 0xFFFF, 2));
  c.cpu.eflags &= ~(flags::IF | flags::TF | flags::AC | flags::RF);
  c.load_real_sreg(SegReg::Cs, static_cast<uint16_t>(vector_ptr >> 16));
  c.cpu.eip = vector_ptr & 0xFFFF;
  return Exec::Ok;
}

}  // namespace

Exec Core::deliver_once(const Event& ev) {
  // The frame (or a task switch's TSS) gets EFLAGS: status flags the SDM left undefined
  // become visible in memory, as a pushf would make them.
  if (undefined_flags & flags::Status) ++undefined_results;
  hooks.event_delivering(GuestEvent{ev.vector, ev.kind == EventKind::SoftwareInt,
                                    ev.kind == EventKind::External || ev.kind == EventKind::Nmi, ev.has_error,
                                    ev.error});
  if (!cpu.protected_mode()) return deliver_real(*this, ev);

  const uint32_t ext = ev.kind == EventKind::SoftwareInt ? 0u : 1u;
  const uint32_t idt_error = ev.vector * 8u + 2u + ext;
  if (ev.vector * 8u + 7 > cpu.idtr.limit) return fail(vec::GP, idt_error);
  Descriptor gate;
  VMM86_TRY_ACCESS(read_sys(cpu.idtr.base + ev.vector * 8u, &gate, 8));
  if (!gate.is_system()) return fail(vec::GP, idt_error);
  switch (gate.type()) {
    case 0x5:
    case 0x6:
    case 0x7:
    case 0xE:
    case 0xF: break;
    default: return fail(vec::GP, idt_error);
  }
  const uint8_t old_cpl = cpl();
  const bool from_v86 = cpu.v86_mode();
  if (ev.kind == EventKind::SoftwareInt && gate.dpl() < old_cpl) return fail(vec::GP, idt_error);
  if (!gate.present()) return fail(vec::NP, idt_error);
  if (gate.type() == 0x5) return task_gate_event(gate, ev, ext);

  const uint16_t sel = gate.gate_selector();
  const uint32_t sel_error = (sel & 0xFFFCu) + ext;
  if ((sel & 0xFFFC) == 0) return fail(vec::GP, ext);
  Descriptor code;
  switch (read_descriptor(sel, &code)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return fail(vec::GP, sel_error);
    case DescRead::Fault: return Exec::Fault;
  }
  if (!code.is_code() || code.dpl() > old_cpl) return fail(vec::GP, sel_error);
  if (!code.present()) return fail(vec::NP, sel_error);
  const bool gate32 = (gate.type() & 8) != 0;
  const unsigned psize = gate32 ? 4 : 2;
  const uint32_t target = gate32 ? gate.gate_offset() : (gate.gate_offset() & 0xFFFF);
  if (target > code.limit()) return fail(vec::GP, ext);

  const uint8_t new_cpl = code.conforming() ? old_cpl : code.dpl();
  if (from_v86 && new_cpl != 0) return fail(vec::GP, sel_error);
  const uint32_t old_eflags = cpu.eflags;
  const uint16_t old_cs = cpu.sreg(SegReg::Cs).selector;
  const uint16_t old_ss = cpu.sreg(SegReg::Ss).selector;
  const uint32_t old_esp = cpu.reg(Gpr::Esp);
  // An unusable SS (a task switch failed to load it after its commit point) also takes
  // the TSS stack, as Bochs does: the handler gets a stack that works.
  const bool stack_switch = new_cpl < old_cpl || !cpu.sreg(SegReg::Ss).present();
  uint16_t new_ss = 0;

  if (stack_switch) {
    uint32_t new_esp = 0;
    SegmentCache ss_cache;
    VMM86_TRY_ACCESS(tss_stack(new_cpl, &new_ss, &new_esp, ext));
    VMM86_TRY_ACCESS(load_inner_ss(new_ss, new_cpl, ext, &ss_cache));
    cpu.sreg(SegReg::Ss) = ss_cache;
    cpu.reg(Gpr::Esp) = new_esp;
  }
  // CS first so the pushes below are supervisor accesses (the caller restores on failure).
  VMM86_TRY_ACCESS(set_accessed(sel, &code));
  cpu.sreg(SegReg::Cs) = make_cache(static_cast<uint16_t>((sel & 0xFFFC) | new_cpl), code);
  if (from_v86) cpu.eflags &= ~flags::VM;  // now a 32-bit protected-mode stack frame

  bool ok = true;
  if (stack_switch) {
    if (from_v86) {
      for (SegReg s : {SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es}) ok = ok && push(cpu.sreg(s).selector, psize);
    }
    ok = ok && push(old_ss, psize) && push(old_esp, psize);
  }
  ok = ok && push(old_eflags, psize) && push(old_cs, psize) && push(cpu.eip, psize);
  if (ok && ev.has_error) ok = push(ev.error, psize);
  if (!ok) {
    if (fault.vector == vec::SS) fault.error = (stack_switch ? (new_ss & 0xFFFCu) : 0u) | ext;
    return Exec::Fault;
  }
  if (from_v86) {
    for (SegReg s : {SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es}) cpu.sreg(s) = SegmentCache{0, 0, 0, 0};
  }
  cpu.eflags &= ~(flags::TF | flags::NT | flags::RF | flags::VM);
  if ((gate.type() & 1) == 0) cpu.eflags &= ~flags::IF;  // interrupt gate, not trap gate
  cpu.eip = target;
  return Exec::Ok;
}

Exec Core::software_interrupt(uint8_t vector) {
  cpu.eip = next_eip;  // the return address
  const Exec e = deliver_once(Event{vector, EventKind::SoftwareInt, false, 0});
  if (e != Exec::Ok) return e;  // the caller's snapshot restores EIP to the INT itself
  next_eip = cpu.eip;
  return Exec::Ok;
}

void Core::write_eflags(uint32_t value, unsigned size, bool is_iret) {
  uint32_t mask = flags::Status | flags::TF | flags::DF | flags::NT;
  if (size == 4) mask |= flags::AC | flags::ID | (is_iret ? flags::RF : 0u);
  if (cpl() <= cpu.iopl()) mask |= flags::IF;
  if (cpl() == 0) {
    mask |= flags::IOPL;
    if (is_iret && size == 4 && cpu.protected_mode()) mask |= flags::VIF | flags::VIP;
  }
  if (size == 2) mask &= 0xFFFF;
  cpu.eflags = (cpu.eflags & ~mask) | (value & mask) | flags::Reserved1;
  if (!is_iret) cpu.eflags &= ~flags::RF;
}

}  // namespace vmm86::interp
