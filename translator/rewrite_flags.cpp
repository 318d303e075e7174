// Virtual IF (DESIGN.md §4): cli, sti, pushf and popf run inline without ever touching the
// host's IF. While translated code runs, the guest's status flags and DF are host RFLAGS,
// IF is ExecContext::virtual_if and the rest of EFLAGS is ExecContext::system_flags.
//
// Interrupts are only recognized outside translated code, so enabling them is where care
// is needed: when IF goes from 0 to 1 and the machine has a request waiting
// (CpuState::pending.external_interrupt), translated code leaves so the dispatcher can
// deliver it — after the next instruction for sti (its interrupt shadow), at once for popf.
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// Bits popf loads into host RFLAGS.
constexpr uint32_t kPopfHostFlags = flags::Status | flags::DF;
/// Bits a 32-bit popf at CPL 0 loads into system_flags (Core::write_eflags's mask without
/// the status flags, DF and IF); RF is cleared, VM, VIF and VIP stay.
constexpr uint32_t kPopfSystemFlags = flags::TF | flags::IOPL | flags::NT | flags::AC | flags::ID;
constexpr unsigned kIfBit = 9;
static_assert(flags::IF == 1u << kIfBit);

x86::Mem virtual_if() { return context_field(offsetof(ExecContext, virtual_if), 4); }
x86::Mem system_flags() { return context_field(offsetof(ExecContext, system_flags), 4); }
x86::Mem external_interrupt() { return context_field(static_cast<size_t>(kExternalInterruptOffset), 1); }
x86::Mem cpu_field(size_t offset, uint32_t size) { return context_field(offsetof(ExecContext, cpu) + offset, size); }

void emit_cli(BlockBuilder& b) { b.a.mov(virtual_if(), 0); }

/// sti: IF = 1. If IF was 0 and a request waits, the next instruction must still run
/// before the interrupt (the shadow): leave to the interpreter at it with the shadow set.
/// Otherwise nothing can become deliverable before the block's next exit, because only
/// the machine changes the request line and it does not run meanwhile.
void emit_sti(BlockBuilder& b) {
  auto& a = b.a;
  Label shadow = a.newLabel(), done = a.newLabel();
  a.mov(x86::r8, x86::rcx);
  a.mov(x86::r13d, virtual_if());
  a.movzx(x86::ecx, external_interrupt());
  a.not_(x86::ecx);  // -pending - 1; not, lea and jrcxz leave the guest's flags alone
  a.lea(x86::ecx, x86::ptr(x86::rcx, x86::r13, 0, 2));  // virtual_if + 1 - pending
  a.mov(virtual_if(), flags::IF);
  a.jecxz(x86::rcx, shadow);  // zero exactly when IF was 0 and a request waits
  a.mov(x86::rcx, x86::r8);
  a.short_().jmp(done);
  a.bind(shadow);
  a.mov(x86::rcx, x86::r8);
  a.mov(cpu_field(offsetof(CpuState, pending) + offsetof(PendingEvents, interrupt_shadow), 1), 1);
  b.jump_to_exit(ExitKind::Interpret, b.next_eip);
  a.bind(done);
}

/// pushf: in translated code host RFLAGS are exactly the guest's status flags and DF plus
/// bit 1 and IF (the trampolines and popf mask what they load; user mode always runs with
/// IF set). The image is that with the host's IF replaced by the virtual one, plus the
/// system flags: disjoint fields, so lea adds them without touching RFLAGS. VM and RF are
/// not in system_flags: pushf shows them as 0.
void emit_pushf(BlockBuilder& b) {
  auto& a = b.a;
  a.pushfq();
  a.pop(x86::r13);
  a.mov(x86::r9d, virtual_if());
  a.lea(x86::r13d, x86::ptr(x86::r13, x86::r9, 0, -static_cast<int32_t>(flags::IF)));
  a.mov(x86::r9d, system_flags());
  a.lea(x86::r13d, x86::ptr(x86::r13, x86::r9));
  a.mov(guest_dword(x86::r12d, -4), x86::r13d);  // may fault: nothing is committed yet
  a.lea(x86::r12d, x86::ptr(x86::r12d, -4));
}

