// System instructions: cli/sti/hlt, descriptor-table registers, lldt/ltr, control and
// debug registers, invlpg, cache control, cpuid/rdtsc/rdmsr/wrmsr/rdpmc, sysenter/sysexit.
#include "vmm/interp/core.h"

namespace vmm86::interp {

namespace {

/// CPL-0-only instructions raise #GP(0) elsewhere (incl. virtual-8086 mode).
bool privileged(Core& c) {
  if (c.cpu.protected_mode() && c.cpl() != 0) return c.raise(vec::GP, 0);
  return true;
}

bool iopl_sensitive(Core& c) {
  if (c.cpu.protected_mode() && c.cpl() > c.cpu.iopl()) return c.raise(vec::GP, 0);
  return true;
}

constexpr uint32_t kCr4Known = cr4::VME | cr4::PVI | cr4::TSD | cr4::DE | cr4::PSE | cr4::PAE | cr4::MCE | cr4::PGE |
                               cr4::PCE | cr4::OSFXSR | cr4::OSXMMEXCPT;
constexpr uint16_t kFlatCode = 0xC09B;  // G, D, present, code exec/read, accessed
constexpr uint16_t kFlatData = 0xC093;  // G, B, present, data read/write, accessed

}  // namespace

Exec h_cli(Core& c) {
  VMM86_TRY_ACCESS(iopl_sensitive(c));
  c.cpu.eflags &= ~flags::IF;
  return Exec::Ok;
}

Exec h_sti(Core& c) {
  VMM86_TRY_ACCESS(iopl_sensitive(c));
  if ((c.cpu.eflags & flags::IF) == 0) {
    c.cpu.eflags |= flags::IF;
    c.cpu.pending.interrupt_shadow = 1;  // interrupts wait one more instruction
  }
  return Exec::Ok;
}

Exec h_hlt(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  return Exec::Halt;
}

Exec h_load_dtr(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const ZydisDecodedOperand& m = c.op(0);
  if (m.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  const uint32_t ea = c.effective_address(m);
  uint32_t limit = 0, base = 0;
  VMM86_TRY_ACCESS(c.read_mem(c.mem_seg(m), ea, 2, &limit));
  VMM86_TRY_ACCESS(c.read_mem(c.mem_seg(m), (ea + 2) & c.addr_mask(), 4, &base));
  if (c.insn->operand_size() == 16) base &= 0x00FFFFFF;
  DescriptorTableReg& r = c.insn->mnemonic() == ZYDIS_MNEMONIC_LGDT ? c.cpu.gdtr : c.cpu.idtr;
  r = DescriptorTableReg{base, static_cast<uint16_t>(limit)};
  return Exec::Ok;
}

Exec h_store_dtr(Core& c) {
  const ZydisDecodedOperand& m = c.op(0);
  if (m.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  const DescriptorTableReg& r = c.insn->mnemonic() == ZYDIS_MNEMONIC_SGDT ? c.cpu.gdtr : c.cpu.idtr;
  const uint32_t ea = c.effective_address(m);
  MemTarget t;
  VMM86_TRY_ACCESS(c.translate(c.mem_seg(m), ea, 6, Access::Write, &t));
  uint8_t bytes[6] = {static_cast<uint8_t>(r.limit),      static_cast<uint8_t>(r.limit >> 8),
                      static_cast<uint8_t>(r.base),       static_cast<uint8_t>(r.base >> 8),
                      static_cast<uint8_t>(r.base >> 16), static_cast<uint8_t>(r.base >> 24)};
  c.write_target(t, bytes);
  return Exec::Ok;
}

namespace {

/// lldt/ltr: reads a GDT system descriptor of one of the `types` (bit mask).
Exec load_system_selector(Core& c, uint16_t sel, uint32_t types, Descriptor* d) {
  const uint16_t index = sel & 0xFFFC;
  if (sel & 4) return c.fail(vec::GP, index);
  switch (c.read_descriptor(sel, d)) {
    case DescRead::Ok: break;
    case DescRead::OutOfLimit: return c.fail(vec::GP, index);
    case DescRead::Fault: return Exec::Fault;
  }
  if (!d->is_system() || ((types >> d->type()) & 1) == 0) return c.fail(vec::GP, index);
  if (!d->present()) return c.fail(vec::NP, index);
  return Exec::Ok;
}

}  // namespace

Exec h_lldt(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  VMM86_TRY_ACCESS(privileged(c));
  uint32_t sel = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &sel));
  if ((sel & 0xFFFC) == 0) {
    c.cpu.ldtr = SegmentCache{static_cast<uint16_t>(sel), 0, 0, 0};
    return Exec::Ok;
  }
  Descriptor d;
  VMM86_PROPAGATE(load_system_selector(c, static_cast<uint16_t>(sel), 1u << 2, &d));
  c.cpu.ldtr = Core::make_cache(static_cast<uint16_t>(sel), d);
  return Exec::Ok;
}

Exec h_ltr(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  VMM86_TRY_ACCESS(privileged(c));
  uint32_t sel = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &sel));
  if ((sel & 0xFFFC) == 0) return c.fail(vec::GP, 0);
  Descriptor d;
  VMM86_PROPAGATE(load_system_selector(c, static_cast<uint16_t>(sel), (1u << 1) | (1u << 9), &d));
  d.hi |= 1u << 9;  // busy
  VMM86_TRY_ACCESS(c.write_descriptor_hi(static_cast<uint16_t>(sel), d.hi));
  c.cpu.tr = Core::make_cache(static_cast<uint16_t>(sel), d);
  return Exec::Ok;
}

