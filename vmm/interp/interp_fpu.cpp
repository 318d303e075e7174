// x87/MMX/SSE/SSE2 instructions run on the host FPU loaded with the guest's FXSAVE image
// (CpuState::fxsave): a small stub saves the host FPU, restores the guest's, loads the
// guest GPRs and flags, executes the guest instruction (its memory operand rewritten to
// [r14], a bounce buffer the interpreter filled through guest paging), stores everything
// back and restores the host FPU. Availability (#NM/#UD), pending x87 errors (#MF),
// alignment (#GP) and unmasked SIMD exceptions (#XM) are decided here, never by a host trap.
#include <sys/mman.h>

#include <cstddef>
#include <cstring>

#include "vmm/interp/core.h"

namespace vmm86::interp {

struct FpuRunner {
  struct alignas(16) Context {
    uint8_t host_fx[512];
    uint8_t guest_fx[512];
    uint8_t buf[512];
    uint32_t gpr[8];
    uint64_t rflags;
  };
  Context ctx{};
  uint8_t* code = nullptr;

  ~FpuRunner() {
    if (code != nullptr) munmap(code, kPageSize);
  }
};

namespace {

void destroy_runner(FpuRunner* r) { delete r; }

// FXSAVE image offsets.
constexpr size_t kFswOffset = 2;
constexpr size_t kMxcsrOffset = 24;
constexpr size_t kMxcsrMaskOffset = 28;
constexpr uint32_t kDefaultMxcsrMask = 0xFFBF;  ///< what a 0 in MXCSR_MASK stands for
constexpr uint32_t kMxcsrMasks = 0x1F80;
constexpr uint32_t kMxcsrFlags = 0x3F;
constexpr uint32_t kMxcsrUnderflow = 1u << 4;  ///< UE (UM is this << 7)
constexpr uint16_t kFswErrorSummary = 0x80;

class Emitter {
 public:
  explicit Emitter(uint8_t* p) : p_(p) {}
  void b(std::initializer_list<uint8_t> bytes) {
    for (uint8_t x : bytes) *p_++ = x;
  }
  void d32(size_t v) {
    const uint32_t x = static_cast<uint32_t>(v);
    std::memcpy(p_, &x, 4);
    p_ += 4;
  }
  /// REX.B + opcode + ModRM(mod=10, reg, rm=r15) + disp32: [r15 + disp].
  void r15_disp(std::initializer_list<uint8_t> opcode, uint8_t reg, size_t disp) {
    b({0x41});
    b(opcode);
    b({static_cast<uint8_t>(0x87 | (reg << 3))});
    d32(disp);
  }

