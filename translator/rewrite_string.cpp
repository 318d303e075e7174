// String instructions (movs, stos, lods, cmps, scas, with or without rep) over flat
// segments. In 64-bit mode ES:EDI takes no segment override, so gs:[addr32] cannot reach
// the window; instead the host's own string instruction runs on host pointers
// (window_base + ESI/EDI, 64-bit addressing) and they become guest values again after it.
// The host does the element loop, DF, the rep/repe/repne termination and the flags
// exactly as the guest would, and its fast-string microcode makes large copies cheap.
//
// A fault inside the host instruction leaves RSI/RDI/RCX at the faulting element. A fill
// retries it; any other fault is turned back into guest ESI/EDI by the fault handler
// (Block::host_pointer_sites), so the interpreter continues the instruction precisely.
// Guest addresses that wrap at 4 GiB run into the window's guard regions instead: they
// fault, and the interpreter does the wrap.
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// The source (DS:ESI, overridable) must be flat too, and readable (a cs: override).
bool flat_source(const BlockBuilder& b, const Instruction& insn) {
  static constexpr ZydisRegister kBySegmentNumber[] = {ZYDIS_REGISTER_ES, ZYDIS_REGISTER_CS, ZYDIS_REGISTER_SS,
                                                       ZYDIS_REGISTER_DS, ZYDIS_REGISTER_FS, ZYDIS_REGISTER_GS};
  const std::optional<uint8_t> seg = insn.segment_override();
  return flat_segment_usable(b, seg ? kBySegmentNumber[*seg] : ZYDIS_REGISTER_DS, false);
}

/// Guest pointer register -> host pointer: reg = window_base (r8) + zero-extended reg32.
void to_host_pointer(x86::Assembler& a, const x86::Gp& reg64) {
  a.mov(reg64.r32(), reg64.r32());  // the upper half must be zero for the add
  a.lea(reg64, x86::ptr(reg64, x86::r8));
}

}  // namespace

RewriteStatus rewrite_string(BlockBuilder& b, const Instruction& insn) {
  const std::optional<StringForm> form = string_form(insn.mnemonic(), insn.classes);
  // ins/outs are port I/O: the monitor's (their row routes them to the interpreter).
  if (!form || form->kind == StringKind::Ins || form->kind == StringKind::Outs) return RewriteStatus::NotHandled;
  if (!(b.mode & tmode::FlatData) || insn.address_size() != 32 || insn.has_lock() || !flat_source(b, insn)) {
    return RewriteStatus::NotHandled;
  }
  const unsigned size = insn.operand_size();
  if (size != 8 && size != 16 && size != 32) return RewriteStatus::NotHandled;

  uint8_t bytes[3];
  size_t n = 0;
  switch (insn.rep_prefix()) {
    case RepPrefix::None: break;
    case RepPrefix::Rep:
    case RepPrefix::RepE: bytes[n++] = 0xF3; break;
    case RepPrefix::RepNE: bytes[n++] = 0xF2; break;
  }
  if (size == 16) bytes[n++] = 0x66;
  bytes[n++] = static_cast<uint8_t>(form->opcode + (size == 8 ? 0 : 1));
  const uint8_t regs = static_cast<uint8_t>((form->reads_esi ? host_ptr::Rsi : 0) |
                                            (form->uses_edi ? host_ptr::Rdi : 0));

  auto& a = b.a;
  a.mov(x86::r8, context_field(offsetof(ExecContext, window_base), 8));
  if (regs & host_ptr::Rsi) to_host_pointer(a, x86::rsi);
  if (regs & host_ptr::Rdi) to_host_pointer(a, x86::rdi);
  if (insn.rep_prefix() != RepPrefix::None) a.mov(x86::ecx, x86::ecx);  // rep counts with RCX
  b.host_pointer_sites.push_back({static_cast<uint32_t>(a.offset()), regs});
  a.embed(bytes, n);
  // Back to guest values: reg - window_base, as lea of reg + ~window_base + 1 (flag-free).
  a.not_(x86::r8);
  if (regs & host_ptr::Rsi) a.lea(x86::esi, x86::ptr(x86::rsi, x86::r8, 0, 1));
  if (regs & host_ptr::Rdi) a.lea(x86::edi, x86::ptr(x86::rdi, x86::r8, 0, 1));
  return RewriteStatus::Emitted;
}

}  // namespace vmm86
