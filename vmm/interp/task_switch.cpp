// Hardware task switches (SDM Vol. 3 §7.3): jmp/call far to a TSS descriptor or a task
// gate, exceptions and interrupts through a task gate of the IDT, iret with EFLAGS.NT.
// 32-bit and 16-bit TSSs. Checks before the commit point fault in the old task with
// nothing changed (the TSS pages are checked before the first write); checks after it
// (LDT, segment registers, EIP) fault in the new task, whose state is already loaded.
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

/// Where the dynamic fields of a TSS lie. The segment selectors are stored in SegReg
/// order (ES CS SS DS FS GS), `sreg_stride` apart.
struct TssLayout {
  uint32_t min_limit;  ///< the smallest limit a switch accepts (SDM Table 7-1)
  uint32_t save_end;   ///< last byte the processor writes when it leaves the task
  uint32_t width;      ///< of EIP, EFLAGS and the GPRs
  uint32_t eip, eflags, gpr, sreg, sreg_stride;
  unsigned sregs;  ///< 6 (32-bit), 4 (16-bit: no FS, GS)
  uint32_t ldt;
};
constexpr TssLayout kTss32{0x67, 0x5F, 4, 0x20, 0x24, 0x28, 0x48, 4, 6, 0x60};
constexpr TssLayout kTss16{0x2B, 0x29, 2, 0x0E, 0x10, 0x12, 0x22, 2, 4, 0x2A};
constexpr uint32_t kTss32Cr3 = 0x1C;
constexpr uint32_t kTss32Trap = 0x64;
constexpr uint32_t kBusy = 1u << 9;  ///< descriptor bit 41: type 1/9 -> 3/B

const TssLayout& layout_of(uint8_t type) { return (type & 8) != 0 ? kTss32 : kTss16; }

/// The state a task switch loads.
struct TaskImage {
  uint32_t eip = 0, eflags = 0, cr3 = 0;
  std::array<uint32_t, kNumGprs> gpr{};
  std::array<uint16_t, kNumSegRegs> sel{};
  uint16_t ldt = 0;
  bool trap = false;
};

bool read_field(Core& c, uint32_t linear, uint32_t width, uint32_t* v) {
  *v = 0;
  return c.read_sys(linear, v, width);
}

bool read_image(Core& c, uint32_t base, bool tss32, TaskImage* img) {
  const TssLayout& l = tss32 ? kTss32 : kTss16;
  uint32_t v = 0;
  if (!read_field(c, base + l.eip, l.width, &img->eip) || !read_field(c, base + l.eflags, l.width, &img->eflags)) {
    return false;
  }
  for (int i = 0; i < kNumGprs; ++i) {
    if (!read_field(c, base + l.gpr + static_cast<uint32_t>(i) * l.width, l.width, &v)) return false;
    // A 16-bit TSS holds the low halves; the high halves read as ones, as on the 386 and
    // in QEMU and Bochs (the SDM leaves them undefined).
    img->gpr[static_cast<size_t>(i)] = tss32 ? v : (0xFFFF0000u | v);
  }
  for (unsigned i = 0; i < l.sregs; ++i) {
    if (!read_field(c, base + l.sreg + i * l.sreg_stride, 2, &v)) return false;
    img->sel[i] = static_cast<uint16_t>(v);
  }
  if (!read_field(c, base + l.ldt, 2, &v)) return false;
  img->ldt = static_cast<uint16_t>(v);
  if (tss32) {
    if (!read_field(c, base + kTss32Cr3, 4, &img->cr3) || !read_field(c, base + kTss32Trap, 2, &v)) return false;
    img->trap = (v & 1) != 0;
  }
  return true;
}

bool save_state(Core& c, const TssLayout& l, uint32_t eip, uint32_t eflags) {
  const uint32_t base = c.cpu.tr.base;
  bool ok = c.write_sys(base + l.eip, &eip, l.width) && c.write_sys(base + l.eflags, &eflags, l.width);
  for (int i = 0; ok && i < kNumGprs; ++i) {
    ok = c.write_sys(base + l.gpr + static_cast<uint32_t>(i) * l.width, &c.cpu.gpr[static_cast<size_t>(i)], l.width);
  }
  for (unsigned i = 0; ok && i < l.sregs; ++i) {
    ok = c.write_sys(base + l.sreg + i * l.sreg_stride, &c.cpu.seg[i].selector, 2);
  }
  return ok;
}

