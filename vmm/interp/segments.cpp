// Descriptor tables and segment-register loads with the protected-mode checks
// (SDM Vol. 3 §5), plus the instructions that inspect descriptors: lar, lsl, verr,
// verw, arpl, and mov/lds-style loads.
#include "vmm/interp/core.h"

namespace vmm86::interp {

DescRead Core::read_descriptor(uint16_t sel, Descriptor* d) {
  uint32_t base = cpu.gdtr.base;
  uint32_t limit = cpu.gdtr.limit;
  if (sel & 4) {
    if (!cpu.ldtr.present() || (cpu.ldtr.selector & 0xFFFC) == 0) return DescRead::OutOfLimit;
    base = cpu.ldtr.base;
    limit = cpu.ldtr.limit;
  }
  const uint32_t index = sel & 0xFFF8u;
  if (index + 7 > limit) return DescRead::OutOfLimit;
  uint32_t raw[2];
  if (!read_sys(base + index, raw, 8)) return DescRead::Fault;
  d->lo = raw[0];
  d->hi = raw[1];
  return DescRead::Ok;
}

bool Core::write_descriptor_hi(uint16_t sel, uint32_t hi) {
  const uint32_t base = (sel & 4) ? cpu.ldtr.base : cpu.gdtr.base;
  return write_sys(base + (sel & 0xFFF8u) + 4, &hi, 4);
}

bool Core::set_accessed(uint16_t sel, Descriptor* d) {
  if (d->is_system() || (d->hi & (1u << 8)) != 0) return true;
  d->hi |= 1u << 8;
  return write_descriptor_hi(sel, d->hi);
}

SegmentCache Core::make_cache(uint16_t sel, const Descriptor& d) {
  return SegmentCache{sel, d.base(), d.limit(), d.attr()};
}

void Core::load_real_sreg(SegReg s, uint16_t sel) {
  SegmentCache& sc = cpu.sreg(s);
  sc.selector = sel;
  sc.base = uint32_t{sel} << 4;
  if (cpu.v86_mode()) {
    sc.limit = 0xFFFF;
    sc.attr = s == SegReg::Cs ? 0x00FB : 0x00F3;  // DPL 3, present, accessed
  }
  // Real mode keeps the cached limit and attributes ("unreal" mode relies on it).
}

bool Core::load_sreg(SegReg s, uint16_t sel) {
  if (!pmode()) {
    load_real_sreg(s, sel);
    return true;
  }
  const uint16_t index = sel & 0xFFFC;
  if ((sel & 0xFFFC) == 0) {
    if (s == SegReg::Ss) return raise(vec::GP, 0);
    cpu.sreg(s) = SegmentCache{sel, 0, 0, 0};  // null: unusable until reloaded
    return true;
  }
  Descriptor d;
  switch (read_descriptor(sel, &d)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return raise(vec::GP, index);
    case DescRead::Fault: return false;
  }
  const uint8_t rpl = sel & 3;
  if (s == SegReg::Ss) {
    if (rpl != cpl() || !d.writable_data() || d.dpl() != cpl()) return raise(vec::GP, index);
    if (!d.present()) return raise(vec::SS, index);
  } else {
    if (!d.readable() || d.is_system()) return raise(vec::GP, index);
    if (!d.conforming() && (rpl > d.dpl() || cpl() > d.dpl())) return raise(vec::GP, index);
    if (!d.present()) return raise(vec::NP, index);
  }
  if (!set_accessed(sel, &d)) return false;
  cpu.sreg(s) = make_cache(sel, d);
  return true;
}

void Core::null_inaccessible_segments() {
  for (SegReg s : {SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs}) {
    SegmentCache& sc = cpu.sreg(s);
    const bool conforming_code = sc.is_code() && (sc.type() & 4) != 0;
    if (sc.present() && !conforming_code && sc.dpl() < cpl()) sc = SegmentCache{0, 0, 0, 0};
  }
}

// ---- handlers ----

Exec h_mov_sreg(Core& c) {
  // mov Sreg, r/m16 (the store direction is plain h_mov).
  uint32_t sel = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &sel));
  const SegReg s = Core::seg_of(c.op(0).reg.value);
  if (s == SegReg::Cs) return c.fail(vec::UD);
  VMM86_TRY_ACCESS(c.load_sreg(s, static_cast<uint16_t>(sel)));
  if (s == SegReg::Ss) c.begin_stack_load_shadow();
  return Exec::Ok;
}

