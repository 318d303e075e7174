// State shared by the rewrite rules while one guest block is translated (the request
// struct of STYLE.md #6): the assembler, the exits to emit, the PC map, and the
// translation mode the block is keyed on.
#pragma once

#include <asmjit/x86.h>

#include <cstdint>
#include <vector>

#include "decoder/decoder.h"
#include "translator/code_cache.h"
#include "translator/code_source.h"
#include "translator/exec_context.h"
#include "translator/translation_mode.h"

namespace vmm86 {

/// What a rewrite rule did with one instruction.
enum class RewriteStatus : uint8_t {
  Emitted,     ///< host code emitted; the block continues
  EndsBlock,   ///< host code emitted including the block's exits
  SideExit,    ///< host code emitted including an exit taken on a condition; the block
               ///< goes on with the next instruction, which starts a new count segment
  NotHandled,  ///< this rule cannot translate it: end the block before it (slow path)
};

/// "No condition" for jump_to_exit. Not asmjit's CondCode::kMaxValue: that equals kG (jg).
inline constexpr auto kAlways = static_cast<asmjit::x86::CondCode>(0xFF);

/// An exit whose stub is emitted after the block body.
struct PendingExit {
  ExitKind kind;
  uint32_t target_eip;
  asmjit::Label stub;        ///< bound at the stub
  asmjit::Label after_jump;  ///< bound right after the jump whose rel32 gets patched (Direct only)
  bool patchable;
  /// Instructions of the block retired when this exit is taken; the stub takes what the
  /// count segment (see BlockBuilder::segment) added beyond that off the count.
  uint32_t retired;
  uint32_t segment;
};

/// No count segment's lea ran yet on the path (the entry's code check).
inline constexpr uint32_t kNoSegment = 0xFFFFFFFFu;

/// How one block (or the return-miss code) is to be translated.
struct BlockConfig {
  uint32_t mode = 0;            ///< the translation mode the block is keyed on
  uint32_t eip = 0;             ///< its first instruction
  bool count_indirect = false;  ///< emit the ExecContext::indirect_lookups count (--stats)
  /// EIP bits that index the inline indirect table (IndirectTable::index_bits).
  uint32_t indirect_index_bits = kIndirectIndexBits;
  /// Return prediction (ExecContext, kReturnStackBytes): guest calls become host calls and
  /// guest rets host rets; a paired ret whose guest target differs goes here. Null: off.
  const uint8_t* return_mismatch = nullptr;
};

struct BlockBuilder {
  BlockBuilder(asmjit::x86::Assembler& assembler, const BlockConfig& config)
      : a(assembler),
        count_indirect(config.count_indirect),
        mode(config.mode),
        eip(config.eip),
        next_eip(config.eip),
        indirect_exit(assembler.newLabel()),
        indirect_index_bits(config.indirect_index_bits),
        return_mismatch(config.return_mismatch) {}

  asmjit::x86::Assembler& a;
  bool count_indirect = false;  ///< emit the ExecContext::indirect_lookups count
  uint32_t mode = 0;
  uint32_t eip = 0;       ///< EIP of the instruction being translated
  uint32_t next_eip = 0;  ///< EIP after it
  /// The guest bytes of the instruction being translated (length() of them), or nullptr
  /// when it was decoded from a copy (one that crosses into the next page).
  const uint8_t* insn_bytes = nullptr;
  std::vector<PendingExit> exits;
  asmjit::Label indirect_exit;  ///< shared stub for missed indirect lookups (target in cpu.eip)
  bool indirect_used = false;
  /// Instructions retired if the current one completes (what exits made now record).
  uint32_t retired_after = 0;
  /// The next instruction would be translated into this block too (same page, room left),
  /// unless no rule handles it. False: the block ends after this instruction.
  bool next_in_block = false;
  std::vector<HostPointerSite> host_pointer_sites;
  /// The translation used a tmode::kUnsalted bit (set by the rules that read one).
  bool mode_sensitive = false;
  uint32_t indirect_index_bits = kIndirectIndexBits;  ///< BlockConfig::indirect_index_bits
  const uint8_t* return_mismatch = nullptr;           ///< BlockConfig::return_mismatch
  /// Count segment of the current instruction. A block adds its instructions to the
  /// retired count (R14) with one flag-neutral lea per segment, at the segment's start: the
  /// prologue's for the first, and one after each side exit (a conditional branch the
  /// block goes on after), so that side exits need no correction and chain directly.
  uint32_t segment = 0;
  /// Conditional branches may be side exits (RewriteStatus::SideExit).
  bool side_exits = true;
  /// The fields of the code emitted so far that depend on the block's EIP or host address
  /// (CodeFixup), each with the value it must hold now, checked when the block is placed.
  /// A rule that embeds such a value must note it, or clear `relocatable`.
  struct NotedFixup {
    CodeFixup fixup;
    uint64_t value = 0;
  };
  std::vector<NotedFixup> fixups;
  bool relocatable = true;
  /// Notes the field just emitted (the last 4 bytes; 8 for the pointers).
  void note(CodeFixup::Kind kind, uint64_t value, size_t index = 0) {
    if (a.offset() > UINT16_MAX || index > UINT16_MAX) relocatable = false;
    fixups.push_back({CodeFixup{static_cast<uint16_t>(a.offset()), kind, static_cast<uint16_t>(index)}, value});
  }

