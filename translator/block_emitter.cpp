// The block emitter (block_translation.h): the tail of a scanned block — the entry code
// check, the exit stubs, the checked entry, the shared indirect-miss exit — then its
// placement in the code cache and the patches that need final addresses.
#include <algorithm>
#include <cstring>

#include "translator/block_translation.h"
#include "translator/code_tlb.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// Leaves translated code through the exit trampoline with r13 = a new ExitRecord of the
/// block (kind, target).
void emit_leave(BlockDraft& d, const BlockServices& services, ExitKind kind, uint32_t target_eip) {
  auto rec = std::make_unique<ExitRecord>();
  rec->kind = kind;
  rec->target_eip = target_eip;
  rec->from = d.block.get();
  d.b.a.mov(x86::r13, reinterpret_cast<uint64_t>(rec.get()));
  d.b.note(CodeFixup::Kind::ExitPointer, reinterpret_cast<uint64_t>(rec.get()), d.block->exits.size());
  d.b.a.jmp(Imm(reinterpret_cast<uint64_t>(services.trampolines.exit())));
  d.b.note(CodeFixup::Kind::HostTarget, 0);
  d.block->exits.push_back(std::move(rec));
}

/// Exit stubs: store the target EIP, name the exit, leave through the exit trampoline.
/// block->exits[i] is the record of b.exits[i].
void emit_exit_stubs(BlockDraft& d, const BlockServices& services) {
  x86::Assembler& a = d.b.a;
  for (PendingExit& pe : d.b.exits) {
    a.bind(pe.stub);
    // An exit in the middle of a count segment: its lea counted instructions that did not
    // run. Such an exit is never chained: a chained jump would skip this correction.
    const uint32_t counted = pe.segment == kNoSegment ? 0 : d.segment_end[pe.segment];
    if (counted != pe.retired) {
      a.lea(x86::r14, x86::ptr(x86::r14, -static_cast<int32_t>(counted - pe.retired)));
      pe.patchable = false;
    }
    a.mov(guest_eip_field(), pe.target_eip);
    d.b.note(CodeFixup::Kind::Eip, pe.target_eip);
    emit_leave(d, services, pe.kind, pe.target_eip);
  }
}

/// Checked entry (where the inline indirect table leads; emitted last because only now is
/// it known whether the block depends on the unsalted mode bits (rdtsc), which the table's
/// salt leaves out): does this EIP's page still map to the block's guest-physical page in
/// this address space, and, if the block depends on them, are those bits the same?
/// Flag-neutral: lea + jecxz.
void emit_checked_entry(BlockDraft& d, const BlockServices& services) {
  x86::Assembler& a = d.b.a;
  const Block& block = *d.block;
  const BlockKey& key = block.key;
  d.checked_entry = a.newLabel();
  d.mode_entry = a.newLabel();
  const Label miss = a.newLabel(), hit = a.newLabel(), mode_check = a.newLabel();
  const LinearPage linear_page = GuestLinear{key.eip}.page();
  const uint32_t tag = CodeTlb::tag(linear_page, key.phys.page());
  const bool user = (key.mode & tmode::Cpl3) != 0;
  a.bind(d.checked_entry);
  a.mov(x86::r8, x86::rcx);
  a.mov(x86::ecx, x86::dword_ptr(x86::r15, CodeTlb::entry_offset(user, linear_page)));
  d.b.note(CodeFixup::Kind::CodeTlbOffset, static_cast<uint32_t>(CodeTlb::entry_offset(user, linear_page)));
  a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - tag)));
  d.b.note(CodeFixup::Kind::CodeTlbTag, 0u - tag);
  if (block.has_second_page) {
    d.b.relocatable = false;  // its second page need not move with the first
    const Label first_ok = a.newLabel();
    const LinearPage second = block.second_linear_page;
    const uint32_t tag2 = CodeTlb::tag(second, block.last_page);
    a.jecxz(x86::rcx, first_ok);
    a.jmp(miss);
    a.bind(first_ok);
    a.mov(x86::ecx, x86::dword_ptr(x86::r15, CodeTlb::entry_offset(user, second)));
    a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - tag2)));
  }
  a.jecxz(x86::rcx, d.b.mode_sensitive ? mode_check : hit);
  a.jmp(miss);
  if (d.b.mode_sensitive) {
    // Chained jumps from blocks that may run in another mode come in here: same page, so
    // only the mode needs checking.
    a.bind(d.mode_entry);
    a.mov(x86::r8, x86::rcx);
    a.bind(mode_check);
    a.mov(x86::ecx, x86::dword_ptr(x86::r15, static_cast<int32_t>(offsetof(ExecContext, mode))));
    a.lea(x86::ecx, x86::ptr(x86::rcx, static_cast<int32_t>(0u - key.mode)));
    a.jecxz(x86::rcx, hit);
  }
  a.bind(miss);
  a.mov(x86::rcx, x86::r8);
  a.mov(guest_eip_field(), key.eip);
  d.b.note(CodeFixup::Kind::Eip, key.eip);
  emit_leave(d, services, ExitKind::CodeTlbMiss, 0);
  a.bind(hit);
  a.mov(x86::rcx, x86::r8);
  a.jmp(d.main_entry);
}

