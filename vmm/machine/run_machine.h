// run_machine(), the one place where an execution engine takes over a loaded guest.
#pragma once

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/machine/config.h"

namespace vmm86 {

/// Runs the guest loaded into `memory` from the vCPU state `cpu`, as `config` says, until it
/// powers off, resets, triple-faults or the user quits (Ctrl-A x); returns the process exit
/// status. Owns the console (vmm/machine/terminal.h) while it runs.
[[nodiscard]] int run_machine(const MachineConfig& config, GuestMemory&& memory, const CpuState& cpu);

}  // namespace vmm86