/// The new task's TSS named by a task gate or a direct jmp/call must be an available TSS
/// in the GDT (SDM JMP/CALL/INT pseudocode): #GP(selector), #NP(selector) when absent.
Exec read_available_tss(Core& c, uint16_t sel, uint32_t ext, Descriptor* d) {
  const uint32_t err = (sel & 0xFFFCu) | ext;
  if (sel & 4) return c.fail(vec::GP, err);
  switch (c.read_descriptor(sel, d)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return c.fail(vec::GP, err);
    case DescRead::Fault: return Exec::Fault;
  }
  if (!d->is_system() || (d->type() != 0x1 && d->type() != 0x9)) return c.fail(vec::GP, err);
  if (!d->present()) return c.fail(vec::NP, err);
  return Exec::Ok;
}

/// Reads a descriptor after the commit point: outside its table is #TS(selector).
Exec read_new_task_descriptor(Core& c, uint16_t sel, uint32_t ext, Descriptor* d) {
  switch (c.read_descriptor(sel, d)) {
    case DescRead::Ok: return Exec::Ok;
    case DescRead::OutOfLimit: return c.fail(vec::TS, (sel & 0xFFFCu) | ext);
    case DescRead::Fault: return Exec::Fault;
  }
  return Exec::Fault;
}

Exec load_task_ldt(Core& c, uint16_t sel, uint32_t ext) {
  const uint32_t err = (sel & 0xFFFCu) | ext;
  if (sel & 4) return c.fail(vec::TS, err);
  if ((sel & 0xFFFC) == 0) return Exec::Ok;  // a null LDT is allowed
  Descriptor d;
  VMM86_PROPAGATE(read_new_task_descriptor(c, sel, ext, &d));
  if (!d.is_system() || d.type() != 0x2 || !d.present()) return c.fail(vec::TS, err);
  c.cpu.ldtr = Core::make_cache(sel, d);
  return Exec::Ok;
}

Exec load_task_ss(Core& c, uint16_t sel, uint8_t cpl, uint32_t ext) {
  const uint32_t err = (sel & 0xFFFCu) | ext;
  if ((sel & 0xFFFC) == 0) return c.fail(vec::TS, err);
  Descriptor d;
  VMM86_PROPAGATE(read_new_task_descriptor(c, sel, ext, &d));
  if (!d.writable_data()) return c.fail(vec::TS, err);
  if (!d.present()) return c.fail(vec::SS, err);
  if (d.dpl() != cpl || d.dpl() != (sel & 3)) return c.fail(vec::TS, err);
  VMM86_TRY_ACCESS(c.set_accessed(sel, &d));
  c.cpu.sreg(SegReg::Ss) = Core::make_cache(sel, d);
  return Exec::Ok;
}

Exec load_task_data_segment(Core& c, SegReg s, uint16_t sel, uint8_t cpl, uint32_t ext) {
  if ((sel & 0xFFFC) == 0) return Exec::Ok;  // stays null (unusable)
  const uint32_t err = (sel & 0xFFFCu) | ext;
  Descriptor d;
  VMM86_PROPAGATE(read_new_task_descriptor(c, sel, ext, &d));
  if (d.is_system() || !d.readable()) return c.fail(vec::TS, err);
  if (!d.conforming() && (d.dpl() < cpl || d.dpl() < (sel & 3))) return c.fail(vec::TS, err);
  if (!d.present()) return c.fail(vec::NP, err);
  VMM86_TRY_ACCESS(c.set_accessed(sel, &d));
  c.cpu.sreg(s) = Core::make_cache(sel, d);
  return Exec::Ok;
}