Exec h_sldt_str(Core& c) {
  if (!c.pmode()) return c.fail(vec::UD);
  const SegmentCache& r = c.insn->mnemonic() == ZYDIS_MNEMONIC_SLDT ? c.cpu.ldtr : c.cpu.tr;
  return c.write_op(0, r.selector) ? Exec::Ok : Exec::Fault;
}

Exec h_smsw(Core& c) { return c.write_op(0, c.cpu.cr0) ? Exec::Ok : Exec::Fault; }

Exec h_lmsw(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  uint32_t v = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &v));
  // LMSW can set PE but never clear it.
  c.cpu.cr0 = (c.cpu.cr0 & ~(cr0::MP | cr0::EM | cr0::TS)) | (v & (cr0::PE | cr0::MP | cr0::EM | cr0::TS));
  c.flush_tlb();
  c.hooks.paging_written();
  return Exec::Ok;
}

Exec h_clts(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  c.cpu.cr0 &= ~cr0::TS;
  return Exec::Ok;
}

Exec h_mov_cr(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const bool to_cr = c.op(0).reg.value >= ZYDIS_REGISTER_CR0 && c.op(0).reg.value <= ZYDIS_REGISTER_CR15;
  const ZydisRegister cr = to_cr ? c.op(0).reg.value : c.op(1).reg.value;
  const ZydisRegister gpr = to_cr ? c.op(1).reg.value : c.op(0).reg.value;
  const int n = cr - ZYDIS_REGISTER_CR0;
  if (!to_cr) {
    uint32_t v = 0;
    switch (n) {
      case 0: v = c.cpu.cr0; break;
      case 2: v = c.cpu.cr2; break;
      case 3: v = c.cpu.cr3; break;
      case 4: v = c.cpu.cr4; break;
      default: return c.fail(vec::UD);
    }
    c.set_reg(gpr, v);
    return Exec::Ok;
  }
  const uint32_t v = c.get_reg(gpr);
  uint32_t new_cr0 = c.cpu.cr0, new_cr3 = c.cpu.cr3, new_cr4 = c.cpu.cr4;
  bool load_pdptes_now = false;  // SDM Vol. 3 §4.4.1: which writes (re)load the PDPTEs
  switch (n) {
    case 0:
      new_cr0 = v | cr0::ET;  // hard-wired on P6
      if ((new_cr0 & cr0::PG) && !(new_cr0 & cr0::PE)) return c.fail(vec::GP, 0);
      if ((new_cr0 & cr0::NW) && !(new_cr0 & cr0::CD)) return c.fail(vec::GP, 0);
      load_pdptes_now = ((new_cr0 ^ c.cpu.cr0) & (cr0::PG | cr0::CD | cr0::NW)) != 0;
      break;
    case 2: c.cpu.cr2 = v; return Exec::Ok;
    case 3:
      // Kept as written (as QEMU keeps it): with PAE, bits 31:5 name the PDPT.
      new_cr3 = v;
      load_pdptes_now = true;
      break;
    case 4:
      if (v & ~kCr4Known) return c.fail(vec::GP, 0);
      new_cr4 = v;
      load_pdptes_now = ((new_cr4 ^ c.cpu.cr4) & (cr4::PAE | cr4::PGE | cr4::PSE)) != 0;
      break;
    default: return c.fail(vec::UD);
  }
  if (load_pdptes_now && (new_cr0 & cr0::PG) && (new_cr4 & cr4::PAE) &&
      !load_pdptes(c.mem, new_cr3, c.cpu.a20_mask, &c.cpu.pdpte)) {
    return c.fail(vec::GP, 0);  // a present PDPTE with a reserved bit: nothing changes
  }
  c.cpu.cr0 = new_cr0;
  c.cpu.cr3 = new_cr3;
  c.cpu.cr4 = new_cr4;
  c.flush_tlb();
  c.hooks.paging_written();
  return Exec::Ok;
}

