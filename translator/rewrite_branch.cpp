// Control flow: direct branches jump to exit stubs that chaining later patches into
// block-to-block jumps; indirect branches and returns go through the inline table.
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// Target of a relative branch (operand 0 is the immediate displacement).
uint32_t relative_target(BlockBuilder& b, const Instruction& insn) {
  const auto rel = static_cast<uint32_t>(insn.operands[0].imm.value.s);
  uint32_t target = b.next_eip + rel;
  if (insn.operand_size() == 16) {
    target &= 0xFFFF;
    b.relocatable = false;  // the wrap does not move with the block
  }
  return target;
}

x86::CondCode condition_of(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_JO: return x86::CondCode::kO;
    case ZYDIS_MNEMONIC_JNO: return x86::CondCode::kNO;
    case ZYDIS_MNEMONIC_JB: return x86::CondCode::kB;
    case ZYDIS_MNEMONIC_JNB: return x86::CondCode::kAE;
    case ZYDIS_MNEMONIC_JZ: return x86::CondCode::kE;
    case ZYDIS_MNEMONIC_JNZ: return x86::CondCode::kNE;
    case ZYDIS_MNEMONIC_JBE: return x86::CondCode::kBE;
    case ZYDIS_MNEMONIC_JNBE: return x86::CondCode::kA;
    case ZYDIS_MNEMONIC_JS: return x86::CondCode::kS;
    case ZYDIS_MNEMONIC_JNS: return x86::CondCode::kNS;
    case ZYDIS_MNEMONIC_JP: return x86::CondCode::kP;
    case ZYDIS_MNEMONIC_JNP: return x86::CondCode::kNP;
    case ZYDIS_MNEMONIC_JL: return x86::CondCode::kL;
    case ZYDIS_MNEMONIC_JNL: return x86::CondCode::kGE;
    case ZYDIS_MNEMONIC_JLE: return x86::CondCode::kLE;
    case ZYDIS_MNEMONIC_JNLE: return x86::CondCode::kG;
    default: return kAlways;
  }
}

/// Loads the target of an indirect jmp/call (register or memory operand 0) into r13d.
bool load_indirect_target(BlockBuilder& b, const Instruction& insn) {
  const ZydisDecodedOperand& op = insn.operands[0];
  if (insn.operand_size() != 32) return false;
  if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
    b.a.mov(x86::r13d, guest_gp32(static_cast<unsigned>(op.reg.value - ZYDIS_REGISTER_EAX)));
    return true;
  }
  x86::Mem m;
  if (!guest_mem_operand(b, insn, op, &m)) return false;
  b.a.mov(x86::r13d, m);
  return true;
}

/// Pushes the return address: store first (it may fault), then move ESP (DESIGN.md §4).
void push_return_address(BlockBuilder& b) {
  b.a.mov(guest_dword(x86::r12d, -4), b.next_eip);
  b.note(CodeFixup::Kind::Eip, b.next_eip);
  b.a.lea(x86::r12d, x86::ptr(x86::r12d, -4));
}

/// Where a guest call's paired return lands (right after the host call): the guest's
/// return target (r13d, loaded by the ret) must be this call's return address, else the
/// shared mismatch code looks it up. Flag-neutral: lea + jrcxz.
void emit_return_landing(BlockBuilder& b) {
  auto& a = b.a;
  const Label match = a.newLabel();
  a.mov(x86::r8, x86::rcx);
  a.lea(x86::ecx, x86::ptr(x86::r13, -static_cast<int32_t>(b.next_eip)));
  b.note(CodeFixup::Kind::NegEip, 0u - b.next_eip);
  a.jecxz(x86::rcx, match);  // jrcxz: ecx was written as 32 bits, so rcx == ecx
  a.mov(x86::rcx, x86::r8);
  a.jmp(Imm(reinterpret_cast<uint64_t>(b.return_mismatch)));
  b.note(CodeFixup::Kind::HostTarget, 0);
  a.bind(match);
  a.mov(x86::rcx, x86::r8);
  b.jump_to_exit(ExitKind::Direct, b.next_eip);
}

