#include "vmm/engine/exit_handler.h"

namespace vmm86 {

namespace {

ExitAction interpret(EngineState& s) {
  EngineStop stop = EngineStop::Budget;
  return s.services.interpret_one(&stop) ? ExitAction::go_on() : ExitAction::stop_with(stop);
}

/// An indirect branch missed the inline table, or the code TLB did not confirm a checked
/// entry's page. Looked up here rather than at the top of the dispatcher, so that the table
/// learns the target; nothing runs in between, so the dispatcher may enter it directly.
ExitAction lookup_target(const EngineExit& exit, EngineState& s) {
  const bool tlb_miss = exit.kind == ExitKind::CodeTlbMiss;
  ++(tlb_miss ? s.stats.exits_code_tlb : s.stats.exits_indirect);
  Block* block = s.services.find_block();
  if (!block) {
    // Not executable here: the table must not lead back to the block it holds for this EIP.
    s.services.forget_target();
    return ExitAction::go_on();
  }
  s.services.remember_target(*block);
  if (tlb_miss && (s.cpu.cr0 & cr0::PG)) s.services.prefill_code_tlb_around();
  return ExitAction::go_on(block);
}

/// An access no window can map (a device register, unbacked memory, a ROM write) left
/// translated code. Code that does one often does more in a row: a driver's register
/// sequence, a copy to a frame buffer, code straying through unbacked memory. Each would
/// otherwise take a host fault, an exit, and a new block translated from the instruction
/// after it; the interpreter runs them instead, while they keep touching such memory.
ExitAction run_unmappable_accesses(EngineState& s) {
  ExitAction action = interpret(s);
  for (unsigned n = 1; n < kUnmappableRun && !action.stop && !s.cpu.halted; ++n) {
    const uint64_t before = s.services.unmappable_accesses();
    action = interpret(s);
    ++s.stats.interpreted_after_mmio;
    if (s.services.unmappable_accesses() == before) break;
  }
  return action;
}

/// The fault handler left at a guest instruction it could not complete on the host (guest
/// #PF, MMIO, a code write, #DE...): the interpreter runs it for its architectural effect.
ExitAction run_faulting_instruction(const EngineExit& exit, EngineState& s) {
  ++s.stats.exits_fault;
  if (exit.fault.outcome == FillOutcome::Mmio) return run_unmappable_accesses(s);
  const uint32_t eip = s.cpu.eip;
  const ExitAction action = interpret(s);
  if (!action.stop && exit.fault.outcome == FillOutcome::GuestPageFault) {
    // The guest's #PF handler will map the page and return to this instruction, whose
    // access would then fault on the host again just to fill the window.
    s.refill = PendingRefill{true, eip, exit.fault.linear, s.cpu.cr3, exit.fault.write, exit.user_window};
  }
  return action;
}

}  // namespace

ExitAction handle_exit(const EngineExit& exit, EngineState& s) {
  switch (exit.kind) {
    case ExitKind::Direct: ++s.stats.exits_direct; return ExitAction::go_on(s.services.chain(*exit.record));
    case ExitKind::Indirect:
    case ExitKind::CodeTlbMiss: return lookup_target(exit, s);
    case ExitKind::Interpret: ++s.stats.exits_interpret; return interpret(s);
    case ExitKind::Fault: return run_faulting_instruction(exit, s);
    case ExitKind::Poll:
      ++s.stats.exits_poll;
      s.services.clear_poll_request();
      return ExitAction::stop_with(EngineStop::Budget);
    case ExitKind::Stale:
      ++s.stats.exits_stale;
      s.services.invalidate_block(exit.record->from);
      return ExitAction::go_on();
    case ExitKind::Callout: {
      ++s.stats.exits_callout;  // popf enabled interrupts with one waiting, a callout left
      const std::optional<EngineStop> stop = s.services.take_callout_stop();
      return stop ? ExitAction::stop_with(*stop) : ExitAction::go_on();
    }
  }
  return ExitAction::go_on();
}

}  // namespace vmm86
