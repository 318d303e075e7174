// The block scanner (block_translation.h): fetches and decodes guest instructions, decides
// where the block ends, and translates each instruction by its table row's route.
#include <algorithm>
#include <cstring>

#include "decoder/decoder.h"
#include "translator/block_translation.h"

namespace vmm86 {

using namespace asmjit;

namespace {

constexpr uint32_t kMaxBlockInsns = 64;
constexpr uint32_t kMaxInsnBytes = 15;

/// True when the instruction writes memory (explicit or hidden operands: push, call, stos...).
bool writes_memory(const Instruction& insn) {
  for (uint8_t i = 0; i < insn.raw.operand_count; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_MEM &&
        (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
      return true;
    }
  }
  return false;
}

/// One lea per count segment (BlockBuilder::segment); its disp32 is patched at placement.
void open_segment(BlockDraft& d) {
  static constexpr uint8_t kLeaR14Disp32[] = {0x4D, 0x8D, 0xB6, 0, 0, 0, 0};
  d.segment_patch.push_back(static_cast<uint32_t>(d.b.a.offset()) + 3);
  d.b.a.embed(kLeaR14Disp32, sizeof(kLeaR14Disp32));
}

/// Where chained jumps and the dispatcher enter: the interrupt poll (a load that faults
/// when an exit is requested), then the count of the block's guest instructions.
void emit_prologue(BlockDraft& d) {
  x86::Assembler& a = d.b.a;
  d.main_entry = a.newLabel();
  d.check_code = a.newLabel();
  d.body = a.newLabel();
  a.bind(d.main_entry);
  a.mov(x86::r13d, x86::dword_ptr(x86::r15, kPollPageOffset));
  if (d.block->verifies_code) {
    a.jmp(d.check_code);
    a.bind(d.body);
  }
  open_segment(d);
}

/// Decodes the instruction at `eip` (its bytes: `bytes`). One that continues on the next
/// page ends the block, which then depends on that page's mapping too (checked at entry)
/// and on its bytes (write-protected).
DecodeStatus decode_at(BlockDraft& d, const Decoder& decoder, CodeSource& source, uint32_t eip,
                       const CodeSource::Bytes& bytes, Instruction* insn) {
  Block& block = *d.block;
  const DecodeStatus ds = decoder.decode({bytes.host, bytes.available}, insn);
  // Only a block's first instruction may take in the next page: fetching it for a later one
  // would walk that page (and set its accessed bit) for code the ones before may never reach.
  if (ds != DecodeStatus::NeedMoreBytes || d.insns > 0 || block.verifies_code || block.has_second_page) return ds;
  CodeSource::Bytes next;
  const uint32_t next_linear = (eip | kPageMask) + 1;
  if (next_linear == 0 || !source.fetch(GuestLinear{next_linear}, &next)) return ds;
  uint8_t spliced[kMaxInsnBytes];
  const uint32_t head = std::min<uint32_t>(bytes.available, kMaxInsnBytes);
  std::memcpy(spliced, bytes.host, head);
  std::memcpy(spliced + head, next.host, std::min<uint32_t>(kMaxInsnBytes - head, next.available));
  const DecodeStatus spliced_status = decoder.decode({spliced, kMaxInsnBytes}, insn);
  if (spliced_status == DecodeStatus::Ok) {
    block.has_second_page = true;
    block.second_linear_page = GuestLinear{next_linear}.page();
    block.last_page = next.phys.page();
  }
  return spliced_status;
}

/// The rewrite class the instruction's table row names (Route, decoder/classify.cpp).
RewriteStatus rewrite_by_route(BlockDraft& d, CodeSource& source, const Instruction& insn, uint32_t* retires) {
  BlockBuilder& b = d.b;
  switch (insn.route) {
    case Route::Copy: return rewrite_ident(b, insn);
    case Route::Stack: return rewrite_stack(b, insn);
    case Route::Flags: return rewrite_flags(b, insn);
    case Route::String: return rewrite_string(b, insn);
    case Route::Branch: return rewrite_branch(b, insn);
    case Route::Call:
      if (rewrite_pc_thunk(b, insn, source, *d.block) == RewriteStatus::Emitted) {
        *retires = 3;  // the call, the thunk's mov and its ret
        return RewriteStatus::Emitted;
      }
      return rewrite_branch(b, insn);
    case Route::Time: return rewrite_time(b, insn);
    case Route::Callout:
    case Route::EndBlock: break;
  }
  return RewriteStatus::NotHandled;
}

/// Translates one instruction: by its route, and if that rewrite declines, by its
/// fallback route (a callout, or NotHandled: the block ends before it).
RewriteStatus translate_instruction(BlockDraft& d, CodeSource& source, const BlockServices& services,
                                    const Instruction& insn, uint32_t* retires) {
  BlockBuilder& b = d.b;
  const size_t host_offset = b.a.offset();
  const RewriteStatus rs = rewrite_by_route(d, source, insn, retires);
  if (rs != RewriteStatus::NotHandled) return rs;
  // Bytes a declining rule may have emitted for this instruction are dead: cut them off.
  b.a.setOffset(host_offset);
  // A block that checks its code at entry cannot run the interpreter on its own bytes.
  if (fallback_route(insn.classes) != Route::Callout || !services.callouts || d.block->verifies_code) {
    return RewriteStatus::NotHandled;
  }
  emit_callout(b, *d.block, services.trampolines.callout());
  ++services.stats.callout_sites;
  if (b.next_in_block) return RewriteStatus::Emitted;
  b.jump_to_exit(ExitKind::Direct, b.next_eip);
  return RewriteStatus::EndsBlock;
}

}  // namespace

bool scan_block(BlockDraft& d, CodeSource& source, const BlockServices& services) {
  Block& block = *d.block;
  BlockBuilder& b = d.b;
  const uint32_t start = block.key.eip;
  CodeSource::Bytes first;
  if (source.fetch(GuestLinear{start}, &first)) {
    block.verifies_code = first.verify;
    d.first_bytes = first.host;
  }
  emit_prologue(d);

  const Decoder decoder(CodeSize::Bits32);
  const uint32_t page = start >> kPageShift;
  uint32_t eip = start;
  bool stored = false;  // the last instruction wrote memory (see below)
  for (;;) {
    CodeSource::Bytes bytes;
    b.retired_after = d.retired;  // for the exits the loop itself makes, before this instruction
    // A block that checks its code at entry ends after each store: a store may rewrite the
    // instructions that follow, and only a block entry would notice.
    if (d.insns == kMaxBlockInsns || (eip >> kPageShift) != page || (block.verifies_code && stored) ||
        !source.fetch(GuestLinear{eip}, &bytes)) {
      b.jump_to_exit(ExitKind::Direct, eip);
      break;
    }
    Instruction insn;
    const DecodeStatus ds = decode_at(d, decoder, source, eip, bytes, &insn);
    if (ds == DecodeStatus::NeedMoreBytes && d.insns > 0) {  // it starts the next block
      b.jump_to_exit(ExitKind::Direct, eip);
      break;
    }
    RewriteStatus rs = RewriteStatus::NotHandled;
    uint32_t retires = 1;
    const auto host_offset = static_cast<uint32_t>(b.a.offset());
    if (ds == DecodeStatus::Ok) {
      b.eip = eip;
      b.next_eip = eip + insn.length();
      b.insn_bytes = insn.length() <= bytes.available ? bytes.host : nullptr;
      b.retired_after = d.retired + 1;
      stored = writes_memory(insn);
      b.next_in_block = d.insns + 1 < kMaxBlockInsns && (b.next_eip >> kPageShift) == page &&
                        !(block.verifies_code && stored);
      rs = translate_instruction(d, source, services, insn, &retires);
    }
    if (rs == RewriteStatus::NotHandled) {
      if (d.insns == 0) return false;
      b.retired_after = d.retired;
      b.jump_to_exit(ExitKind::Interpret, eip);
      break;
    }
    block.pc_map.push_back({host_offset, eip, d.retired, 0});
    d.pc_segment.push_back(b.segment);
    ++d.insns;
    d.retired += retires;
    eip = b.next_eip;
    if (rs == RewriteStatus::EndsBlock) break;
    if (rs == RewriteStatus::SideExit) {
      d.segment_end.push_back(d.retired);
      open_segment(d);
      ++b.segment;
    }
  }
  d.segment_end.push_back(d.retired);
  for (size_t i = 0; i < block.pc_map.size(); ++i) block.pc_map[i].counted = d.segment_end[d.pc_segment[i]];
  d.end_eip = eip;
  return true;
}

}  // namespace vmm86
