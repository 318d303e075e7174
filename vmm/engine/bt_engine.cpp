#include "vmm/engine/bt_engine.h"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace vmm86 {

namespace {

/// Points the host GS base at a window: wrgsbase when the host kernel allows it in user
/// mode (Linux 5.9+ on CPUs with FSGSBASE; a few cycles), else arch_prctl (a system call).
void set_gs_base(uint64_t base) {
#ifndef HWCAP2_FSGSBASE
  constexpr unsigned long HWCAP2_FSGSBASE = 1ul << 1;
#endif
  static const bool wrgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
  if (wrgsbase) {
    asm volatile("wrgsbase %0" : : "r"(base) : "memory");
  } else {
    syscall(SYS_arch_prctl, ARCH_SET_GS, base);
  }
}

}  // namespace

BtEngine::BtEngine(ExecContext& ctx, GuestMemory& mem, ShadowMmu& mmu, Interpreter& interp, size_t cache_bytes)
    : ctx_(ctx),
      mem_(mem),
      mmu_(mmu),
      interp_(interp),
      translator_(ctx, cache_bytes),
      smc_(mmu, translator_, interp, stats_),
      code_(mem, ctx.cpu, smc_),
      prefetch_(mem, ctx.cpu, mmu, translator_.code_tlb()),
      coherence_(ctx.cpu, mmu, translator_.code_tlb(), prefetch_, interp) {
  active_.translator = &translator_;
  active_.mmu = &mmu_;
  active_.ctx = &ctx_;
}

Status BtEngine::init() {
  ctx_.callout = [](ExecContext* ctx, const CalloutSite* site) {
    return static_cast<BtEngine*>(ctx->callout_opaque)->run_callout(*site);
  };
  ctx_.callout_opaque = this;
  VMM86_TRY(translator_.init());
  return install_fault_handler();
}

ExitRecord* BtEngine::run_callout(const CalloutSite& site) {
  ++stats_.callouts;
  if (count_mnemonics_) count_mnemonic(stats_.callouts_by_mnemonic);
  const TranslatorStats& t = translator_.stats();
  const uint64_t invalidated_before = t.invalidated_blocks, flushes_before = translator_.cache().flush_count();
  const uint64_t tlb_clears_before = translator_.code_tlb().clears();
  sync_interpreter_watch();
  const StepStatus status = interp_.step();
  translator_.update_segment_code_bases();
  const CpuState& cpu = ctx_.cpu;
  const Block& block = *site.block;
  const CodeTlb& tlb = translator_.code_tlb();
  const bool user = (block.key.mode & tmode::Cpl3) != 0;
  // Go on with the block only if it is still what runs next: the instruction completed and
  // fell through, the mode, the window (a CR3 write selects the new address space's) and
  // the block's page mapping are as it was translated for, no block was dropped (this one
  // may have been), and nothing waits for the dispatcher. No code TLB entry may have gone
  // either: the landings of the host calls on the return stack go on into their callers'
  // blocks unchecked, and leaving empties that stack.
  const bool go_on = status == StepStatus::Retired && cpu.eip == site.next_eip && !cpu.halted &&
                     cpu.pending.interrupt_shadow == 0 && translator_.current_mode() == ctx_.mode &&
                     reinterpret_cast<uint64_t>(mmu_.window(cpu.cpl() == 3).base()) == gs_base_ &&
                     t.invalidated_blocks == invalidated_before &&
                     translator_.cache().flush_count() == flushes_before && tlb.clears() == tlb_clears_before &&
                     tlb.confirms(user, GuestLinear{block.key.eip}.page(), block.first_page) &&
                     (!block.has_second_page || tlb.confirms(user, block.second_linear_page, block.last_page));
  // The block's prologue counted this instruction as translated; the interpreter counts it
  // (if it retired). Leaving, the rest of the block did not run either.
  ctx_.retired -= 1;
  // An interrupt the instruction made deliverable (an out to a device, a write to the
  // interrupt controller) is taken right after it, as the interpreter does: leave. Asked
  // even with IF clear: the callback refreshes cpu.pending.external_interrupt, which a
  // translated sti later in this block reads to decide whether it must leave (an out that
  // raised a request, then sti; hlt: the request waits out sti's shadow).
  const bool deliverable = interrupt_deliverable_ && interrupt_deliverable_(deliverable_opaque_);
  // A stop request (another vCPU changed code this one may run, the host timer) leaves too.
  if (go_on && !deliverable && !stop_requested_.load(std::memory_order_relaxed)) return nullptr;
  ctx_.retired -= site.insns_after;
  switch (status) {
    case StepStatus::TripleFault: callout_stop_ = EngineStop::TripleFault; break;
    case StepStatus::Unimplemented:
    case StepStatus::Unsupported:
    case StepStatus::Stopped:
      detail_ = interp_.detail();
      callout_stop_ = EngineStop::Unimplemented;
      break;
    default: break;
  }
  return translator_.callout_exit();
}