/// CS of the new task: its RPL is the new CPL. A conforming segment may have a DPL below
/// the RPL (kvm-unit-tests' taskswitch2 checks this on hardware).
Exec load_task_cs(Core& c, uint16_t sel, uint32_t ext) {
  const uint32_t err = (sel & 0xFFFCu) | ext;
  if ((sel & 0xFFFC) == 0) return c.fail(vec::TS, err);
  Descriptor d;
  VMM86_PROPAGATE(read_new_task_descriptor(c, sel, ext, &d));
  if (!d.is_code()) return c.fail(vec::TS, err);
  if (d.conforming() ? d.dpl() > (sel & 3) : d.dpl() != (sel & 3)) return c.fail(vec::TS, err);
  if (!d.present()) return c.fail(vec::NP, err);
  VMM86_TRY_ACCESS(c.set_accessed(sel, &d));
  c.cpu.sreg(SegReg::Cs) = Core::make_cache(sel, d);
  return Exec::Ok;
}

/// The segment registers of the new task, in Bochs' order (LDT, SS, data, CS), which its
/// authors checked against the 386, 486 and Pentium; the SDM leaves the order open.
Exec load_task_segments(Core& c, const TaskImage& img, uint32_t ext) {
  VMM86_PROPAGATE(load_task_ldt(c, img.ldt, ext));
  if (c.cpu.v86_mode()) {
    for (int i = 0; i < kNumSegRegs; ++i) c.load_real_sreg(static_cast<SegReg>(i), img.sel[static_cast<size_t>(i)]);
    return Exec::Ok;
  }
  const uint8_t cpl = img.sel[static_cast<size_t>(SegReg::Cs)] & 3;
  VMM86_PROPAGATE(load_task_ss(c, img.sel[static_cast<size_t>(SegReg::Ss)], cpl, ext));
  for (SegReg s : {SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs}) {
    VMM86_PROPAGATE(load_task_data_segment(c, s, img.sel[static_cast<size_t>(s)], cpl, ext));
  }
  return load_task_cs(c, img.sel[static_cast<size_t>(SegReg::Cs)], ext);
}

}  // namespace

Exec Core::switch_task(const TaskSwitch& ts) {
  const bool tss32 = (ts.tss.type() & 8) != 0;
  const TssLayout& nl = layout_of(ts.tss.type());
  const TssLayout& ol = layout_of(cpu.tr.type());
  const uint32_t new_base = ts.tss.base();
  const bool nesting = ts.source == TaskSource::Call || ts.source == TaskSource::Event;
  if (ts.tss.limit() < nl.min_limit) return fail(vec::TS, (ts.selector & 0xFFFCu) | ts.ext);
  if (cpu.tr.limit < ol.save_end) return fail(vec::TS, (cpu.tr.selector & 0xFFFCu) | ts.ext);

  // Nothing may change before the commit point: page faults on either TSS come first.
  MemTarget probe;
  VMM86_TRY_ACCESS(
      translate_linear(new_base, nl.min_limit + 1, nesting ? Access::ReadWrite : Access::Read, false, &probe));
  VMM86_TRY_ACCESS(translate_linear(cpu.tr.base + ol.eip, ol.save_end + 1 - ol.eip, Access::Write, false, &probe));
  TaskImage img;
  VMM86_TRY_ACCESS(read_image(*this, new_base, tss32, &img));

  // Busy bits, NT and the link as SDM Vol. 3 Table 7-2 has them.
  if (ts.source == TaskSource::Jmp || ts.source == TaskSource::Iret) {
    Descriptor old_tss;
    if (read_descriptor(cpu.tr.selector, &old_tss) == DescRead::Ok) {
      VMM86_TRY_ACCESS(write_descriptor_hi(cpu.tr.selector, old_tss.hi & ~kBusy));
    }
  }
  uint32_t old_eflags = cpu.eflags;
  if (ts.source == TaskSource::Iret) old_eflags &= ~flags::NT;
  VMM86_TRY_ACCESS(save_state(*this, ol, ts.return_eip, old_eflags));
  if (nesting) VMM86_TRY_ACCESS(write_sys(new_base, &cpu.tr.selector, 2));
  Descriptor busy = ts.tss;
  busy.hi |= kBusy;
  if (ts.source != TaskSource::Iret) VMM86_TRY_ACCESS(write_descriptor_hi(ts.selector, busy.hi));

  // Commit: the new task's state is loaded whatever the checks below find.
  task_committed = true;
  task_switched = true;
  cpu.tr = make_cache(ts.selector, busy);
  cpu.cr0 |= cr0::TS;
  cpu.dr[7] &= ~0x155u;  // L0-L3 and LE are per task
  uint32_t eflags = img.eflags & (tss32 ? flags::Writable : 0xFFFFu);
  if (nesting) eflags |= flags::NT;
  cpu.eflags = eflags | flags::Reserved1;
  cpu.gpr = img.gpr;
  cpu.eip = img.eip;
  next_eip = img.eip;
  cpu.pending.interrupt_shadow = 0;
  cpu.pending.stack_load_shadow = false;
  // Selectors first, caches unusable until checked (a fault below leaves them so).
  for (int i = 0; i < kNumSegRegs; ++i)
    cpu.seg[static_cast<size_t>(i)] = SegmentCache{img.sel[static_cast<size_t>(i)], 0, 0, 0};
  cpu.ldtr = SegmentCache{img.ldt, 0, 0, 0};
  // A 32-bit TSS switches address spaces as a mov to CR3 does (QEMU and Bochs load CR3
  // only with paging on); CR0.TS changed in any case.
  // With PAE, CR3 names a 32-byte aligned PDPT and the PDPTEs are loaded as by a MOV to CR3
  // (SDM Vol. 3 §4.4.1): a present one with a reserved bit is #GP(0) in the new task.
  const bool pae = (cpu.cr4 & cr4::PAE) != 0;
  bool bad_pdptes = false;
  if (tss32 && cpu.paging()) {
    cpu.cr3 = pae ? img.cr3 : img.cr3 & 0xFFFFF018u;
    bad_pdptes = pae && !load_pdptes(mem, cpu.cr3, cpu.a20_mask, &cpu.pdpte);
  }
  flush_tlb();
  hooks.paging_written();
  if (bad_pdptes) return fail(vec::GP, 0);
  task_trap = img.trap;

  VMM86_PROPAGATE(load_task_segments(*this, img, ts.ext));
  if (ts.push_error) {
    if (!push(ts.error, nl.width)) {
      if (fault.vector == vec::SS) fault.error = ts.ext;
      return Exec::Fault;
    }
  }
  if (cpu.eip > cpu.sreg(SegReg::Cs).limit) return fail(vec::GP, ts.ext);
  return Exec::Ok;
}