/// The rest of a call once its return address is pushed: to the target (in r13d when
/// `indirect`), with a host call when return prediction is on.
void emit_call_transfer(BlockBuilder& b, bool indirect, uint32_t direct_target) {
  if (!b.return_mismatch) {
    if (indirect) {
      emit_indirect_jump(b);
    } else {
      b.jump_to_exit(ExitKind::Direct, direct_target);
    }
    return;
  }
  if (!indirect) {
    b.call_exit(ExitKind::Direct, direct_target);
    emit_return_landing(b);
    return;
  }
  const Label lookup = b.a.newLabel();
  b.a.call(lookup);
  emit_return_landing(b);
  b.a.bind(lookup);
  emit_indirect_jump(b);
}

}  // namespace

void BlockBuilder::jump_to_exit(ExitKind kind, uint32_t target, x86::CondCode cc) {
  // Only the block's last instruction makes Direct exits: a chained jump skips the stub,
  // which is where an exit from the middle of the block corrects the instruction count.
  PendingExit e{kind, target, a.newLabel(), a.newLabel(), kind == ExitKind::Direct, retired_after, segment};
  if (cc == kAlways) {
    a.long_().jmp(e.stub);
  } else {
    a.long_().j(cc, e.stub);
  }
  a.bind(e.after_jump);
  exits.push_back(e);
}

void BlockBuilder::call_exit(ExitKind kind, uint32_t target) {
  PendingExit e{kind, target, a.newLabel(), a.newLabel(), kind == ExitKind::Direct, retired_after, segment};
  a.call(e.stub);  // E8 rel32: patched like a jump's
  a.bind(e.after_jump);
  exits.push_back(e);
}

RewriteStatus rewrite_branch(BlockBuilder& b, const Instruction& insn) {
  const ZydisMnemonic m = insn.mnemonic();
  const bool relative = insn.operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
                        insn.raw.meta.branch_type != ZYDIS_BRANCH_TYPE_FAR;
  if (insn.address_size() != 32) return RewriteStatus::NotHandled;

  if (const x86::CondCode cc = condition_of(m); cc != kAlways) {
    b.jump_to_exit(ExitKind::Direct, relative_target(b, insn), cc);
    // Falling through, the block goes on: no jump, no other block's prologue.
    if (b.next_in_block && b.side_exits) return RewriteStatus::SideExit;
    b.jump_to_exit(ExitKind::Direct, b.next_eip);
    return RewriteStatus::EndsBlock;
  }
  switch (m) {
    case ZYDIS_MNEMONIC_JMP:
      if (relative) {
        b.jump_to_exit(ExitKind::Direct, relative_target(b, insn));
        return RewriteStatus::EndsBlock;
      }
      if (insn.raw.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR || !load_indirect_target(b, insn)) break;
      emit_indirect_jump(b);
      return RewriteStatus::EndsBlock;
    case ZYDIS_MNEMONIC_CALL:
      if (insn.operand_size() != 32 || !(b.mode & tmode::FlatData)) break;
      if (relative) {
        push_return_address(b);
        emit_call_transfer(b, false, relative_target(b, insn));
        return RewriteStatus::EndsBlock;
      }
      if (insn.raw.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR || !load_indirect_target(b, insn)) break;
      push_return_address(b);
      emit_call_transfer(b, true, 0);
      return RewriteStatus::EndsBlock;
    case ZYDIS_MNEMONIC_RET: {
      // retf loads CS (and maybe SS:ESP at another privilege): the interpreter's.
      if (insn.operand_size() != 32 || !(b.mode & tmode::FlatData) ||
          insn.raw.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
        break;
      }
      const int32_t release = 4 +
                              (insn.raw.operand_count_visible ? static_cast<int32_t>(insn.operands[0].imm.value.u) : 0);
      b.a.mov(x86::r13d, guest_dword(x86::r12d));
      b.a.lea(x86::r12d, x86::ptr(x86::r12d, release));
      if (b.return_mismatch) {
        b.a.ret();  // to the landing of the paired call, or to the return-miss code
      } else {
        emit_indirect_jump(b);
      }
      return RewriteStatus::EndsBlock;
    }
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JECXZ: {
      // The addr32 forms use ECX, as the guest does (plain 64-bit forms would use RCX).
      Label taken = b.a.newLabel();
      if (m == ZYDIS_MNEMONIC_LOOP) b.a.loop(x86::ecx, taken);
      if (m == ZYDIS_MNEMONIC_LOOPE) b.a.loope(x86::ecx, taken);
      if (m == ZYDIS_MNEMONIC_LOOPNE) b.a.loopne(x86::ecx, taken);
      if (m == ZYDIS_MNEMONIC_JECXZ) b.a.jecxz(x86::ecx, taken);
      b.jump_to_exit(ExitKind::Direct, b.next_eip);
      b.a.bind(taken);
      b.jump_to_exit(ExitKind::Direct, relative_target(b, insn));
      return RewriteStatus::EndsBlock;
    }
    default: break;
  }
  return RewriteStatus::NotHandled;
}

