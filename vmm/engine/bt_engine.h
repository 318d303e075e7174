// The binary-translation engine's dispatcher (DESIGN.md §4; STYLE.md #7). Equivalent C:
//
//   for (;;) {
//     if (stop or halted or an interrupt can be delivered) return to the machine;
//     block = lookup(phys(cpu.eip), mode) ?: translate(cpu.eip);
//     if (!block) { interpreter.step(); continue; }      // untranslatable instruction
//     exit = enter(block);                               // runs chained blocks
//     switch (exit.kind) {
//       Direct:    chain(exit, lookup(cpu.eip));         // next time: no dispatcher
//       Indirect:  remember(cpu.eip) in the inline table;
//       Interpret, Fault: interpreter.step();           // slow path, precise state
//       Poll:      return to the machine (timers, interrupts);
//     }
//   }
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "common/result.h"
#include "decoder/decoder.h"
#include "shadow-mmu/shadow_mmu.h"
#include "translator/translator.h"
#include "vmm/engine/code_tlb_prefetch.h"
#include "vmm/engine/coherence.h"
#include "vmm/engine/engine_state.h"
#include "vmm/engine/exit_handler.h"
#include "vmm/engine/fault_handler.h"
#include "vmm/engine/guest_code_source.h"
#include "vmm/engine/smc_policy.h"
#include "vmm/engine/verifier.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

class BtEngine final : private ExitServices {
 public:
  BtEngine(ExecContext& ctx, GuestMemory& mem, ShadowMmu& mmu, Interpreter& interp, size_t cache_bytes);

  /// Generates the translator's trampolines and installs the host fault handler.
  [[nodiscard]] Status init();
  /// Runs until one of EngineStop happens or `max_dispatches` block entries passed.
  /// `interrupt_deliverable` is asked before every block entry. It should also store in
  /// cpu.pending.external_interrupt whether the interrupt controller asserts INTR: the
  /// engine sets it to true before asking, and translated sti/popf that enable interrupts
  /// while it is true leave translated code (a slow-path round trip each).
  [[nodiscard]] EngineStop run(uint64_t max_dispatches, bool (*interrupt_deliverable)(void*), void* opaque);

  /// A write to guest-physical memory made outside translated code (interpreter, devices).
  void physical_write(GuestPhys addr, unsigned size) { smc_.physical_write(addr, size); }
  [[nodiscard]] SmcPolicy& smc_policy() { return smc_; }
  /// Another vCPU wrote a page this vCPU has blocks on (SMP): they go before it runs on.
  void foreign_code_write(PhysPage page) { smc_.foreign_write(page); }
  /// Brings the translation caches in line with CR0/CR3/CR4 when their values changed.
  void sync_paging() { coherence_.sync(); }
  /// The guest wrote CR0/CR3/CR4 (CpuHooks::paging_written): a same-value CR3 write
  /// still flushes the non-global mappings.
  void paging_written() { coherence_.paging_written(); }
  /// The guest executed INVLPG (CpuHooks::page_invalidated).
  void invlpg(GuestLinear linear) { coherence_.invlpg(linear); }
  /// What guest-physical [start, start + size) is (RAM, ROM) or holds changed under the
  /// guest (the BIOS shadow-RAM control): every cache of it forgets it.
  void physical_map_changed(GuestPhys start, uint64_t size);

  /// The self-checking mode (--verify): one block entry in `period` is also run by a
  /// shadow interpreter and the results compared (BlockVerifier); the first difference
  /// stops the engine with EngineStop::Unimplemented and the report in detail().
  [[nodiscard]] Status enable_verification(uint32_t period, CpuHooks& hooks);
  /// Null unless verification is on.
  [[nodiscard]] const BlockVerifier* verifier() const { return verifier_.get(); }

  /// Decode each instruction the interpreter runs to count it by mnemonic (--stats). Off by
  /// default: the decode costs about half of a slow-path round trip.
  void count_interpreted_mnemonics(bool on) { count_mnemonics_ = on; }
  /// Makes run() return Budget before its next dispatch (async-signal-safe; the machine's
  /// host timer and SIGTERM call it along with request_exit()).
  void request_stop() { stop_requested_.store(true, std::memory_order_relaxed); }

  /// Called with every block translated while the engine runs (for --trace).
  using BlockObserver = std::function<void(const Block& block, std::span<const uint8_t> guest_code)>;
  void set_block_observer(BlockObserver observer) { block_observer_ = std::move(observer); }