Exec Core::task_transfer(uint16_t sel, const Descriptor& d, TaskSource source) {
  const uint32_t err = sel & 0xFFFCu;
  if (d.dpl() < cpl() || d.dpl() < (sel & 3)) return fail(vec::GP, err);
  TaskSwitch ts{sel, d, source, 0, next_eip};
  if (d.type() == 0x5) {
    if (!d.present()) return fail(vec::NP, err);
    ts.selector = d.gate_selector();
    VMM86_PROPAGATE(read_available_tss(*this, ts.selector, 0, &ts.tss));
  } else {
    if (sel & 4) return fail(vec::GP, err);  // TSS descriptors live in the GDT (SDM Vol. 3 §7.2.2)
    if (!d.present()) return fail(vec::NP, err);
  }
  return switch_task(ts);
}

Exec Core::task_return() {
  uint32_t link = 0;
  VMM86_TRY_ACCESS(read_sys(cpu.tr.base, &link, 2));
  const uint16_t sel = static_cast<uint16_t>(link);
  const uint32_t err = sel & 0xFFFCu;
  // SDM Vol. 3 Table 6-6: the back link must name a busy TSS in the GDT, else #TS.
  if (sel & 4) return fail(vec::TS, err);
  Descriptor d;
  switch (read_descriptor(sel, &d)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return fail(vec::TS, err);
    case DescRead::Fault: return Exec::Fault;
  }
  if (!d.is_system() || (d.type() != 0x3 && d.type() != 0xB)) return fail(vec::TS, err);
  if (!d.present()) return fail(vec::NP, err);
  return switch_task(TaskSwitch{sel, d, TaskSource::Iret, 0, next_eip});
}

Exec Core::task_gate_event(const Descriptor& gate, const Event& ev, uint32_t ext) {
  TaskSwitch ts{gate.gate_selector(), {}, TaskSource::Event, ext, cpu.eip, ev.has_error, ev.error};
  VMM86_PROPAGATE(read_available_tss(*this, ts.selector, ext, &ts.tss));
  return switch_task(ts);
}

}  // namespace vmm86::interp