Exec h_load_far_pointer(Core& c) {
  // lds/les/lfs/lgs/lss reg, m16:16|m16:32 (offset first, selector after it).
  const ZydisDecodedOperand& m = c.op(1);
  if (m.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  const unsigned off_size = c.insn->operand_size() / 8u;
  const SegReg ms = c.mem_seg(m);
  const uint32_t ea = c.effective_address(m);
  uint32_t offset = 0, sel = 0;
  VMM86_TRY_ACCESS(c.read_mem(ms, ea, off_size, &offset));
  VMM86_TRY_ACCESS(c.read_mem(ms, (ea + off_size) & c.addr_mask(), 2, &sel));
  const SegReg target = Core::seg_of(c.op(2).reg.value);
  VMM86_TRY_ACCESS(c.load_sreg(target, static_cast<uint16_t>(sel)));
  c.set_reg(c.op(0).reg.value, offset);
  return Exec::Ok;
}

namespace {

/// Whether lar/lsl/verr/verw may see the descriptor (no fault, only ZF).
bool visible(const Core& c, uint16_t sel, const Descriptor& d) {
  if (d.conforming()) return true;
  return d.dpl() >= c.cpl() && d.dpl() >= (sel & 3);
}

enum class Probe : uint8_t { Ok, Invisible, Fault };

Probe probe(Core& c, uint16_t sel, Descriptor* d) {
  if ((sel & 0xFFFC) == 0) return Probe::Invisible;
  switch (c.read_descriptor(sel, d)) {
    case DescRead::Ok: return Probe::Ok;
    case DescRead::OutOfLimit: return Probe::Invisible;
    case DescRead::Fault: return Probe::Fault;
  }
  return Probe::Fault;
}

void set_zf(Core& c, bool z) { c.cpu.eflags = z ? (c.cpu.eflags | flags::ZF) : (c.cpu.eflags & ~flags::ZF); }

}  // namespace

Exec h_lar_lsl(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  uint32_t sel = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &sel));
  Descriptor d;
  const Probe p = probe(c, static_cast<uint16_t>(sel), &d);
  if (p == Probe::Fault) return Exec::Fault;
  const bool lar = c.insn->mnemonic() == ZYDIS_MNEMONIC_LAR;
  bool ok = p == Probe::Ok && visible(c, static_cast<uint16_t>(sel), d);
  if (ok && d.is_system()) {
    // LSL has no gates; LAR also accepts call/task gates.
    constexpr uint16_t kLarTypes = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 9) | (1u << 0xB) |
                                   (1u << 0xC);
    constexpr uint16_t kLslTypes = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 9) | (1u << 0xB);
    ok = (((lar ? kLarTypes : kLslTypes) >> d.type()) & 1) != 0;
  }
  set_zf(c, ok);
  if (!ok) return Exec::Ok;
  const uint32_t v = lar ? (d.hi & 0x00F0FF00u) : d.limit();
  return c.write_op(0, c.insn->operand_size() == 16 ? (v & 0xFFFF) : v) ? Exec::Ok : Exec::Fault;
}

Exec h_verr_verw(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  uint32_t sel = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &sel));
  Descriptor d;
  const Probe p = probe(c, static_cast<uint16_t>(sel), &d);
  if (p == Probe::Fault) return Exec::Fault;
  bool ok = p == Probe::Ok && !d.is_system() && visible(c, static_cast<uint16_t>(sel), d);
  if (ok) ok = c.insn->mnemonic() == ZYDIS_MNEMONIC_VERR ? d.readable() : d.writable_data();
  set_zf(c, ok);
  return Exec::Ok;
}

Exec h_arpl(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  OpRef dst;
  VMM86_TRY_ACCESS(c.resolve(0, Access::ReadWrite, &dst));
  const uint32_t d = c.load(dst);
  const uint32_t s = c.get_reg(c.op(1).reg.value);
  if ((d & 3) < (s & 3)) {
    c.store(dst, (d & ~3u) | (s & 3));
    set_zf(c, true);
  } else {
    set_zf(c, false);
  }
  return Exec::Ok;
}

}  // namespace vmm86::interp