void BtEngine::sync_interpreter_watch() {
  const uint64_t generation = mmu_.code_pages().generation();
  if (generation == code_generation_seen_) return;
  code_generation_seen_ = generation;
  interp_.flush_tlb();
}

void BtEngine::count_mnemonic(std::array<uint64_t, ZYDIS_MNEMONIC_MAX_VALUE + 1>& counts) {
  CodeSource::Bytes bytes;
  const uint32_t linear = ctx_.cpu.sreg(SegReg::Cs).base + ctx_.cpu.eip;
  if (!ctx_.cpu.protected_mode() || !code_.read_code(GuestLinear{linear}, &bytes)) return;
  Instruction insn;
  const Decoder decoder(ctx_.cpu.sreg(SegReg::Cs).default_big() ? CodeSize::Bits32 : CodeSize::Bits16);
  if (decoder.decode({bytes.host, bytes.available}, &insn) == DecodeStatus::Ok) ++counts[insn.mnemonic()];
}

void BtEngine::physical_map_changed(GuestPhys start, uint64_t size) {
  if (size == 0) return;
  const PhysPage last = GuestPhys{start.value + size - 1}.page();
  for (PhysPage page = start.page(); page <= last; ++page.value) {
    // Blocks translated from ROM pages are not write-watched: drop them by page.
    translator_.invalidate_page(page);
    if (mmu_.holds_code_page(page)) mmu_.unprotect_code_page(page);
  }
  coherence_.physical_map_changed();
}

void BtEngine::select_window() {
  const bool user = ctx_.cpu.cpl() == 3;
  active_.user_window = user;
  const auto base = reinterpret_cast<uint64_t>(mmu_.window(user).base());
  if (base != gs_base_) {
    set_gs_base(base);
    gs_base_ = base;
    ctx_.window_base = base;
    ++stats_.gs_switches;
  }
}

Block* BtEngine::chain(ExitRecord& exit) {
  const uint64_t before = translator_.stats().blocks_made();
  Block* target = translator_.try_chain(&exit, code_);
  report_new_block(before);
  return target;
}

Block* BtEngine::find_block() {
  Block* block = nullptr;
  return lookup(&block) == TranslateStatus::Ok ? block : nullptr;
}

TranslateStatus BtEngine::lookup(Block** out) {
  const uint64_t before = translator_.stats().blocks_made();
  const TranslateStatus st = translator_.block_for_current(code_, out);
  if (st == TranslateStatus::Ok && translator_.stats().blocks_made() != before) notify_observer(**out);
  return st;
}

void BtEngine::report_new_block(uint64_t translated_before) {
  if (!block_observer_ || translator_.stats().blocks_made() == translated_before) return;
  Block* block = nullptr;
  if (translator_.block_for_current(code_, &block) == TranslateStatus::Ok) notify_observer(*block);
}

void BtEngine::notify_observer(const Block& block) {
  CodeSource::Bytes bytes;
  if (block_observer_ && code_.read_code(GuestLinear{block.key.eip}, &bytes)) {
    block_observer_(block, {bytes.host, std::min<size_t>(bytes.available, block.guest_size)});
  }
}

bool BtEngine::interpret_one(EngineStop* stop) {
  ++stats_.interpreted;
  if (count_mnemonics_) count_mnemonic(stats_.interpreted_by_mnemonic);
  sync_interpreter_watch();
  switch (interp_.step()) {
    case StepStatus::Retired:
    case StepStatus::EventDelivered: return true;
    case StepStatus::Halted: *stop = EngineStop::Halted; return false;
    case StepStatus::TripleFault: *stop = EngineStop::TripleFault; return false;
    case StepStatus::Unimplemented:
    case StepStatus::Unsupported:
    case StepStatus::Stopped:
      detail_ = interp_.detail();
      *stop = EngineStop::Unimplemented;
      return false;
  }
  return true;
}

Status BtEngine::enable_verification(uint32_t period, CpuHooks& hooks) {
  auto verifier = std::make_unique<BlockVerifier>(mem_, hooks, period);
  VMM86_TRY(verifier->init());
  verifier_ = std::move(verifier);
  return ok_status();
}

bool BtEngine::run_verified(Block* block, EngineStop* stop) {
  verifier_->shadow_run(ctx_.cpu, *block);
  const uint64_t retired_before = ctx_.retired + interp_.retired();
  // Alone: entered past its own prologue's poll, the armed poll page stops it at the next
  // block's prologue.
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisDecodedInstruction poll;
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, block->host_code, 15, &poll))) return true;
  ++stats_.dispatches;
  request_exit(&ctx_);
  set_active_engine(&active_);
  ExitRecord* exit = translator_.enter_at(block->host_code + poll.length);
  set_active_engine(nullptr);
  clear_exit_request(&ctx_);
  switch (exit->kind) {
    case ExitKind::Fault:
      // As the dispatcher does: the interpreter runs the faulting instruction.
      if (!interpret_one(stop)) return false;
      break;
    case ExitKind::Stale: translator_.invalidate_block(exit->from); break;
    case ExitKind::Callout:
      if (const std::optional<EngineStop> callout_stop = take_callout_stop()) {
        *stop = *callout_stop;
        return false;
      }
      break;
    default: break;
  }
  CodeSource::Bytes code;
  const bool have_code = code_.read_code(GuestLinear{block->key.eip}, &code);
  const std::string report = verifier_->compare(ctx_.cpu, ctx_.retired + interp_.retired() - retired_before,
                                                have_code ? code.host : nullptr,
                                                have_code ? std::min<size_t>(code.available, block->guest_size) : 0);
  if (!report.empty()) {
    detail_ = report;
    *stop = EngineStop::Unimplemented;
    return false;
  }
  // The armed poll page may have eaten a real request (a timer): let the machine look.
  if (exit->kind == ExitKind::Poll) {
    *stop = EngineStop::Budget;
    return false;
  }
  return true;
}