Exec h_mov_dr(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const bool to_dr = c.op(0).reg.value >= ZYDIS_REGISTER_DR0 && c.op(0).reg.value <= ZYDIS_REGISTER_DR15;
  const ZydisRegister dr = to_dr ? c.op(0).reg.value : c.op(1).reg.value;
  const ZydisRegister gpr = to_dr ? c.op(1).reg.value : c.op(0).reg.value;
  int n = dr - ZYDIS_REGISTER_DR0;
  if (n > 7) return c.fail(vec::UD);
  if (n == 4 || n == 5) {
    if (c.cpu.cr4 & cr4::DE) return c.fail(vec::UD);
    n += 2;  // aliases of DR6/DR7
  }
  uint32_t& reg = c.cpu.dr[static_cast<size_t>(n)];
  if (!to_dr) {
    c.set_reg(gpr, reg);
    return Exec::Ok;
  }
  const uint32_t v = c.get_reg(gpr);
  if (n == 6) {
    reg = (v & 0x0000E00Fu) | 0xFFFF0FF0u;
  } else if (n == 7) {
    reg = (v & 0xFFFF2BFFu) | 0x400u;
  } else {
    reg = v;
  }
  return Exec::Ok;
}

Exec h_invlpg(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const ZydisDecodedOperand& m = c.op(0);
  if (m.type != ZYDIS_OPERAND_TYPE_MEMORY) return c.fail(vec::UD);
  const uint32_t linear = c.cpu.sreg(c.mem_seg(m)).base + c.effective_address(m);
  c.invalidate_page(linear);
  c.hooks.page_invalidated(GuestLinear{linear});
  return Exec::Ok;
}

Exec h_cache(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  return Exec::Ok;  // no caches to write back: guest RAM is coherent host memory
}

Exec h_cpuid(Core& c) {
  const CpuidResult r = c.hooks.cpuid(c.cpu.reg(Gpr::Eax), c.cpu.reg(Gpr::Ecx));
  c.cpu.reg(Gpr::Eax) = r.eax;
  c.cpu.reg(Gpr::Ebx) = r.ebx;
  c.cpu.reg(Gpr::Ecx) = r.ecx;
  c.cpu.reg(Gpr::Edx) = r.edx;
  return Exec::Ok;
}

namespace {

void set_edx_eax(Core& c, uint64_t v) {
  c.cpu.reg(Gpr::Eax) = static_cast<uint32_t>(v);
  c.cpu.reg(Gpr::Edx) = static_cast<uint32_t>(v >> 32);
}

uint64_t tsc(Core& c) { return c.hooks.tsc_clock() + c.cpu.msr.tsc_offset; }

/// The MSRs kept in CpuState::msr; nullptr for others.
uint64_t* kept_msr(Msrs& m, uint32_t index) {
  if (index >= 0x200 && index <= 0x20F) return &m.mtrr_var[index - 0x200];
  if (index >= 0x268 && index <= 0x26F) return &m.mtrr_fixed[3 + index - 0x268];
  switch (index) {
    case 0x1B: return &m.apic_base;
    case 0x8B: return &m.bios_sign_id;
    case 0x17A: return &m.mcg_status;
    case 0x1A0: return &m.misc_enable;
    case 0x250: return &m.mtrr_fixed[0];
    case 0x258: return &m.mtrr_fixed[1];
    case 0x259: return &m.mtrr_fixed[2];
    case 0x277: return &m.pat;
    case 0x2FF: return &m.mtrr_def_type;
    default: return nullptr;
  }
}

uint32_t* sysenter_msr(Msrs& m, uint32_t index) {
  switch (index) {
    case 0x174: return &m.sysenter_cs;
    case 0x175: return &m.sysenter_esp;
    case 0x176: return &m.sysenter_eip;
    default: return nullptr;
  }
}

bool valid_mtrr_type(uint64_t t) { return t == 0 || t == 1 || (t >= 4 && t <= 6); }

/// Each byte of a fixed-range MTRR or of the PAT holds a memory type.
bool valid_type_bytes(uint64_t v, bool pat) {
  for (int i = 0; i < 8; ++i) {
    const uint64_t t = (v >> (8 * i)) & 0xFF;
    if (!(valid_mtrr_type(t) || (pat && t == 7))) return false;
  }
  return true;
}

/// WRMSR raises #GP(0) for a value that sets reserved bits or names an undefined memory
/// type (SDM Vol. 2 WRMSR; Vol. 3 §11.11.2.2-3 MTRRs, §11.12.2 PAT). Physical addresses
/// are 36 bits wide on the P6.
bool valid_msr_value(uint32_t index, uint64_t v) {
  constexpr uint64_t kAbovePhys = ~((uint64_t{1} << 36) - 1);
  if (index >= 0x200 && index <= 0x20F) {
    if ((index & 1) == 0) return (v & (kAbovePhys | 0xF00)) == 0 && valid_mtrr_type(v & 0xFF);  // PHYSBASEn
    return (v & (kAbovePhys | 0x7FF)) == 0;                                                     // PHYSMASKn
  }
  if ((index >= 0x268 && index <= 0x26F) || index == 0x250 || index == 0x258 || index == 0x259) {
    return valid_type_bytes(v, false);
  }
  switch (index) {
    case 0x277: return valid_type_bytes(v, true);
    case 0x2FF: return (v & ~uint64_t{0xCFF}) == 0 && valid_mtrr_type(v & 0xFF);  // type, FE, E
    default: return true;
  }
}

}  // namespace