  /// Jumps (rel32) to a new exit stub for `target`; chaining patches this jump later.
  void jump_to_exit(ExitKind kind, uint32_t target, asmjit::x86::CondCode cc = kAlways);
  /// The same with a host call (rel32), whose return address is where the code emitted
  /// next starts: the call's paired return lands there (return prediction).
  void call_exit(ExitKind kind, uint32_t target);
};

/// Host register holding guest register `reg` (ModRM numbering 0..7).
[[nodiscard]] asmjit::x86::Gp guest_gp32(unsigned reg);

/// Rewrite rules, one file per Route (STYLE.md #3; rewrite_by_route in block_scanner.cpp
/// calls the one the instruction's table row names). Each returns NotHandled for a form or
/// mode it does not cover; the instruction then takes fallback_route (decoder/classify.h).
[[nodiscard]] RewriteStatus rewrite_ident(BlockBuilder& b, const Instruction& insn);
[[nodiscard]] RewriteStatus rewrite_branch(BlockBuilder& b, const Instruction& insn);
[[nodiscard]] RewriteStatus rewrite_stack(BlockBuilder& b, const Instruction& insn);
[[nodiscard]] RewriteStatus rewrite_flags(BlockBuilder& b, const Instruction& insn);
[[nodiscard]] RewriteStatus rewrite_string(BlockBuilder& b, const Instruction& insn);
[[nodiscard]] RewriteStatus rewrite_time(BlockBuilder& b, const Instruction& insn);
/// `call` of a get_pc_thunk (rewrite_pc_thunk.cpp): Emitted when inlined, retiring three
/// guest instructions. May make `source`'s page of the thunk the block's second page.
[[nodiscard]] RewriteStatus rewrite_pc_thunk(BlockBuilder& b, const Instruction& insn, CodeSource& source,
                                             Block& block);
/// Runs the instruction in the interpreter, in place, through the callout trampoline
/// (rewrite_callout.cpp): the route of instructions with no inline form.
void emit_callout(BlockBuilder& b, Block& block, const uint8_t* callout_trampoline);

/// A field of the ExecContext (R15) at byte offset `offset`.
[[nodiscard]] inline asmjit::x86::Mem context_field(size_t offset, uint32_t size) {
  return asmjit::x86::ptr(asmjit::x86::r15, static_cast<int32_t>(offset), size);
}

/// The guest EIP in the context (CpuState::eip), where exits and callouts leave it.
[[nodiscard]] inline asmjit::x86::Mem guest_eip_field() {
  return context_field(offsetof(ExecContext, cpu) + offsetof(CpuState, eip), 4);
}

/// Adds 1 to the 64-bit ExecContext counter at `offset` without touching flags (load, lea,
/// store; clobbers r10).
inline void emit_count(asmjit::x86::Assembler& a, size_t offset) {
  const asmjit::x86::Mem counter = context_field(offset, 8);
  a.mov(asmjit::x86::r10, counter);
  a.lea(asmjit::x86::r10, asmjit::x86::ptr(asmjit::x86::r10, 1));
  a.mov(counter, asmjit::x86::r10);
}

/// A 32-bit guest memory access at base32+disp inside the window: gs:[addr32 base+disp].
[[nodiscard]] asmjit::x86::Mem guest_dword(const asmjit::x86::Gp& base32, int32_t disp = 0);

/// True when accesses through `seg` (DS, ES, SS or CS) may go straight to the window in
/// this mode: the segment is flat and the access is one its type allows.
[[nodiscard]] bool flat_segment_usable(const BlockBuilder& b, ZydisRegister seg, bool write);

/// Translates a guest memory operand (flat segment) into a host `gs:[addr32 ...]` operand.
/// Returns false when it cannot (16-bit addressing, non-flat segment).
[[nodiscard]] bool guest_mem_operand(const BlockBuilder& b, const Instruction& insn, const ZydisDecodedOperand& op,
                                     asmjit::x86::Mem* out);

/// The entry check of a block on a page that is not write-protected: compares the guest's
/// code bytes at `eip` with `expected` (what was translated) and takes a Stale exit if they
/// differ, else jumps to `body`. The first load comes before any flag is touched, so a
/// fault on it (the page not in the window yet) leaves the guest state exact.
void emit_code_check(BlockBuilder& b, uint32_t eip, const uint8_t* expected, uint32_t size, asmjit::Label body);

/// Emits the flag-neutral inline indirect-branch lookup for a target EIP held in r13d.
void emit_indirect_jump(BlockBuilder& b);

}  // namespace vmm86
