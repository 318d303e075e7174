// PC thunks (Route::Call): how i386 position-independent code finds itself.
#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

/// `call T` where T holds `mov reg, [esp]; ret` (get_pc_thunk: how i386 position-
/// independent code finds itself, called all the time) becomes what the pair does: the
/// push of the return address (it may fault like the call's), and reg = that address. The
/// block goes on instead of ending twice. The thunk's page becomes the block's second page
/// (write-protected, its mapping checked at entry) unless it is the block's own.
RewriteStatus rewrite_pc_thunk(BlockBuilder& b, const Instruction& insn, CodeSource& source, Block& block) {
  if (insn.operand_size() != 32 || !(b.mode & tmode::FlatData) ||
      insn.operands[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE || block.verifies_code) {
    return RewriteStatus::NotHandled;
  }
  const uint32_t target = b.next_eip + static_cast<uint32_t>(insn.operands[0].imm.value.s);
  CodeSource::Bytes thunk;
  if (!source.fetch(GuestLinear{target}, &thunk) || thunk.verify || thunk.available < 4) {
    return RewriteStatus::NotHandled;
  }
  const uint8_t* c = thunk.host;
  const unsigned reg = (c[1] >> 3) & 7;
  if (c[0] != 0x8B || (c[1] & 0xC7) != 0x04 || c[2] != 0x24 || c[3] != 0xC3 || reg == 4)
    return RewriteStatus::NotHandled;
  const LinearPage linear_page = GuestLinear{target}.page();
  const PhysPage phys_page = thunk.phys.page();
  const bool own_page = linear_page == GuestLinear{block.key.eip}.page() && phys_page == block.first_page;
  if (!own_page) {
    if (block.has_second_page && (block.second_linear_page != linear_page || block.last_page != phys_page)) {
      return RewriteStatus::NotHandled;  // one second page per block
    }
    block.has_second_page = true;
    block.second_linear_page = linear_page;
    block.last_page = phys_page;
  }
  b.a.mov(guest_dword(x86::r12d, -4), b.next_eip);
  b.note(CodeFixup::Kind::Eip, b.next_eip);
  b.a.mov(guest_gp32(reg), b.next_eip);
  b.note(CodeFixup::Kind::Eip, b.next_eip);
  return RewriteStatus::Emitted;
}

}  // namespace vmm86
