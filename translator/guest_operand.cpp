// Guest operands -> host operands: registers by the identity mapping (ESP -> R12) and memory
// operands as gs:[addr32 ea] inside the guest window (DESIGN.md §4).
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

x86::Gp guest_gp32(unsigned reg) { return reg == 4 ? x86::r12d : x86::Gpd(reg); }

x86::Mem guest_dword(const x86::Gp& base32, int32_t disp) {
  x86::Mem m = x86::dword_ptr(base32, disp);
  m.setSegment(x86::gs);
  return m;
}

namespace {

/// Maps a 32-bit guest base/index register to its host 32-bit register; false if absent.
bool host_addr_reg(ZydisRegister r, x86::Gp* out) {
  if (r == ZYDIS_REGISTER_NONE) return false;
  *out = guest_gp32(static_cast<unsigned>(r - ZYDIS_REGISTER_EAX));
  return true;
}

}  // namespace

bool flat_segment_usable(const BlockBuilder& b, ZydisRegister seg, bool write) {
  if (!(b.mode & tmode::FlatData)) return false;
  switch (seg) {
    case ZYDIS_REGISTER_DS:
    case ZYDIS_REGISTER_ES:
    case ZYDIS_REGISTER_SS: return true;
    case ZYDIS_REGISTER_CS:  // a code segment: never writable, readable if its type says so
      return !write && (b.mode & tmode::ReadableCs);
    default: return false;
  }
}

bool guest_mem_operand(const BlockBuilder& b, const Instruction& insn, const ZydisDecodedOperand& op, x86::Mem* out) {
  if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || insn.address_size() != 32) return false;
  const ZydisRegister seg = op.mem.segment;
  const bool flat_seg = flat_segment_usable(b, seg, (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0);
  const bool based_seg = seg == ZYDIS_REGISTER_FS || seg == ZYDIS_REGISTER_GS;
  if (!flat_seg && !based_seg) return false;
  x86::Gp base, index;
  const bool has_base = host_addr_reg(op.mem.base, &base);
  const bool has_index = host_addr_reg(op.mem.index, &index);
  const auto disp = static_cast<int32_t>(op.mem.disp.value);
  const uint32_t size = op.size / 8;
  const uint32_t shift = has_index ? static_cast<uint32_t>(__builtin_ctz(op.mem.scale)) : 0;  // log2 of the scale
  if (based_seg) {
    // r11d = ea + the segment's live base, flag-free and wrapped to 32 bits.
    if (has_base && has_index) {
      b.a.lea(x86::r11d, x86::ptr(base, index, shift, disp));
    } else if (has_base) {
      b.a.lea(x86::r11d, x86::ptr(base, disp));
    } else {
      b.a.mov(x86::r11d, static_cast<uint32_t>(disp));
      if (has_index) b.a.lea(x86::r11d, x86::ptr(x86::r11d, index, shift));
    }
    // r11d = (ea + base) mod 2^32, as the CPU wraps a 4 GiB segment (TLS variables sit at
    // negative offsets from the TLS base: every such access wraps). Then r11 += the guard
    // offset, in 64 bits: a segment that is not simply a base (null, limited, read-only...)
    // has 4 GiB there, so its accesses land in the window's guard, whose fault sends the
    // instruction to the interpreter for the real segment checks.
    const auto field = [&](size_t offset) {
      return x86::qword_ptr(x86::r15, static_cast<int32_t>(offset + (seg == ZYDIS_REGISTER_FS ? 0 : sizeof(uint64_t))));
    };
    b.a.mov(x86::r10, field(offsetof(ExecContext, segment_code_base)));
    b.a.lea(x86::r11d, x86::ptr(x86::r11, x86::r10));
    b.a.mov(x86::r10, field(offsetof(ExecContext, segment_code_guard)));
    b.a.lea(x86::r11, x86::ptr(x86::r11, x86::r10));
    *out = x86::ptr(x86::r11, 0, size);
  } else if (!has_base && !has_index) {
    // [disp32] would be sign-extended in 64-bit mode; go through a zero-extended register.
    b.a.mov(x86::r11d, static_cast<uint32_t>(disp));
    *out = x86::ptr(x86::r11d, 0, size);
  } else if (has_base && has_index) {
    *out = x86::ptr(base, index, shift, disp, size);
  } else if (has_base) {
    *out = x86::ptr(base, disp, size);
  } else {
    // index*scale+disp has no base: build it in r11d, flag-free and wrapped to 32 bits.
    b.a.mov(x86::r11d, static_cast<uint32_t>(disp));
    b.a.lea(x86::r11d, x86::ptr(x86::r11d, index, shift));
    *out = x86::ptr(x86::r11d, 0, size);
  }
  out->setSegment(x86::gs);
  return true;
}

}  // namespace vmm86