/// What needs the final address of the placed code: the count segments' sizes, the
/// exits' stubs and patchable jumps, the block's entries; and the callout sites' counts.
void finish_placed(BlockDraft& d, const BlockServices& services, uint8_t* code) {
  Block& block = *d.block;
  const BlockBuilder& b = d.b;
  for (size_t i = 0; i < d.segment_patch.size(); ++i) {
    const uint32_t count = d.segment_end[i] - (i ? d.segment_end[i - 1] : 0);
    std::memcpy(services.cache.writable(code + d.segment_patch[i]), &count, 4);
  }
  for (auto& site : block.callouts) {
    const auto at = std::find_if(block.pc_map.begin(), block.pc_map.end(),
                                 [&](const PcMapEntry& m) { return m.guest_eip == site->eip; });
    site->insns_after = at->counted - at->retired_before - 1;
  }
  for (size_t i = 0; i < b.exits.size(); ++i) {
    ExitRecord* rec = block.exits[i].get();
    rec->stub = d.emission.address_of(code, b.exits[i].stub);
    if (b.exits[i].patchable) rec->patch_rel32 = d.emission.address_of(code, b.exits[i].after_jump) - 4;
  }
  block.host_code = code;
  block.checked_entry = d.emission.address_of(code, d.checked_entry);
  block.mode_sensitive = b.mode_sensitive;
  block.mode_entry = b.mode_sensitive ? d.emission.address_of(code, d.mode_entry) : block.host_code;
}

/// Keeps the block's fixups if each noted field holds what it was noted with (asmjit may
/// have chosen a shorter form: then the block is simply not relocatable).
void keep_fixups(Block& block, const BlockBuilder& b, const asmjit::CodeHolder& holder, const uint8_t* code) {
  block.relocatable = b.relocatable;
  if (!block.relocatable) return;
  // asmjit's own list of what depends on the code's address must be the calls and jumps
  // to the trampolines that were noted, nothing else (an absolute label address would
  // point into the source block from a copy).
  size_t host_targets = 0;
  for (const BlockBuilder::NotedFixup& f : b.fixups) host_targets += f.fixup.kind == CodeFixup::Kind::HostTarget;
  size_t relocations = 0;
  for (const asmjit::RelocEntry* r : holder.relocEntries()) {
    if (r->relocType() == asmjit::RelocType::kNone) continue;
    if (r->relocType() != asmjit::RelocType::kAbsToRel && r->relocType() != asmjit::RelocType::kX64AddressEntry) {
      block.relocatable = false;
      return;
    }
    ++relocations;
  }
  if (relocations != host_targets) {
    block.relocatable = false;
    return;
  }
  block.fixups.reserve(b.fixups.size());
  for (const BlockBuilder::NotedFixup& f : b.fixups) {
    if (f.fixup.kind != CodeFixup::Kind::HostTarget) {
      const uint32_t width = f.fixup.width();
      uint64_t held = 0;
      std::memcpy(&held, code + f.fixup.end - width, width);
      if (held != (width == 8 ? f.value : f.value & 0xFFFFFFFFu)) {
        block.relocatable = false;
        block.fixups.clear();
        return;
      }
    }
    block.fixups.push_back(f.fixup);
  }
}

}  // namespace

TranslateStatus emit_block(BlockDraft& d, const BlockServices& services, Block** out) {
  BlockBuilder& b = d.b;
  Block& block = *d.block;
  if (block.verifies_code) {
    b.relocatable = false;  // the code check compares bytes at its own linear address
    block.code_check_offset = static_cast<uint32_t>(b.a.offset());
    b.a.bind(d.check_code);
    b.retired_after = 0;  // nothing counted yet on this path
    b.segment = kNoSegment;
    emit_code_check(b, block.key.eip, d.first_bytes, d.end_eip - block.key.eip, d.body);
  }
  emit_exit_stubs(d, services);
  block.stub_exits = static_cast<uint32_t>(block.exits.size());
  emit_checked_entry(d, services);
  if (b.indirect_used) {
    b.a.bind(b.indirect_exit);
    emit_leave(d, services, ExitKind::Indirect, 0);
  }

  const auto code_bytes = static_cast<uint32_t>(b.a.offset());  // without section padding
  size_t size = 0;
  uint8_t* code = d.emission.place(services.cache, &size);
  if (!code) return TranslateStatus::CacheFull;
  finish_placed(d, services, code);
  block.host_size = code_bytes;
  block.placed_size = static_cast<uint32_t>(size);
  keep_fixups(block, b, d.emission.code, code);
  block.guest_size = d.end_eip - block.key.eip;
  block.guest_insns = d.retired;
  block.host_pointer_sites = std::move(b.host_pointer_sites);
  services.stats.blocks_translated++;
  services.stats.guest_insns_translated += d.insns;
  *out = services.cache.insert(std::move(d.block));
  return TranslateStatus::Ok;
}

}  // namespace vmm86