 private:
  uint8_t* p_;
};

constexpr uint8_t kLoadedGprs[] = {0, 1, 2, 3, 5, 6, 7};  // all but ESP: the host stack

bool is_no_wait(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_FNINIT:
    case ZYDIS_MNEMONIC_FNCLEX:
    case ZYDIS_MNEMONIC_FNSTCW:
    case ZYDIS_MNEMONIC_FNSTSW:
    case ZYDIS_MNEMONIC_FNSTENV:
    case ZYDIS_MNEMONIC_FNSAVE:
    case ZYDIS_MNEMONIC_FXSAVE:
    case ZYDIS_MNEMONIC_FXRSTOR:
    // DB E0/E1/E4 (FNENI, FNDISI, FNSETPM): 8087/287 leftovers that a P6 runs as no-wait
    // no-ops; the host CPU takes them with an error pending and does not raise #MF.
    case ZYDIS_MNEMONIC_FENI8087_NOP:
    case ZYDIS_MNEMONIC_FDISI8087_NOP:
    case ZYDIS_MNEMONIC_FSETPM287_NOP: return true;
    default: return false;
  }
}

bool is_env_format(ZydisMnemonic m) {
  return m == ZYDIS_MNEMONIC_FNSTENV || m == ZYDIS_MNEMONIC_FLDENV || m == ZYDIS_MNEMONIC_FNSAVE ||
         m == ZYDIS_MNEMONIC_FRSTOR;
}

bool allows_unaligned(ZydisMnemonic m) {
  return m == ZYDIS_MNEMONIC_MOVUPS || m == ZYDIS_MNEMONIC_MOVUPD || m == ZYDIS_MNEMONIC_MOVDQU;
}

enum class FpClass : uint8_t { X87, Mmx, Sse, Fxsr };

FpClass classify_fp(const Instruction& insn) {
  const ZydisMnemonic m = insn.mnemonic();
  if (m == ZYDIS_MNEMONIC_FXSAVE || m == ZYDIS_MNEMONIC_FXRSTOR) return FpClass::Fxsr;
  switch (insn.raw.meta.isa_ext) {
    case ZYDIS_ISA_EXT_X87: return FpClass::X87;
    case ZYDIS_ISA_EXT_MMX: return FpClass::Mmx;
    default: break;
  }
  // SSE instructions on MMX registers (pshufw, pmaxub mm, ...) behave like MMX for #MF.
  for (unsigned i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& o = insn.operands[i];
    if (o.type == ZYDIS_OPERAND_TYPE_REGISTER && o.reg.value >= ZYDIS_REGISTER_MM0 &&
        o.reg.value <= ZYDIS_REGISTER_MM7) {
      return FpClass::Mmx;
    }
  }
  if (insn.raw.meta.isa_set == ZYDIS_ISA_SET_X87 || insn.raw.meta.isa_set == ZYDIS_ISA_SET_FCMOV) return FpClass::X87;
  return FpClass::Sse;
}

uint16_t guest_fsw(const CpuState& cpu) {
  uint16_t v = 0;
  std::memcpy(&v, cpu.fxsave.data() + kFswOffset, 2);
  return v;
}

uint32_t read_mxcsr(const uint8_t* fx) {
  uint32_t v = 0;
  std::memcpy(&v, fx + kMxcsrOffset, 4);
  return v;
}

void write_mxcsr(uint8_t* fx, uint32_t v) { std::memcpy(fx + kMxcsrOffset, &v, 4); }

/// Where XMM register `r` sits in an FXSAVE image.
size_t xmm_offset(ZydisRegister r) { return 160 + 16u * static_cast<size_t>(r - ZYDIS_REGISTER_XMM0); }

/// MXCSR bits that ldmxcsr/fxrstor refuse with #GP: those clear in MXCSR_MASK. fxsave runs
/// on the host in both engines and reports the host's mask, and translated code loads
/// MXCSR natively, so the guest's mask is the host's (0 in the image means the default).
uint32_t mxcsr_reserved() {
  static const uint32_t reserved = [] {
    alignas(16) uint8_t image[512] = {};
    asm volatile("fxsave %0" : "=m"(image));
    uint32_t mask = 0;
    std::memcpy(&mask, image + kMxcsrMaskOffset, 4);
    return ~(mask != 0 ? mask : kDefaultMxcsrMask);
  }();
  return reserved;
}

/// Whether an SSE/SSE2 instruction left a denormal in a lane it computed (the XMM
/// destination of `image`): a tiny result. Instructions that cannot underflow, false.
bool computed_denormal(const Instruction& in, const uint8_t* image) {
  unsigned bits = 0, lanes = 0;
  switch (in.mnemonic()) {
    case ZYDIS_MNEMONIC_ADDPS:
    case ZYDIS_MNEMONIC_SUBPS:
    case ZYDIS_MNEMONIC_MULPS:
    case ZYDIS_MNEMONIC_DIVPS: bits = 32, lanes = 4; break;
    case ZYDIS_MNEMONIC_ADDPD:
    case ZYDIS_MNEMONIC_SUBPD:
    case ZYDIS_MNEMONIC_MULPD:
    case ZYDIS_MNEMONIC_DIVPD: bits = 64, lanes = 2; break;
    case ZYDIS_MNEMONIC_ADDSS:
    case ZYDIS_MNEMONIC_SUBSS:
    case ZYDIS_MNEMONIC_MULSS:
    case ZYDIS_MNEMONIC_DIVSS:
    case ZYDIS_MNEMONIC_CVTSD2SS: bits = 32, lanes = 1; break;
    case ZYDIS_MNEMONIC_ADDSD:
    case ZYDIS_MNEMONIC_SUBSD:
    case ZYDIS_MNEMONIC_MULSD:
    case ZYDIS_MNEMONIC_DIVSD: bits = 64, lanes = 1; break;
    case ZYDIS_MNEMONIC_CVTPD2PS: bits = 32, lanes = 2; break;
    default: return false;
  }
  const ZydisDecodedOperand& dst = in.operands[0];
  if (dst.type != ZYDIS_OPERAND_TYPE_REGISTER || dst.reg.value < ZYDIS_REGISTER_XMM0 ||
      dst.reg.value > ZYDIS_REGISTER_XMM7) {
    return false;
  }
  const uint8_t* reg = image + xmm_offset(dst.reg.value);
  for (unsigned i = 0; i < lanes; ++i) {
    if (bits == 32) {
      uint32_t v = 0;
      std::memcpy(&v, reg + 4 * i, 4);
      if ((v & 0x7F800000u) == 0 && (v & 0x007FFFFFu) != 0) return true;
    } else {
      uint64_t v = 0;
      std::memcpy(&v, reg + 8 * i, 8);
      if ((v & 0x7FF0000000000000ull) == 0 && (v & 0x000FFFFFFFFFFFFFull) != 0) return true;
    }
  }
  return false;
}

/// #NM/#UD/#MF before anything else, in the CPU's order.
bool check_available(Core& c, FpClass cls) {
  const uint32_t cr0v = c.cpu.cr0;
  const bool em = cr0v & cr0::EM, ts = cr0v & cr0::TS;
  switch (cls) {
    case FpClass::X87:
      if (em || ts) return c.raise(vec::NM);
      if (!is_no_wait(c.insn->mnemonic()) && (guest_fsw(c.cpu) & kFswErrorSummary)) return c.raise(vec::MF);
      return true;
    case FpClass::Mmx:
      if (em) return c.raise(vec::UD);
      if (ts) return c.raise(vec::NM);
      if (guest_fsw(c.cpu) & kFswErrorSummary) return c.raise(vec::MF);
      return true;
    case FpClass::Fxsr:
      if (em || ts) return c.raise(vec::NM);
      return true;
    case FpClass::Sse:
      if (em || (c.cpu.cr4 & cr4::OSFXSR) == 0) return c.raise(vec::UD);
      if (ts) return c.raise(vec::NM);
      return true;
  }
  return true;
}

FpuRunner* runner(Core& c) {
  if (!c.fpu) {
    auto* r = new FpuRunner;
    void* page = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r->code = page == MAP_FAILED ? nullptr : static_cast<uint8_t*>(page);
    c.fpu = std::unique_ptr<FpuRunner, void (*)(FpuRunner*)>(r, destroy_runner);
  }
  return c.fpu->code != nullptr ? c.fpu.get() : nullptr;
}

/// Writes the stub for the current instruction; `mem` tells whether it has a memory operand.
void emit_stub(Core& c, uint8_t* code, bool has_mem) {
  using Ctx = FpuRunner::Context;
  Emitter e(code);
  e.b({0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});  // push rbx rbp r12-r15
  e.b({0x49, 0x89, 0xFF});                                            // mov r15, rdi
  e.b({0x4C, 0x8D, 0xB7});                                            // lea r14, [rdi + buf]
  e.d32(offsetof(Ctx, buf));
  e.r15_disp({0x0F, 0xAE}, 0, offsetof(Ctx, host_fx));   // fxsave [host_fx]
  e.r15_disp({0x0F, 0xAE}, 1, offsetof(Ctx, guest_fx));  // fxrstor [guest_fx]
  for (uint8_t r : kLoadedGprs) e.r15_disp({0x8B}, r, offsetof(Ctx, gpr) + 4u * r);
  e.r15_disp({0xFF}, 6, offsetof(Ctx, rflags));  // push qword [rflags]
  e.b({0x9D});                                   // popfq

  // The guest instruction: mandatory/size prefixes kept, segment and 0x67 prefixes dropped.
  const Instruction& in = *c.insn;
  const ZydisMnemonic m = in.mnemonic();
  for (unsigned i = 0; i < in.raw.raw.prefix_count; ++i) {
    const uint8_t p = in.raw.raw.prefixes[i].value;
    if (p == 0xF2 || p == 0xF3 || (p == 0x66 && !is_env_format(m))) e.b({p});
  }
  // The 16/32-bit layout of fnstenv/fnsave/fldenv/frstor follows the guest operand size.
  if (is_env_format(m) && in.operand_size() == 16) e.b({0x66});
  const unsigned opcode_start = in.raw.raw.prefix_count;
  if (!has_mem) {
    for (unsigned i = opcode_start; i < in.length(); ++i) e.b({c.insn_bytes[i]});
  } else {
    e.b({0x41});  // REX.B: ModRM.rm = 110 names r14
    for (unsigned i = opcode_start; i < in.raw.raw.modrm.offset; ++i) e.b({c.insn_bytes[i]});
    e.b({static_cast<uint8_t>((in.raw.raw.modrm.reg & 7) << 3 | 6)});  // mod=00 rm=110: [r14]
    for (const auto& im : in.raw.raw.imm) {
      for (unsigned i = 0; i < im.size / 8u; ++i) e.b({c.insn_bytes[im.offset + i]});
    }
  }

  e.b({0x9C});                                   // pushfq
  e.r15_disp({0x8F}, 0, offsetof(Ctx, rflags));  // pop qword [rflags]
  for (uint8_t r : kLoadedGprs) e.r15_disp({0x89}, r, offsetof(Ctx, gpr) + 4u * r);
  e.r15_disp({0x0F, 0xAE}, 0, offsetof(Ctx, guest_fx));  // fxsave [guest_fx]
  e.r15_disp({0x0F, 0xAE}, 1, offsetof(Ctx, host_fx));   // fxrstor [host_fx]
  e.b({0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B, 0xC3});
}

const ZydisDecodedOperand* memory_operand(const Instruction& insn) {
  for (unsigned i = 0; i < insn.raw.operand_count; ++i) {
    if (insn.operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY) return &insn.operands[i];
  }
  return nullptr;
}

bool uses_esp(const Instruction& insn) {
  for (unsigned i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& o = insn.operands[i];
    if (o.type == ZYDIS_OPERAND_TYPE_REGISTER &&
        (o.reg.value == ZYDIS_REGISTER_ESP || o.reg.value == ZYDIS_REGISTER_SP)) {
      return true;
    }
  }
  return false;
}

/// What an MMX instruction does to the x87 state: TOP = 0, the ST slots of the FXSAVE
/// image turned so that ST(i) is physical register i, every tag valid.
void mmx_transition(CpuState& cpu) {
  uint16_t fsw = 0;
  std::memcpy(&fsw, cpu.fxsave.data() + kFswOffset, 2);
  const unsigned top = (fsw >> 11) & 7;
  if (top != 0) {
    uint8_t regs[128];
    std::memcpy(regs, cpu.fxsave.data() + 32, sizeof regs);
    for (unsigned i = 0; i < 8; ++i) std::memcpy(cpu.fxsave.data() + 32 + 16 * i, regs + 16 * ((i - top) & 7), 16);
    fsw = static_cast<uint16_t>(fsw & ~0x3800);
    std::memcpy(cpu.fxsave.data() + kFswOffset, &fsw, 2);
  }
  cpu.fxsave[4] = 0xFF;
}

/// maskmovq/maskmovdqu: the bytes of the source whose mask byte has its top bit set go to
/// the implicit DS:(E)DI operand. Done here, not in the host stub, which cannot point
/// (E)DI at its bounce buffer.
Exec maskmov(Core& c) {
  const Instruction& in = *c.insn;
  const ZydisDecodedOperand* mop = memory_operand(in);
  const bool xmm = in.mnemonic() == ZYDIS_MNEMONIC_MASKMOVDQU;
  if (mop == nullptr || in.operands[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
      in.operands[1].type != ZYDIS_OPERAND_TYPE_REGISTER) {
    c.detail = "maskmov without its operands";
    return Exec::Unimplemented;
  }
  const uint32_t size = xmm ? 16 : 8;
  // maskmovq switches to MMX state before its store can fault (measured on the host: a
  // faulting maskmovq leaves TOP = 0, a faulting movq load does not). MMn is then slot n.
  if (!xmm) mmx_transition(c.cpu);
  auto slot = [&](ZydisRegister r) -> size_t {
    return xmm ? xmm_offset(r) : 32 + 16u * static_cast<size_t>(r - ZYDIS_REGISTER_MM0);
  };
  const size_t src = slot(in.operands[0].reg.value);
  const size_t mask = slot(in.operands[1].reg.value);
  MemTarget target;
  VMM86_TRY_ACCESS(c.translate(c.mem_seg(*mop), c.effective_address(*mop), size, Access::ReadWrite, &target));
  uint8_t buf[16];
  c.read_target(target, buf);
  for (uint32_t i = 0; i < size; ++i) {
    if (c.cpu.fxsave[mask + i] & 0x80) buf[i] = c.cpu.fxsave[src + i];
  }
  c.write_target(target, buf);
  return Exec::Ok;
}

Exec fwait(Core& c) {
  if ((c.cpu.cr0 & cr0::MP) && (c.cpu.cr0 & cr0::TS)) return c.fail(vec::NM);
  if (guest_fsw(c.cpu) & kFswErrorSummary) return c.fail(vec::MF);
  return Exec::Ok;
}

/// fnstenv/fnsave/fxsave store the x87 last-instruction and last-operand pointers, which
/// after native execution hold host addresses (the code cache, the FPU stub, the bounce
/// buffer), and the last opcode, whose ModRM is the host's re-encoding of the operand
/// ([r14] here, [r11] in translated code). No host value may reach the guest: all are
/// stored as 0. For FOP that is the SDM's default (fopcode compatibility mode off: FOP is
/// defined only after an unmasked exception); for the pointers, see docs/design-notes.md.
void hide_host_pointers(const Instruction& in, uint8_t* image) {
  const ZydisMnemonic m = in.mnemonic();
  if (m == ZYDIS_MNEMONIC_FXSAVE) {
    std::memset(image + 6, 0, 18);  // FOP, FIP, FCS, FDP, FDS
  } else if (m == ZYDIS_MNEMONIC_FNSTENV || m == ZYDIS_MNEMONIC_FNSAVE) {
    if (in.operand_size() == 16) {
      std::memset(image + 6, 0, 8);  // FIP, FCS or FOP, FDP, FDS (14-byte environment)
    } else {
      std::memset(image + 12, 0, 16);  // FIP, FCS and FOP (or FIP's high bits and FOP), FDP, FDS
    }
  }
}

}  // namespace

Exec h_fpu(Core& c) {
  const Instruction& in = *c.insn;
  if (in.mnemonic() == ZYDIS_MNEMONIC_FWAIT) return fwait(c);
  const FpClass cls = classify_fp(in);
  VMM86_TRY_ACCESS(check_available(c, cls));
  if (in.mnemonic() == ZYDIS_MNEMONIC_MASKMOVQ || in.mnemonic() == ZYDIS_MNEMONIC_MASKMOVDQU) return maskmov(c);
  if (uses_esp(in)) {
    c.detail = std::string("FP instruction with an ESP operand: ") + ZydisMnemonicGetString(in.mnemonic());
    return Exec::Unimplemented;
  }

  // Translate (and check) the memory operand before anything runs.
  const ZydisDecodedOperand* mop = memory_operand(in);
  if (mop != nullptr && mop->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN) {
    c.detail = std::string("FP instruction with an implicit memory operand: ") + ZydisMnemonicGetString(in.mnemonic());
    return Exec::Unimplemented;
  }
  MemTarget target;
  const bool reads = mop != nullptr && (mop->actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
  const bool writes = mop != nullptr && (mop->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
  uint32_t size = 0;
  if (mop != nullptr) {
    size = mop->size / 8u;
    if (size == 0 || size > 512) {
      c.detail = std::string("FP memory operand of unexpected size: ") + ZydisMnemonicGetString(in.mnemonic());
      return Exec::Unimplemented;
    }
    const uint32_t ea = c.effective_address(*mop);
    const bool needs_16 = in.mnemonic() == ZYDIS_MNEMONIC_FXSAVE || in.mnemonic() == ZYDIS_MNEMONIC_FXRSTOR ||
                          (cls == FpClass::Sse && size == 16 && !allows_unaligned(in.mnemonic()));
    if (needs_16 && ((c.cpu.sreg(c.mem_seg(*mop)).base + ea) & 15) != 0) return c.fail(vec::GP, 0);
    const Access a = reads && writes ? Access::ReadWrite : writes ? Access::Write : Access::Read;
    VMM86_TRY_ACCESS(c.translate(c.mem_seg(*mop), ea, size, a, &target));
  }
  if (in.mnemonic() == ZYDIS_MNEMONIC_LDMXCSR || in.mnemonic() == ZYDIS_MNEMONIC_FXRSTOR) {
    uint8_t image[512];
    c.read_target(target, image);
    uint32_t value = 0;
    std::memcpy(&value, in.mnemonic() == ZYDIS_MNEMONIC_LDMXCSR ? image : image + kMxcsrOffset, 4);
    if (value & mxcsr_reserved()) return c.fail(vec::GP, 0);
  }

  FpuRunner* r = runner(c);
  if (r == nullptr) {
    c.detail = "no executable memory for the host-FPU stub";
    return Exec::Unsupported;
  }
  FpuRunner::Context& ctx = r->ctx;
  std::memcpy(ctx.guest_fx, c.cpu.fxsave.data(), sizeof(ctx.guest_fx));
  std::memcpy(ctx.gpr, c.cpu.gpr.data(), sizeof(ctx.gpr));
  ctx.rflags = (c.cpu.eflags & flags::Status) | flags::Reserved1 | flags::IF;
  // A store the host does not make (an unmasked x87 overflow, underflow or invalid
  // operation leaves the destination alone) must write back what was there, so the bounce
  // buffer starts with the destination's bytes even for write-only operands.
  if (reads || writes) c.read_target(target, ctx.buf);

  // Unmasked SIMD exceptions must not trap on the host: run masked, then decide.
  const uint32_t mxcsr = read_mxcsr(ctx.guest_fx);
  // ldmxcsr/stmxcsr/fxsave/fxrstor raise no SIMD exception and must see MXCSR as it is
  // (masked, fxsave would store the masks and fxrstor's loaded MXCSR would be undone).
  const bool mxcsr_access = in.mnemonic() == ZYDIS_MNEMONIC_LDMXCSR || in.mnemonic() == ZYDIS_MNEMONIC_STMXCSR ||
                            cls == FpClass::Fxsr;
  // The conversions between MMX and XMM registers (cvtps2pi, cvtpi2ps, ...) count as MMX
  // for #MF but raise SIMD exceptions too.
  const bool simd_isa = in.raw.meta.isa_ext == ZYDIS_ISA_EXT_SSE || in.raw.meta.isa_ext == ZYDIS_ISA_EXT_SSE2;
  const bool simd_unmasked = (cls == FpClass::Sse || simd_isa) && !mxcsr_access && (mxcsr & kMxcsrMasks) != kMxcsrMasks;
  if (simd_unmasked) write_mxcsr(ctx.guest_fx, (mxcsr | kMxcsrMasks) & ~kMxcsrFlags);

  emit_stub(c, r->code, mop != nullptr);
  reinterpret_cast<void (*)(FpuRunner::Context*)>(r->code)(&ctx);

  if (simd_unmasked) {
    uint32_t raised = read_mxcsr(ctx.guest_fx) & kMxcsrFlags;
    const uint32_t unmasked = ~(mxcsr >> 7) & kMxcsrFlags;
    // Unmasked, underflow is signalled for every tiny result, exact ones too; the masked run
    // flags only tiny and inexact ones (SDM vol. 1, 11.5.2.4).
    if ((unmasked & kMxcsrUnderflow) && !(raised & kMxcsrUnderflow) && computed_denormal(in, ctx.guest_fx)) {
      raised |= kMxcsrUnderflow;
    }
    if (raised & unmasked) {
      // The faulting instruction writes no destination; only MXCSR records the exceptions.
      // An MMX<->XMM conversion has switched the x87 unit to MMX state by then (measured on
      // the host: TOP = 0, every tag valid after the #XM).
      write_mxcsr(c.cpu.fxsave.data(), mxcsr | raised);
      if (cls == FpClass::Mmx) mmx_transition(c.cpu);
      return c.fail((c.cpu.cr4 & cr4::OSXMMEXCPT) ? vec::XM : vec::UD);
    }
    write_mxcsr(ctx.guest_fx, mxcsr | raised);
  }

  std::memcpy(c.cpu.fxsave.data(), ctx.guest_fx, sizeof(ctx.guest_fx));
  for (uint8_t g : kLoadedGprs) c.cpu.gpr[g] = ctx.gpr[g];
  c.set_status_flags(static_cast<uint32_t>(ctx.rflags));
  if (writes) hide_host_pointers(in, ctx.buf);
  if (writes) c.write_target(target, ctx.buf);
  return Exec::Ok;
}

}  // namespace vmm86::interp