  [[nodiscard]] Translator& translator() { return translator_; }
  [[nodiscard]] const Translator& translator() const { return translator_; }
  /// Where the translator reads guest code from (translating through it watches the pages).
  [[nodiscard]] GuestCodeSource& code_source() { return code_; }
  [[nodiscard]] const BtEngineStats& stats() const { return stats_; }
  [[nodiscard]] const FaultStats& fault_stats() const { return active_.stats; }
  [[nodiscard]] const std::string& detail() const { return detail_; }

 private:
  // ExitServices, for handle_exit.
  Block* chain(ExitRecord& exit) override;
  Block* find_block() override;
  void remember_target(const Block& block) override { translator_.remember_indirect_target(ctx_.cpu.eip, &block); }
  void forget_target() override { translator_.forget_indirect_target(ctx_.cpu.eip); }
  void prefill_code_tlb_around() override { prefetch_.prefill_around(ctx_.cpu.eip); }
  [[nodiscard]] bool interpret_one(EngineStop* stop) override;
  [[nodiscard]] uint64_t unmappable_accesses() const override { return interp_.unmappable_accesses(); }
  void invalidate_block(Block* block) override { translator_.invalidate_block(block); }
  void clear_poll_request() override { clear_exit_request(&ctx_); }
  std::optional<EngineStop> take_callout_stop() override { return std::exchange(callout_stop_, std::nullopt); }

  void count_mnemonic(std::array<uint64_t, ZYDIS_MNEMONIC_MAX_VALUE + 1>& counts);
  /// The interpreter caches whether a page is watched for code writes: once any vCPU has
  /// taken a new page for code (the code-page set's generation moved), that cache goes
  /// before the interpreter runs an instruction for this engine.
  void sync_interpreter_watch();
  /// Runs the instruction of a callout site in the interpreter; nullptr to go on with the block.
  ExitRecord* run_callout(const CalloutSite& site);
  /// Finds or translates the block at the current EIP, telling the observer about new ones.
  [[nodiscard]] TranslateStatus lookup(Block** out);
  void report_new_block(uint64_t translated_before);
  /// Hands a newly translated block and its guest code to the observer, if any.
  void notify_observer(const Block& block);
  /// Runs `block` alone under the verifier (the shadow interpreter first, then translated,
  /// stopped at the next block's prologue) and handles its exit. False when the engine
  /// must stop (`*stop`).
  [[nodiscard]] bool run_verified(Block* block, EngineStop* stop);
  void select_window();
  /// The instruction that took a guest #PF runs again (PendingRefill): fills its page.
  void refill_after_page_fault();
  /// The inline table's keys include the translation mode (CPL, flat or based DS...): a
  /// block translated for one mode must not be entered in another. Address spaces need no
  /// salt: checked entries compare the code TLB.
  void apply_lookup_salt(uint32_t mode) {
    const uint32_t space = coherence_.global_salt();
    if (mode == salted_mode_ && space == salted_space_) return;
    salted_mode_ = mode;
    salted_space_ = space;
    ctx_.mode = mode;
    ctx_.lookup_salt = space ^ (salted_mode(mode) * 0x5BD1E995u);
  }

  /// run()'s callback, for callouts (run_callout) to ask after each instruction.
  bool (*interrupt_deliverable_)(void*) = nullptr;
  void* deliverable_opaque_ = nullptr;
  ExecContext& ctx_;
  GuestMemory& mem_;
  ShadowMmu& mmu_;
  Interpreter& interp_;
  Translator translator_;
  ActiveEngine active_{};
  BtEngineStats stats_{};
  uint64_t gs_base_ = 0;
  uint64_t code_generation_seen_ = 0;
  uint32_t salted_mode_ = Translator::kNotTranslatable;
  uint32_t salted_space_ = 0;
  std::string detail_;
  std::optional<EngineStop> callout_stop_;  ///< a callout's instruction stopped the machine
  std::atomic<bool> stop_requested_{false};
  std::unique_ptr<BlockVerifier> verifier_;
  PendingRefill refill_;
  BlockObserver block_observer_;
  bool count_mnemonics_ = false;
  SmcPolicy smc_;
  GuestCodeSource code_;
  CodeTlbPrefetch prefetch_;
  TranslationCoherence coherence_;
};

}  // namespace vmm86