Exec h_rdtsc(Core& c) {
  if ((c.cpu.cr4 & cr4::TSD) && c.cpu.protected_mode() && c.cpl() != 0) return c.fail(vec::GP, 0);
  set_edx_eax(c, tsc(c));
  return Exec::Ok;
}

Exec h_rdmsr(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const uint32_t index = c.cpu.reg(Gpr::Ecx);
  uint64_t v = 0;
  if (index == 0x10) {
    v = tsc(c);
  } else if (uint64_t* kept = kept_msr(c.cpu.msr, index)) {
    v = *kept;
  } else if (uint32_t* se = sysenter_msr(c.cpu.msr, index)) {
    v = *se;
  } else if (!c.hooks.rdmsr(index, &v)) {
    return c.fail(vec::GP, 0);
  }
  set_edx_eax(c, v);
  return Exec::Ok;
}

Exec h_wrmsr(Core& c) {
  VMM86_TRY_ACCESS(privileged(c));
  const uint32_t index = c.cpu.reg(Gpr::Ecx);
  const uint64_t v = (uint64_t{c.cpu.reg(Gpr::Edx)} << 32) | c.cpu.reg(Gpr::Eax);
  if (!valid_msr_value(index, v)) return c.fail(vec::GP, 0);
  if (index == 0x10) {
    c.cpu.msr.tsc_offset = v - c.hooks.tsc_clock();
  } else if (uint64_t* kept = kept_msr(c.cpu.msr, index)) {
    *kept = v;
  } else if (uint32_t* se = sysenter_msr(c.cpu.msr, index)) {
    *se = static_cast<uint32_t>(v);
  } else if (!c.hooks.wrmsr(index, v)) {
    return c.fail(vec::GP, 0);
  }
  return Exec::Ok;
}

Exec h_rdpmc(Core& c) {
  if (!(c.cpu.cr4 & cr4::PCE) && c.cpu.protected_mode() && c.cpl() != 0) return c.fail(vec::GP, 0);
  if (c.cpu.reg(Gpr::Ecx) > 1) return c.fail(vec::GP, 0);
  set_edx_eax(c, 0);  // no performance counters are modelled
  return Exec::Ok;
}

Exec h_sysenter(Core& c) {
  const uint32_t cs = c.cpu.msr.sysenter_cs & 0xFFFC;
  if (!c.cpu.protected_mode() || cs == 0) return c.fail(vec::GP, 0);
  c.cpu.eflags &= ~(flags::VM | flags::IF | flags::RF);
  c.cpu.sreg(SegReg::Cs) = SegmentCache{static_cast<uint16_t>(cs), 0, 0xFFFFFFFFu, kFlatCode};
  c.cpu.sreg(SegReg::Ss) = SegmentCache{static_cast<uint16_t>(cs + 8), 0, 0xFFFFFFFFu, kFlatData};
  c.cpu.reg(Gpr::Esp) = c.cpu.msr.sysenter_esp;
  c.next_eip = c.cpu.msr.sysenter_eip;
  return Exec::Ok;
}

Exec h_sysexit(Core& c) {
  const uint32_t cs = c.cpu.msr.sysenter_cs & 0xFFFC;
  if (!c.pmode() || c.cpl() != 0 || cs == 0) return c.fail(vec::GP, 0);
  constexpr uint16_t kDpl3 = 3u << 5;
  c.cpu.sreg(SegReg::Cs) = SegmentCache{static_cast<uint16_t>((cs + 16) | 3), 0, 0xFFFFFFFFu, kFlatCode | kDpl3};
  c.cpu.sreg(SegReg::Ss) = SegmentCache{static_cast<uint16_t>((cs + 24) | 3), 0, 0xFFFFFFFFu, kFlatData | kDpl3};
  c.cpu.reg(Gpr::Esp) = c.cpu.reg(Gpr::Ecx);
  c.next_eip = c.cpu.reg(Gpr::Edx);
  return Exec::Ok;
}

}  // namespace vmm86::interp
