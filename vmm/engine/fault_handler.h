// Host faults raised by translated code (DESIGN.md §4, §5): SIGSEGV on a guest window page
// is filled by the shadow MMU and retried; a fault on the poll page leaves at the block
// boundary; anything else in the code cache (a guest #PF, MMIO, a write to translated
// code, #DE from a divide, a guard-region access) leaves precisely at the guest instruction,
// which the interpreter then executes for its architectural effect. A fault outside the
// code cache (or SIGILL anywhere) is a monitor bug: the fatal path restores what must be
// restored (the terminal), prints one line and the guest state, and the process dies of
// the signal (default action: a core dump where enabled).
#pragma once

#include <cstdint>

#include "common/result.h"
#include "shadow-mmu/shadow_mmu.h"
#include "translator/translator.h"

namespace vmm86 {

/// What the fault handler saw on its last redirect (for statistics and the dispatcher).
struct RedirectedFault {
  int signal = 0;
  FillOutcome outcome = FillOutcome::Mapped;
  GuestLinear linear{};
  bool write = false;
};

/// Counters kept by the handler.
struct FaultStats {
  uint64_t fills = 0;                ///< window faults answered with a mapping
  uint64_t polls = 0;                ///< exits through the poll page
  uint64_t return_stack_resets = 0;  ///< pushes that hit the return stack's guard
  uint64_t redirected = 0;           ///< exits to the interpreter at a faulting instruction
  uint64_t page_faults = 0;          ///< ... of which guest #PF
  uint64_t mmio = 0;                 ///< ... of which MMIO
  uint64_t code_writes = 0;          ///< ... of which writes to translated code
  uint64_t other = 0;                ///< ... of which #DE, guard regions, ...
  uint64_t string_stops = 0;         ///< host string instructions stopped part-way by the host timer
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

/// Installs the SIGSEGV/SIGBUS/SIGFPE/SIGILL handlers and an alternate signal stack for
/// this thread. Without an active engine every such signal takes the fatal path, so the
/// interpreter-only machine installs it too.
[[nodiscard]] Status install_fault_handler();

/// For an asynchronous signal handler (the host timer, SIGTERM) that interrupted this
/// thread with context `ucontext`: when translated code is inside a host string
/// instruction (a long `rep stos` the poll page cannot stop), makes it leave there through
/// the poll exit with the guest state precise (ESI/EDI/ECX at the next element, EIP at the
/// instruction), as the fault path does. True if it did. Async-signal-safe: it looks at
/// the code cache only when translated code, not the monitor's C++, was interrupted.
bool leave_host_string_instruction(void* ucontext);
/// Makes `engine` the one the handler consults on this thread (nullptr: none).
void set_active_engine(ActiveEngine* engine);

/// Extra text the fatal-fault report prints (the machine registers a guest-state dump).
using FatalReportFn = void (*)(int fd);
void set_fatal_report(FatalReportFn fn);
/// Called first on the fatal path, before anything is printed (the machine restores the
/// terminal). Must be async-signal-safe.
using FatalCleanupFn = void (*)();
void set_fatal_cleanup(FatalCleanupFn fn);

}  // namespace vmm86