/// popf at CPL 0: pop first (it may fault), then split the value into host RFLAGS,
/// virtual_if and system_flags. Everything between may clobber RFLAGS: popf replaces them.
/// Leaves translated code right after when the guest turned on TF (the interpreter
/// single-steps) or turned on IF with a request waiting. (With IF already on, a waiting
/// request was delivered before translated code was entered, or made it leave.)
void emit_popf(BlockBuilder& b) {
  auto& a = b.a;
  Label leave = a.newLabel(), done = a.newLabel();
  a.mov(x86::r13d, guest_dword(x86::r12d));
  a.lea(x86::r12d, x86::ptr(x86::r12d, 4));
  a.mov(x86::r9d, x86::r13d);
  a.and_(x86::r9d, kPopfSystemFlags);
  a.mov(x86::r10d, system_flags());
  a.and_(x86::r10d, ~kPopfSystemFlags);
  a.or_(x86::r10d, x86::r9d);
  a.mov(system_flags(), x86::r10d);
  a.and_(cpu_field(offsetof(CpuState, eflags), 4), ~flags::RF);
  a.mov(x86::r9d, x86::r13d);
  a.and_(x86::r9d, flags::IF);
  a.mov(x86::r10d, virtual_if());
  a.not_(x86::r10d);
  a.and_(x86::r10d, x86::r9d);  // IF turned on
  a.mov(virtual_if(), x86::r9d);
  a.movzx(x86::r9d, external_interrupt());
  a.shl(x86::r9d, kIfBit);
  a.and_(x86::r10d, x86::r9d);  // ... with a request waiting
  a.mov(x86::r9d, x86::r13d);
  a.and_(x86::r9d, flags::TF);
  a.or_(x86::r10d, x86::r9d);
  a.and_(x86::r13d, kPopfHostFlags);
  a.or_(x86::r13d, flags::Reserved1);
  a.push(x86::r13);
  a.test(x86::r10d, x86::r10d);
  a.jnz(leave);
  a.popfq();
  a.short_().jmp(done);
  a.bind(leave);
  a.popfq();
  b.jump_to_exit(ExitKind::Callout, b.next_eip);
  a.bind(done);
}

}  // namespace

RewriteStatus rewrite_flags(BlockBuilder& b, const Instruction& insn) {
  const bool cpl0 = (b.mode & tmode::Cpl3) == 0;
  const bool stack32 = (b.mode & tmode::FlatData) && insn.operand_size() == 32 && insn.address_size() == 32;
  switch (insn.mnemonic()) {
    case ZYDIS_MNEMONIC_CLI:
      // At CPL 3 cli/sti depend on IOPL (#GP below 3): the interpreter decides.
      if (!cpl0) break;
      emit_cli(b);
      return RewriteStatus::Emitted;
    case ZYDIS_MNEMONIC_STI:
      // The shadow covers the next instruction; only when it runs in this block can the
      // exit above happen at it. Otherwise the interpreter runs sti and keeps the shadow.
      if (!cpl0 || !b.next_in_block) break;
      emit_sti(b);
      return RewriteStatus::Emitted;
    case ZYDIS_MNEMONIC_PUSHFD:
      if (!stack32) break;
      emit_pushf(b);
      return RewriteStatus::Emitted;
    case ZYDIS_MNEMONIC_POPFD:
      // At CPL 3 what popf may change depends on IOPL: rare, left to the interpreter.
      if (!cpl0 || !stack32) break;
      emit_popf(b);
      return RewriteStatus::Emitted;
    default: break;
  }
  return RewriteStatus::NotHandled;
}

}  // namespace vmm86
