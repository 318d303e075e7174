// Host faults raised by translated code (DESIGN.md §4, §5): SIGSEGV on a guest window page
// is filled by the shadow MMU and retried; a fault on the poll page leaves at the block
// boundary; anything else in the code cache (a guest #PF, MMIO, a write to translated
// code, #DE from a divide, a guard-region access) leaves precisely at the guest instruction,
// which the interpreter then executes for its architectural effect. A fault outside the
// code cache is a monitor bug: the guest and host state are printed and vmm86 exits.
#pragma once

#include <cstdint>
#include <string>

#include "shadow-mmu/shadow_mmu.h"
#include "translator/translator.h"

namespace vmm86 {

/// What the fault handler saw on its last redirect (for statistics and the dispatcher).
struct RedirectedFault {
  int signal = 0;
  FillOutcome outcome = FillOutcome::Mapped;
  uint32_t linear = 0;
  bool write = false;
};

/// Counters kept by the handler.
struct FaultStats {
  uint64_t fills = 0;            ///< window faults answered with a mapping
  uint64_t polls = 0;            ///< exits through the poll page
  uint64_t return_stack_resets = 0;  ///< pushes that hit the return stack's guard
  uint64_t redirected = 0;       ///< exits to the interpreter at a faulting instruction
  uint64_t page_faults = 0;      ///< ... of which guest #PF
  uint64_t mmio = 0;             ///< ... of which MMIO
  uint64_t code_writes = 0;      ///< ... of which writes to translated code
  uint64_t other = 0;            ///< ... of which #DE, guard regions, ...
};

/// The engine pieces the handler consults while translated code runs on this thread.
struct ActiveEngine {
  Translator* translator = nullptr;
  ShadowMmu* mmu = nullptr;
  ExecContext* ctx = nullptr;
  bool user_window = false;
  RedirectedFault last{};
  FaultStats stats{};
};

/// Installs the SIGSEGV/SIGBUS/SIGFPE handlers and an alternate signal stack for this thread.
[[nodiscard]] bool install_fault_handler(std::string* error);
/// Makes `engine` the one the handler consults on this thread (nullptr: none).
void set_active_engine(ActiveEngine* engine);

/// Extra text the fatal-fault report prints (the machine registers a guest-state dump).
using FatalReportFn = void (*)(int fd);
void set_fatal_report(FatalReportFn fn);

}  // namespace vmm86
