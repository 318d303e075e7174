#include "translator/translator.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "translator/block_translation.h"

namespace vmm86 {

Translator::Translator(ExecContext& ctx, size_t cache_bytes)
    : ctx_(ctx), cache_(cache_bytes), code_tlb_(ctx), indirect_(ctx) {}

Translator::~Translator() = default;

Status Translator::init() {
  if (!cache_.ok()) {
    return make_error("cannot allocate the code cache ({} KiB): {}", cache_.capacity_asked() >> 10, cache_.failure());
  }
  if (!indirect_.ok()) {
    return make_error("cannot allocate the indirect-branch table ({} KiB)",
                      (sizeof(IndirectEntry) << indirect_.index_bits()) >> 10);
  }
  if (!trampolines_.generate(cache_, ctx_, indirect_.index_bits())) {
    return make_error("the code cache ({} KiB) has no room for the trampolines", cache_.capacity() >> 10);
  }
  cache_.mark_permanent();
  return ok_status();
}

void Translator::update_segment_code_bases() {
  // FS/GS (per-CPU data, TLS) have a base that changes at run time but no useful limit:
  // translated fs:/gs: operands add the base; anything else about them is the interpreter's.
  auto usable = [](const SegmentCache& s) {
    const bool base_only = s.selector > 3 && s.present() && !s.is_system() && !s.is_code() && (s.type() & 2) &&
                           !s.expand_down() && s.limit == 0xFFFFFFFFu;
    return base_only;
  };
  const SegReg segs[2] = {SegReg::Fs, SegReg::Gs};
  for (int i = 0; i < 2; ++i) {
    const SegmentCache& s = ctx_.cpu.sreg(segs[i]);
    ctx_.segment_code_base[i] = usable(s) ? s.base : 0;
    ctx_.segment_code_guard[i] = usable(s) ? 0 : kUnusableSegmentBase;
  }
}

uint32_t Translator::current_mode() const {
  const CpuState& cpu = ctx_.cpu;
  if (!cpu.protected_mode() || cpu.v86_mode()) return kNotTranslatable;
  const SegmentCache& cs = cpu.sreg(SegReg::Cs);
  const uint8_t cpl = cpu.cpl();
  // Translated code does not check EIP against the CS limit: only a 4 GiB CS runs translated.
  if (!cs.default_big() || cs.base != 0 || cs.limit != 0xFFFFFFFFu || (cpl != 0 && cpl != 3)) return kNotTranslatable;
  // Single-stepping traps after every instruction: the interpreter does that.
  if (cpu.eflags & flags::TF) return kNotTranslatable;
  uint32_t mode = tmode::Code32 | (cpl == 3 ? tmode::Cpl3 : 0);
  // Window accesses check nothing but the page: a segment is flat only if no access
  // through it within 4 GiB can fault for segment reasons (null, read-only, expand-down).
  auto flat = [](const SegmentCache& s) {
    return s.present() && !s.is_system() && !s.is_code() && (s.type() & 2) && !s.expand_down() && s.base == 0 &&
           s.limit == 0xFFFFFFFFu;
  };
  const SegmentCache& ss = cpu.sreg(SegReg::Ss);
  if (flat(cpu.sreg(SegReg::Ds)) && flat(cpu.sreg(SegReg::Es)) && flat(ss) && ss.default_big()) {
    mode |= tmode::FlatData;
  }
  if (cs.type() & 2) mode |= tmode::ReadableCs;
  if (cpu.msr.tsc_offset == 0 && (!(cpu.cr4 & cr4::TSD) || cpl == 0)) mode |= tmode::HostTsc;
  if (cpu.cr0 & (cr0::TS | cr0::EM)) mode |= tmode::FpuTraps;
  if (!(cpu.cr4 & cr4::OSFXSR)) mode |= tmode::NoSse;
  return mode;
}

TranslateStatus Translator::block_for_current(CodeSource& source, Block** out) {
  const uint32_t mode = current_mode();
  if (mode == kNotTranslatable) return TranslateStatus::NeedsInterpreter;
  CodeSource::Bytes bytes;
  const GuestLinear eip{ctx_.cpu.eip};  // CS is flat in every translatable mode
  if (!source.fetch(eip, &bytes)) return TranslateStatus::NeedsInterpreter;
  const BlockKey key{bytes.phys, ctx_.cpu.eip, mode};
  code_tlb_.fill((mode & tmode::Cpl3) != 0, eip, bytes.phys, bytes.global, bytes.large);
  Block* b = cache_.find(key);
  if (!b) {
    const TranslateStatus st = translate(source, key, &b);
    if (st != TranslateStatus::Ok) return st;
  }
  if (b->has_second_page) {
    // Its entry checks that page too: it must map to where the block's code came from.
    CodeSource::Bytes second;
    const GuestLinear second_linear = b->second_linear_page.address();
    if (!source.fetch(second_linear, &second) || second.phys.page() != b->last_page) {
      return TranslateStatus::NeedsInterpreter;  // not present (#PF) or other code there
    }
    code_tlb_.fill((mode & tmode::Cpl3) != 0, second_linear, second.phys, second.global, second.large);
  }
  *out = b;
  return TranslateStatus::Ok;
}

ExitRecord* Translator::enter(const Block* block) { return enter_at(block->dispatch_entry()); }

ExitRecord* Translator::enter_at(const uint8_t* host_code) {
  ++stats_.enters;
  ExitRecord* exit = trampolines_.enter()(&ctx_, host_code);
  if (exit->kind == ExitKind::Indirect) ++stats_.indirect_misses;
  if (exit->kind == ExitKind::CodeTlbMiss) ++stats_.code_tlb_misses;
  return exit;
}

Block* Translator::try_chain(ExitRecord* exit, CodeSource& source) {
  Block* target = nullptr;
  if (block_for_current(source, &target) != TranslateStatus::Ok) return nullptr;
  if (exit->kind != ExitKind::Direct || exit->chained_to || !exit->from || !exit->from->valid) return target;
  // The jump happens without the dispatcher looking at the vCPU state again. A block that
  // does not depend on the unsalted mode bits (rdtsc) runs in any mode with the same other bits (the
  // source runs only in such modes); one that does is entered directly only from a block
  // of exactly its mode, from others through its mode check.
  const Block& from = *exit->from;
  if (salted_mode(from.key.mode) != salted_mode(target->key.mode) || target->key.eip != exit->target_eip) return target;
  // Another page may map to other code in another address space: a jump to another page
  // enters through the checked entry, which compares the target page's code TLB entry
  // (and leaves for the dispatcher where that page holds other code). So does a block whose
  // last instruction ends on the next page: it compares that page's mapping too.
  const bool same_page = ((exit->target_eip ^ from.key.eip) >> kPageShift) == 0;
  const bool direct = !target->mode_sensitive || (from.mode_sensitive && from.key.mode == target->key.mode);
  const uint8_t* entry = !same_page || target->has_second_page ? target->checked_entry
                         : direct                              ? target->host_code
                                                               : target->mode_entry;
  if (cache_.chain(exit, target, entry)) {
    ++stats_.chains;
  }
  return target;
}

bool Translator::in_code_cache(const void* host_pc) const { return cache_.block_at(host_pc) != nullptr; }

bool Translator::locate(const void* host_pc, GuestLocation* out) const {
  const Block* b = cache_.block_at(host_pc);
  return b && translate_back(*b, static_cast<uint32_t>(static_cast<const uint8_t*>(host_pc) - b->host_code), out);
}

void Translator::remember_indirect_target(uint32_t eip, const Block* block) { indirect_.remember(eip, *block); }

void Translator::invalidate_block(Block* block) {
  if (!block->valid) return;
  indirect_.forget(*block);
  cache_.invalidate(block);
  ++stats_.invalidated_blocks;
}

size_t Translator::invalidate_page(PhysPage phys_page) {
  if (const std::vector<Block*>* blocks = cache_.blocks_on_page(phys_page)) {
    for (const Block* b : *blocks) indirect_.forget(*b);
  }
  const size_t n = cache_.invalidate_page(phys_page);
  stats_.invalidated_blocks += n;
  return n;
}

void Translator::flush() {
  cache_.flush();
  indirect_.clear();
}

BlockServices Translator::block_services() {
  return BlockServices{cache_, trampolines_, stats_, ctx_.callout != nullptr};
}

const Block* Translator::relocation_source(CodeSource& source, const BlockKey& key) {
  const std::vector<Block*>* blocks = cache_.blocks_on_page(key.phys.page());
  if (!blocks) return nullptr;
  for (const Block* b : *blocks) {
    if (!relocatable_to(*b, key)) continue;
    // A page that lost its write protection since (volatile code) gets checking blocks.
    CodeSource::Bytes first;
    if (!source.fetch(GuestLinear{key.eip}, &first) || first.verify) return nullptr;
    return b;
  }
  return nullptr;
}

TranslateStatus Translator::translate(CodeSource& source, const BlockKey& key, Block** out) {
  const Block* twin = relocation_ ? relocation_source(source, key) : nullptr;
  if (twin && !check_relocations_) {
    return relocate_block(*twin, key, block_services(), out);
  }
  const TranslateStatus st = translate_fresh(source, key, out);
  if (twin && st == TranslateStatus::Ok) {
    const std::unique_ptr<Block> copy = relocated_copy(*twin, key, cache_);
    const std::string difference = copy ? relocation_difference(**out, *copy) : std::string();
    if (!difference.empty()) {
      std::fprintf(stderr, "vmm86: relocation check: %s (copied from EIP %#x)\n", difference.c_str(), twin->key.eip);
      std::abort();
    }
  }
  return st;
}

TranslateStatus Translator::translate_fresh(CodeSource& source, const BlockKey& key, Block** out) {
  const BlockConfig config{.mode = key.mode,
                           .eip = key.eip,
                           .count_indirect = count_indirect_,
                           .indirect_index_bits = indirect_.index_bits(),
                           .return_mismatch = return_prediction_ ? trampolines_.return_mismatch() : nullptr};
  BlockDraft draft(key, config);
  const BlockServices services = block_services();
  if (!scan_block(draft, source, services)) return TranslateStatus::NeedsInterpreter;
  return emit_block(draft, services, out);
}

}  // namespace vmm86
