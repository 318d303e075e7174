// The binary translator (DESIGN.md §4): the translation mode of the vCPU state, block
// lookup and translation (block_translation.h), entering translated code (trampolines.h),
// the chaining of direct exits, the inline indirect table (indirect_table.h) and
// invalidation.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "common/result.h"
#include "translator/code_cache.h"
#include "translator/code_source.h"
#include "translator/code_tlb.h"
#include "translator/exec_context.h"
#include "translator/indirect_table.h"
#include "translator/trampolines.h"
#include "translator/translate_back.h"
#include "translator/translation_mode.h"

namespace vmm86 {

enum class TranslateStatus : uint8_t {
  Ok,
  NeedsInterpreter,  ///< the first instruction cannot be translated: interpret it
  CacheFull,         ///< flush and retry
};

struct BlockServices;  // block_translation.h

/// Counters the translator keeps (printed by --stats).
struct TranslatorStats {
  uint64_t blocks_translated = 0;
  uint64_t guest_insns_translated = 0;
  uint64_t chains = 0;
  uint64_t indirect_misses = 0;
  uint64_t code_tlb_misses = 0;  ///< checked entries whose page the code TLB did not confirm
  uint64_t invalidated_blocks = 0;
  uint64_t enters = 0;
  uint64_t callout_sites = 0;     ///< instructions translated as callouts
  uint64_t blocks_relocated = 0;  ///< blocks copied from a translation at another EIP (not in blocks_translated)
  /// Blocks put in the cache, translated or copied.
  [[nodiscard]] uint64_t blocks_made() const { return blocks_translated + blocks_relocated; }
};

class Translator {
 public:
  Translator(ExecContext& ctx, size_t cache_bytes);
  /// Count every inline indirect-table lookup (a few instructions per indirect branch;
  /// for --stats). Applies to blocks translated afterwards.
  void count_indirect_lookups(bool on) { count_indirect_ = on; }
  /// Return prediction: guest call/ret as host call/ret (ExecContext::return_stack_top).
  /// On by default; blocks translated from now on follow the setting.
  void predict_returns(bool on) { return_prediction_ = on; }
  /// Relocation: a block whose guest-physical code and mode were translated at another EIP
  /// is copied from that translation (block_relocation.cpp). On by default.
  void relocate_blocks(bool on) { relocation_ = on; }
  /// Self-check of relocation: every block that could be copied is translated afresh
  /// instead and compared with the copy; a difference aborts with the block's EIP. For
  /// tests and VMM86_CHECK_RELOCATION=1 runs.
  void check_relocations(bool on) { check_relocations_ = on; }
  ~Translator();
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  /// Generates the trampolines. Must succeed before anything else is used; the error says
  /// which host resource was refused and why.
  [[nodiscard]] Status init();

  /// The translation mode of the current vCPU state, or nullopt-like 0xFFFFFFFF when the
  /// state cannot run translated (real/v86 mode, 16-bit code, CPL 1/2).
  [[nodiscard]] uint32_t current_mode() const;
  static constexpr uint32_t kNotTranslatable = 0xFFFFFFFFu;
  /// Sets ExecContext::segment_code_base from the FS and GS caches (before entering
  /// translated code, whenever they may have changed).
  void update_segment_code_bases();

  /// Finds or translates the block at the current EIP.
  [[nodiscard]] TranslateStatus block_for_current(CodeSource& source, Block** out);
  /// Runs translated code from `block` until it exits; returns the exit taken.
  ExitRecord* enter(const Block* block);
  /// Runs translated code from a checked entry (what indirect_target() returns).
  ExitRecord* enter_at(const uint8_t* host_code);
  /// Chains a direct exit to its target block (translating it if needed); returns the
  /// target block at the current EIP, chained or not, or nullptr if there is none.
  Block* try_chain(ExitRecord* exit, CodeSource& source);
  /// Records an indirect-branch target in the inline table.
  void remember_indirect_target(uint32_t eip, const Block* block);
  /// The checked entry the inline table holds for `eip` in the current mode, or nullptr.
  /// What the dispatcher tries before walking the guest's tables and the block map.
  [[nodiscard]] const uint8_t* indirect_target(uint32_t eip) const { return indirect_.target(eip); }
  /// Drops the inline-table entry for `eip` (its page does not hold executable code now).
  void forget_indirect_target(uint32_t eip) { indirect_.forget(eip); }
  /// A block whose code changed (a Stale exit): drop it and any inline-table entry to it.
  void invalidate_block(Block* block);
  /// Which guest-physical page each linear code page maps to (for checked entries).
  [[nodiscard]] CodeTlb& code_tlb() { return code_tlb_; }
  [[nodiscard]] const CodeTlb& code_tlb() const { return code_tlb_; }

  /// For the fault handler: where a host PC in a block is in guest terms (translate_back).
  /// False if the PC is not in a block.
  [[nodiscard]] bool locate(const void* host_pc, GuestLocation* out) const;
  [[nodiscard]] bool in_code_cache(const void* host_pc) const;
  /// Where the fault handler sends translated code that must leave.
  [[nodiscard]] const uint8_t* exit_trampoline() const { return trampolines_.exit(); }
  [[nodiscard]] ExitRecord* fault_exit() { return &fault_exit_; }
  [[nodiscard]] ExitRecord* poll_exit() { return &poll_exit_; }
  /// The exit a callout returns to leave the block.
  [[nodiscard]] ExitRecord* callout_exit() { return &callout_exit_; }

  /// A write to a guest-physical page: drop its blocks. Returns how many.
  size_t invalidate_page(PhysPage phys_page);
  void flush();
  /// Frees dropped blocks (CodeCache::reclaim): the dispatcher calls it between entries.
  void reclaim() { cache_.reclaim(); }

  [[nodiscard]] const TranslatorStats& stats() const { return stats_; }
  [[nodiscard]] const CodeCache& cache() const { return cache_; }
  [[nodiscard]] CodeCache& cache() { return cache_; }

 private:
  /// Scans and emits a new block (block_translation.h).
  [[nodiscard]] TranslateStatus translate(CodeSource& source, const BlockKey& key, Block** out);
  /// A translation of the same guest-physical code and mode at another EIP that `key` can
  /// be copied from, or nullptr.
  /// What a translation or a relocation uses of the Translator (block_translation.h).
  [[nodiscard]] BlockServices block_services();
  [[nodiscard]] TranslateStatus translate_fresh(CodeSource& source, const BlockKey& key, Block** out);
  [[nodiscard]] const Block* relocation_source(CodeSource& source, const BlockKey& key);

  ExecContext& ctx_;
  CodeCache cache_;
  CodeTlb code_tlb_;
  IndirectTable indirect_;
  Trampolines trampolines_;
  TranslatorStats stats_;
  bool count_indirect_ = false;
  bool return_prediction_ = true;
  bool relocation_ = true;
  bool check_relocations_ = false;
  ExitRecord fault_exit_{ExitKind::Fault};
  ExitRecord poll_exit_{ExitKind::Poll};
  ExitRecord callout_exit_{ExitKind::Callout};
};

}  // namespace vmm86
