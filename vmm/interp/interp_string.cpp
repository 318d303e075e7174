// String instructions (movs/cmps/stos/lods/scas/ins/outs) with rep/repe/repne in 16- and
// 32-bit addressing, and port I/O with the IOPL / TSS I/O-bitmap check.
#include "vmm/interp/alu.h"
#include "vmm/interp/core.h"

namespace vmm86::interp {

bool Core::io_allowed(uint16_t port, unsigned size) {
  if (!cpu.protected_mode()) return true;
  if (!cpu.v86_mode() && cpl() <= cpu.iopl()) return true;
  // Only a 32-bit TSS has an I/O permission bitmap.
  if ((cpu.tr.type() & 0x8) == 0 || cpu.tr.limit < 0x67) return raise(vec::GP, 0);
  uint32_t io_base = 0;
  if (!read_sys(cpu.tr.base + 0x66, &io_base, 2)) return false;
  const uint32_t byte = io_base + port / 8u;
  if (byte + 1 > cpu.tr.limit) return raise(vec::GP, 0);
  uint32_t bits = 0;
  if (!read_sys(cpu.tr.base + byte, &bits, 2)) return false;
  if ((bits >> (port & 7)) & ((1u << size) - 1)) return raise(vec::GP, 0);
  return true;
}

namespace {

/// A string instruction as this file runs it: its form (decoder/classify.h) and element size.
struct StrInfo {
  StringKind kind;
  unsigned size;  ///< bytes per element
};

/// Iterations of a repeated string instruction per step. A real CPU takes interrupts
/// between iterations (EIP stays on the instruction, ECX/ESI/EDI say where it is); so does
/// this interpreter, by ending the step there: a `rep stosb` with ECX near 4G must not keep
/// the vCPU loop (timers, Ctrl-A x, SIGTERM) waiting for a minute. About 20 µs of work.
constexpr uint32_t kIterationsPerStep = 4096;

ZydisRegister accumulator(unsigned size) {
  return size == 1 ? ZYDIS_REGISTER_AL : size == 2 ? ZYDIS_REGISTER_AX : ZYDIS_REGISTER_EAX;
}

/// One iteration; index registers are advanced by the caller only when it succeeds.
bool iterate(Core& c, StrInfo s, SegReg src_seg, uint32_t si, uint32_t di) {
  const uint16_t port = static_cast<uint16_t>(c.cpu.reg(Gpr::Edx));
  uint32_t a = 0, b = 0;
  switch (s.kind) {
    case StringKind::Movs: {
      MemTarget dst;
      if (!c.read_mem(src_seg, si, s.size, &a) || !c.translate(SegReg::Es, di, s.size, Access::Write, &dst)) {
        return false;
      }
      c.write_target(dst, &a);
      return true;
    }
    case StringKind::Cmps:
    case StringKind::Scas: {
      if (s.kind == StringKind::Cmps) {
        if (!c.read_mem(src_seg, si, s.size, &a)) return false;
      } else {
        a = c.get_reg(accumulator(s.size));
      }
      if (!c.read_mem(SegReg::Es, di, s.size, &b)) return false;
      c.set_status_flags(alu::binary(alu::BinOp::Cmp, s.size, a, b, c.cpu.eflags).eflags);
      return true;
    }
    case StringKind::Stos: return c.write_mem(SegReg::Es, di, s.size, c.get_reg(accumulator(s.size)));
    case StringKind::Lods:
      if (!c.read_mem(src_seg, si, s.size, &a)) return false;
      c.set_reg(accumulator(s.size), a);
      return true;
    case StringKind::Ins: {
      // The destination is checked before the port is read: IN has side effects.
      MemTarget dst;
      if (!c.translate(SegReg::Es, di, s.size, Access::Write, &dst)) return false;
      a = c.hooks.port_in(port, s.size);
      c.write_target(dst, &a);
      return true;
    }
    case StringKind::Outs:
      if (!c.read_mem(src_seg, si, s.size, &a)) return false;
      c.hooks.port_out(port, s.size, a);
      return true;
  }
  return false;
}

}  // namespace

Exec h_string(Core& c) {
  // h_string runs only instructions whose row routes here: string operations.
  const std::optional<StringForm> form = string_form(c.insn->mnemonic(), c.insn->classes);
  const StrInfo s{form->kind, c.insn->operand_size() / 8u};
  if (s.kind == StringKind::Ins || s.kind == StringKind::Outs) {
    VMM86_TRY_ACCESS(c.io_allowed(static_cast<uint16_t>(c.cpu.reg(Gpr::Edx)), s.size));
  }
  const auto attrs = c.insn->raw.attributes;
  const bool repe = (attrs & ZYDIS_ATTRIB_HAS_REPE) != 0;
  const bool repne = (attrs & ZYDIS_ATTRIB_HAS_REPNE) != 0;
  const bool rep = repe || repne || (attrs & ZYDIS_ATTRIB_HAS_REP) != 0;
  const bool compares = s.kind == StringKind::Cmps || s.kind == StringKind::Scas;
  const bool a16 = c.insn->address_size() == 16;
  const ZydisRegister si_reg = a16 ? ZYDIS_REGISTER_SI : ZYDIS_REGISTER_ESI;
  const ZydisRegister di_reg = a16 ? ZYDIS_REGISTER_DI : ZYDIS_REGISTER_EDI;
  const ZydisRegister cx_reg = a16 ? ZYDIS_REGISTER_CX : ZYDIS_REGISTER_ECX;
  const uint32_t mask = c.addr_mask();
  const uint32_t delta = (c.cpu.eflags & flags::DF) ? 0u - s.size : s.size;
  const bool uses_si = form->reads_esi;
  const bool uses_di = form->uses_edi;
  const SegReg src_seg = c.override_or_ds();

  // Completed iterations stay architecturally visible if a later one faults.
  c.keep_progress_on_fault = true;
  // With TF set the instruction completes in one step, so the single-step trap comes once,
  // after it, as it always has here.
  const bool may_pause = rep && (c.cpu.eflags & flags::TF) == 0;
  for (uint32_t done = 0;; ++done) {
    if (rep && c.get_reg(cx_reg) == 0) break;
    if (may_pause && done == kIterationsPerStep) {
      // Paused between iterations: the instruction has not retired and runs on next step.
      c.next_eip = c.insn_eip;
      --c.retired;  // finish() counts Exec::Ok as a retirement
      return Exec::Ok;
    }
    const uint32_t si = c.get_reg(si_reg), di = c.get_reg(di_reg);
    VMM86_TRY_ACCESS(iterate(c, s, src_seg, si, di));
    if (uses_si) c.set_reg(si_reg, (si + delta) & mask);
    if (uses_di) c.set_reg(di_reg, (di + delta) & mask);
    if (!rep) break;
    c.set_reg(cx_reg, (c.get_reg(cx_reg) - 1) & mask);
    if (compares) {
      const bool zf = (c.cpu.eflags & flags::ZF) != 0;
      if ((repe && !zf) || (repne && zf)) break;
    }
  }
  return Exec::Ok;
}

Exec h_in(Core& c) {
  uint32_t port = 0;
  VMM86_TRY_ACCESS(c.read_op(1, &port));
  const unsigned size = c.op_bytes(0);
  VMM86_TRY_ACCESS(c.io_allowed(static_cast<uint16_t>(port), size));
  c.set_reg(c.op(0).reg.value, c.hooks.port_in(static_cast<uint16_t>(port), size));
  return Exec::Ok;
}

Exec h_out(Core& c) {
  uint32_t port = 0;
  VMM86_TRY_ACCESS(c.read_op(0, &port));
  const unsigned size = c.op_bytes(1);
  VMM86_TRY_ACCESS(c.io_allowed(static_cast<uint16_t>(port), size));
  c.hooks.port_out(static_cast<uint16_t>(port), size, c.get_reg(c.op(1).reg.value));
  return Exec::Ok;
}

}  // namespace vmm86::interp
