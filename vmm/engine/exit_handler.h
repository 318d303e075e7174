// What the dispatcher does when translated code leaves (STYLE.md #8; Firecracker's
// vstate/vcpu.rs): a free function over a typed exit record. It decides; the engine's
// operations it needs (chaining, lookup, the interpreter) come through ExitServices, so
// tests hand it made-up exits and a fake engine without running translated code.
#pragma once

#include <cstdint>
#include <optional>

#include "translator/code_cache.h"
#include "vmm/engine/engine_state.h"
#include "vmm/engine/fault_handler.h"

namespace vmm86 {

/// One exit from translated code, with what its kind carries.
struct EngineExit {
  ExitKind kind = ExitKind::Poll;
  /// The record translated code left by (Direct: the exit to chain; Stale: `from` is the
  /// block whose code changed).
  ExitRecord* record = nullptr;
  /// Fault: what the fault handler saw, and which window the faulting access used.
  RedirectedFault fault{};
  bool user_window = false;
};

/// The page to fill when the instruction that took a guest #PF runs again: the guest's
/// handler maps it and returns there, and filling it first saves that retry a host fault.
struct PendingRefill {
  bool armed = false;
  uint32_t eip = 0;
  GuestLinear linear{};
  uint32_t cr3 = 0;
  bool write = false, user = false;
};

/// What the dispatcher does next.
struct ExitAction {
  bool stop = false;
  EngineStop reason = EngineStop::Budget;  ///< when stopping
  /// The block at cpu.eip if the handling found it (the next entry needs no lookup).
  Block* carried = nullptr;

  static ExitAction go_on(Block* carried = nullptr) { return {false, EngineStop::Budget, carried}; }
  static ExitAction stop_with(EngineStop reason) { return {true, reason, nullptr}; }
};

/// The engine operations exits need. BtEngine implements them.
class ExitServices {
 public:
  virtual ~ExitServices() = default;
  /// Chains a direct exit to the block at cpu.eip (translating it if needed); that block.
  virtual Block* chain(ExitRecord& exit) = 0;
  /// The block at cpu.eip, found or translated; nullptr when the code there cannot run
  /// translated now (not present: the interpreter raises the #PF).
  virtual Block* find_block() = 0;
  /// The inline indirect table leads cpu.eip to `block` from now on / no longer.
  virtual void remember_target(const Block& block) = 0;
  virtual void forget_target() = 0;
  /// Maps ahead the code TLB entries of code pages around cpu.eip.
  virtual void prefill_code_tlb_around() = 0;
  /// Runs the instruction at cpu.eip in the interpreter; false (and `*stop`) when the
  /// machine must take over.
  [[nodiscard]] virtual bool interpret_one(EngineStop* stop) = 0;
  /// How many accesses the interpreter has made to memory no window can map (MMIO,
  /// unbacked memory, writes to ROM), since it was made.
  [[nodiscard]] virtual uint64_t unmappable_accesses() const = 0;
  /// Drops a block whose guest code changed.
  virtual void invalidate_block(Block* block) = 0;
  /// Disarms the poll page.
  virtual void clear_poll_request() = 0;
  /// What a callout's instruction stopped the machine with, once (then cleared).
  virtual std::optional<EngineStop> take_callout_stop() = 0;
};

/// The engine state exits read and update.
struct EngineState {
  const CpuState& cpu;
  ExitServices& services;
  BtEngineStats& stats;
  PendingRefill& refill;
};

/// After an exit for an access no window can map, the interpreter goes on with the next
/// instructions while each touches such memory again, up to this many in all.
inline constexpr unsigned kUnmappableRun = 64;

/// Handles one exit from translated code.
[[nodiscard]] ExitAction handle_exit(const EngineExit& exit, EngineState& state);

}  // namespace vmm86