void emit_indirect_jump(BlockBuilder& b) {
  // Flag-neutral lookup of r13d in the table indexed by its low bits:
  // each entry holds -(eip + salt), so -key + eip + salt is zero exactly on a hit and
  // jrcxz tests it; then the code TLB slot the entry names must hold the target page's
  // tag (IndirectEntry). Either miss leaves through the indirect exit.
  auto& a = b.a;
  b.indirect_used = true;
  if (b.count_indirect) emit_count(a, offsetof(ExecContext, indirect_lookups));
  const Label key_hit = a.newLabel(), hit = a.newLabel(), miss = a.newLabel();
  a.mov(x86::dword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, cpu) + offsetof(CpuState, eip))),
        x86::r13d);
  a.mov(x86::r8, x86::rcx);
  if (b.indirect_index_bits == 16) {
    a.movzx(x86::ecx, x86::r13w);
  } else {  // the low bits by a shift up and down: BMI2 shifts leave the flags alone
    a.mov(x86::r10d, 32 - b.indirect_index_bits);
    a.shlx(x86::ecx, x86::r13d, x86::r10d);
    a.shrx(x86::ecx, x86::ecx, x86::r10d);
  }
  a.lea(x86::rcx, x86::ptr(0, x86::rcx, 2));  // 32-byte entries: index * 4 * 8
  a.mov(x86::r9, x86::qword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, indirect_table))));
  a.lea(x86::r9, x86::ptr(x86::r9, x86::rcx, 3));
  a.mov(x86::ecx, x86::dword_ptr(x86::r9, offsetof(IndirectEntry, neg_key)));
  a.mov(x86::r10d, x86::dword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, lookup_salt))));
  a.lea(x86::ecx, x86::ptr(x86::rcx, x86::r13));
  a.lea(x86::ecx, x86::ptr(x86::rcx, x86::r10));
  a.jecxz(x86::rcx, key_hit);  // jrcxz: ecx was written as 32 bits, so rcx == ecx
  a.bind(miss);
  a.mov(x86::rcx, x86::r8);
  a.long_().jmp(b.indirect_exit);
  a.bind(key_hit);
  a.mov(x86::ecx, x86::dword_ptr(x86::r9, offsetof(IndirectEntry, tlb_offset)));
  a.mov(x86::ecx, x86::dword_ptr(x86::r15, x86::rcx));
  a.mov(x86::r10d, x86::dword_ptr(x86::r9, offsetof(IndirectEntry, neg_tag)));
  a.lea(x86::ecx, x86::ptr(x86::rcx, x86::r10));
  a.jecxz(x86::rcx, hit);
  a.jmp(miss);
  a.bind(hit);
  a.mov(x86::rcx, x86::r8);
  a.jmp(x86::qword_ptr(x86::r9, offsetof(IndirectEntry, host_code)));
}

}  // namespace vmm86
