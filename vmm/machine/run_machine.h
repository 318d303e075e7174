// run_machine(), the one place where an execution engine takes over a loaded guest.
#pragma once

#include "vmm/loader/linux_boot.h"
#include "vmm/machine/config.h"

namespace vmm86 {

/// Runs `guest` as `config` says until it powers off, resets, triple-faults or the user
/// quits (Ctrl-A x); returns the process exit status. Owns the console (vmm/machine/terminal.h)
/// while it runs.
[[nodiscard]] int run_machine(const MachineConfig& config, linux_boot::LoadedGuest&& guest);

}  // namespace vmm86
