// Stack instructions: in 64-bit mode push/pop would move 8-byte slots through RSP, so they
// become explicit 32-bit stores/loads at gs:[r12d] (guest ESP), memory access first and
// ESP update last so a fault leaves the guest state as before the instruction.
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

unsigned guest_reg_number(ZydisRegister r) { return static_cast<unsigned>(r - ZYDIS_REGISTER_EAX); }

bool is_gpr32(const ZydisDecodedOperand& op) {
  return op.type == ZYDIS_OPERAND_TYPE_REGISTER && ZydisRegisterGetClass(op.reg.value) == ZYDIS_REGCLASS_GPR32;
}

void push_value(BlockBuilder& b, const x86::Gp& value) {
  b.a.mov(guest_dword(x86::r12d, -4), value);
  b.a.lea(x86::r12d, x86::ptr(x86::r12d, -4));
}

/// The selector of segment register `segment` (segment_number order) in the context:
/// while translated code runs only callouts load segments, and they update it there.
x86::Mem selector_of(uint8_t segment) {
  return context_field(offsetof(ExecContext, cpu) + offsetof(CpuState, seg) + segment * sizeof(SegmentCache) +
                           offsetof(SegmentCache, selector),
                       2);
}

}  // namespace

RewriteStatus rewrite_stack(BlockBuilder& b, const Instruction& insn) {
  if (!(b.mode & tmode::FlatData) || insn.operand_size() != 32 || insn.address_size() != 32) {
    return RewriteStatus::NotHandled;
  }
  const ZydisDecodedOperand& op = insn.operands[0];
  switch (insn.mnemonic()) {
    case ZYDIS_MNEMONIC_PUSH:
      if (is_gpr32(op)) {
        push_value(b, guest_gp32(guest_reg_number(op.reg.value)));
        return RewriteStatus::Emitted;
      }
      if (const auto segment = op.type == ZYDIS_OPERAND_TYPE_REGISTER ? segment_number(op.reg.value) : std::nullopt) {
        // The kernel's entry code saves three on every interrupt and system call.
        b.a.movzx(x86::r13d, selector_of(*segment));  // zero-extended, as the interpreter pushes it
        push_value(b, x86::r13d);
        return RewriteStatus::Emitted;
      }
      if (op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
        b.a.mov(guest_dword(x86::r12d, -4), static_cast<int32_t>(op.imm.value.s));
        b.a.lea(x86::r12d, x86::ptr(x86::r12d, -4));
        return RewriteStatus::Emitted;
      }
      if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
        x86::Mem m;
        if (!guest_mem_operand(b, insn, op, &m)) return RewriteStatus::NotHandled;
        b.a.mov(x86::r13d, m);
        push_value(b, x86::r13d);
        return RewriteStatus::Emitted;
      }
      return RewriteStatus::NotHandled;
    case ZYDIS_MNEMONIC_POP:
      if (is_gpr32(op)) {
        const unsigned reg = guest_reg_number(op.reg.value);
        b.a.mov(guest_gp32(reg), guest_dword(x86::r12d));
        if (reg != 4) b.a.lea(x86::r12d, x86::ptr(x86::r12d, 4));  // pop esp: the loaded value wins
        return RewriteStatus::Emitted;
      }
      if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base != ZYDIS_REGISTER_ESP) {
        x86::Mem m;
        b.a.mov(x86::r13d, guest_dword(x86::r12d));
        if (!guest_mem_operand(b, insn, op, &m)) return RewriteStatus::NotHandled;
        b.a.mov(m, x86::r13d);
        b.a.lea(x86::r12d, x86::ptr(x86::r12d, 4));
        return RewriteStatus::Emitted;
      }
      return RewriteStatus::NotHandled;
    case ZYDIS_MNEMONIC_LEAVE:
      b.a.mov(x86::r13d, guest_dword(x86::ebp));
      b.a.lea(x86::r12d, x86::ptr(x86::ebp, 4));
      b.a.mov(x86::ebp, x86::r13d);
      return RewriteStatus::Emitted;
    default: return RewriteStatus::NotHandled;
  }
}

}  // namespace vmm86