void BtEngine::refill_after_page_fault() {
  // Back at an instruction whose access took a guest #PF: fill its page now (only if the
  // guest's tables allow the access: otherwise nothing happens here).
  refill_.armed = false;
  if (ctx_.cpu.cr3 == refill_.cr3 && active_.user_window == refill_.user) {
    if (mmu_.fill(refill_.user, refill_.linear, refill_.write).outcome == FillOutcome::Mapped) ++stats_.refills;
  }
}

EngineStop BtEngine::run(uint64_t max_dispatches, bool (*interrupt_deliverable)(void*), void* opaque) {
  EngineStop stop = EngineStop::Budget;
  interrupt_deliverable_ = interrupt_deliverable;
  deliverable_opaque_ = opaque;
  Block* carried = nullptr;  // the block at cpu.eip, found by the last exit's handling
  EngineState state{ctx_.cpu, *this, stats_, refill_};
  for (uint64_t n = 0; n < max_dispatches; ++n) {
    // The poll page stops translated code; this stops a dispatcher that only interprets
    // (an instruction that keeps faulting, e.g. a long rep into MMIO, never enters a block).
    if (stop_requested_.load(std::memory_order_relaxed) && stop_requested_.exchange(false)) return stop;
    // Nothing runs a block here: what callouts and exits dropped can be freed, and pages
    // whose probation ended may drop their blocks.
    translator_.reclaim();
    if (smc_.end_probations(ctx_.retired + interp_.retired())) carried = nullptr;  // it may be one of them
    // Translated code does not end an interrupt shadow (sti, mov ss): the shadowed
    // instruction runs in the interpreter, which does.
    if (ctx_.cpu.pending.interrupt_shadow != 0) {
      carried = nullptr;
      ++stats_.interpreted_in_shadow;
      if (!interpret_one(&stop)) return stop;
      continue;
    }
    // Translated sti/popf leave when they set IF with a request waiting. Unless the
    // callback stores the controller's INTR line here, assume one may be waiting.
    ctx_.cpu.pending.external_interrupt = true;
    if (interrupt_deliverable(opaque)) return EngineStop::Interrupt;
    if (ctx_.cpu.halted) return EngineStop::Halted;
    sync_paging();
    select_window();
    if (refill_.armed && ctx_.cpu.eip == refill_.eip) refill_after_page_fault();
    const uint32_t mode = translator_.current_mode();
    apply_lookup_salt(mode);
    translator_.update_segment_code_bases();
    if (verifier_ && mode != Translator::kNotTranslatable && verifier_->sample()) {
      Block* block = nullptr;
      carried = nullptr;
      if (lookup(&block) == TranslateStatus::Ok && BlockVerifier::verifiable(*block)) {
        if (!run_verified(block, &stop)) return stop;
        continue;
      }
    }
    // The block to enter: the one the last exit already looked up, else the inline
    // table's (its checked entry confirms the page), else the slow way (walk + block map).
    const uint8_t* host_code = carried && carried->key.eip == ctx_.cpu.eip && carried->key.mode == mode
                                   ? carried->dispatch_entry()
                                   : nullptr;
    carried = nullptr;
    if (!host_code && mode != Translator::kNotTranslatable) {
      host_code = translator_.indirect_target(ctx_.cpu.eip);
      if (host_code) ++stats_.table_dispatches;
    }
    if (!host_code) {
      Block* block = nullptr;
      const TranslateStatus st = lookup(&block);
      if (st == TranslateStatus::CacheFull) {
        translator_.flush();
        ++stats_.cache_flushes;
        continue;
      }
      if (st == TranslateStatus::NeedsInterpreter) {
        ++stats_.interpreted_at_block_start;
        if (!interpret_one(&stop)) return stop;
        continue;
      }
      translator_.remember_indirect_target(ctx_.cpu.eip, block);
      host_code = block->dispatch_entry();
    }
    ++stats_.dispatches;
    set_active_engine(&active_);
    ExitRecord* exit = translator_.enter_at(host_code);
    set_active_engine(nullptr);
    const ExitAction action = handle_exit(EngineExit{exit->kind, exit, active_.last, active_.user_window}, state);
    if (action.stop) return action.reason;
    carried = action.carried;
  }
  return stop;
}

}  // namespace vmm86
