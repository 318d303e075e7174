// run_machine(): the machine takes over a loaded guest and runs it to its end.
#include "vmm/machine/run_machine.h"

#include <fmt/format.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "vmm/machine/machine.h"
#include "vmm/machine/terminal.h"

namespace vmm86 {

namespace {

/// Test hook (tests/cli): VMM86_TEST_CRASH=segv|ill|bus|fpe crashes the monitor on purpose
/// once the terminal is in raw mode, to check the fatal-signal path end to end. It is read
/// from the host environment only; nothing a guest does can reach it.
void crash_for_test(std::string_view how) {
  if (how == "segv") {
    *static_cast<volatile int*>(nullptr) = 1;
  } else if (how == "ill") {
    __builtin_trap();
  } else if (how == "fpe") {
    volatile int zero = 0;
    volatile int one = 1;
    volatile int quotient = one / zero;
    (void)quotient;
  } else if (how == "bus") {
    raise(SIGBUS);
  }
}

}  // namespace

int run_machine(const MachineConfig& config, GuestMemory&& memory, const CpuState& cpu) {
  // Not destroyed on the way out: freeing tens of thousands of translated blocks and
  // unmapping the windows one by one took a tenth of a second that exit() does not need.
  // What must happen at the end does at exit(): stdio streams (console, --trace,
  // --perf-map) are flushed and the terminal is restored by its atexit handler.
  auto owned = std::make_unique<Machine>(config, std::move(memory), cpu);
  Machine& machine = *owned;
#if defined(__SANITIZE_ADDRESS__)
  const std::unique_ptr<Machine> destroyed_at_return = std::move(owned);  // LeakSanitizer wants it freed
#else
  (void)owned.release();
#endif
  if (const Status started = machine.init(); !started) {
    fmt::print(stderr, "vmm86: error: {}\n", started.error());
    return kExitFailure;
  }
  if (const char* crash = std::getenv("VMM86_TEST_CRASH")) crash_for_test(crash);
  const MachineExit exit = machine.run();
  if (!machine.flush_storage()) fmt::print(stderr, "\r\nvmm86: error: writing back a disk image failed\n");
  if (const Status screen = machine.finish_screen(); !screen)
    fmt::print(stderr, "\r\nvmm86: error: {}\n", screen.error());
  int status = kExitOk;
  switch (exit) {
    case MachineExit::Reset: fmt::print(stderr, "\r\nvmm86: the guest reset the machine\n"); break;
    case MachineExit::PowerOff:
      fmt::print(stderr, "\r\nvmm86: the guest halted with interrupts disabled (power off)\n");
      break;
    case MachineExit::AcpiPowerOff: fmt::print(stderr, "\r\nvmm86: the guest powered off (ACPI S5)\n"); break;
    case MachineExit::UserQuit: fmt::print(stderr, "\r\nvmm86: quit (Ctrl-A x)\n"); break;
    case MachineExit::Signal:
      // QEMU's words; the status is set below, by dying of the same signal.
      fmt::print(stderr, "\r\nvmm86: terminating on signal {} ({})\n", machine.stop_signal(),
                 strsignal(machine.stop_signal()));
      status = kExitSignalBase + machine.stop_signal();
      break;
    case MachineExit::DebugExit:
      // QEMU's isa-debug-exit ends silently; one line on stderr says why vmm86 stopped.
      status = IsaDebugExit::exit_status_for(machine.debug_exit_value());
      fmt::print(stderr, "\r\nvmm86: the guest wrote {:#x} to isa-debug-exit: exit status {}\n",
                 machine.debug_exit_value(), status);
      break;
    case MachineExit::TripleFault:
      fmt::print(stderr, "\r\nvmm86: error: the guest triple-faulted (CPU shutdown)\n");
      machine.print_guest_state(stderr);
      status = kExitFailure;
      break;
    case MachineExit::Unsupported:
      fmt::print(stderr, "\r\nvmm86: error: the guest needs something vmm86 does not implement: {}\n",
                 machine.detail());
      machine.print_guest_state(stderr);
      status = kExitFailure;
      break;
    case MachineExit::HostError:
      fmt::print(stderr, "\r\nvmm86: error: {}\n", machine.detail());
      status = kExitFailure;
      break;
  }
  if (config.stats) machine.print_stats(stderr);
  if (exit == MachineExit::Signal) {
    // Die of the signal, as a program that cleans up on SIGINT/SIGTERM should: the shell
    // (or a supervisor) then sees the process terminated by it (status 128+N in a shell).
    std::fflush(nullptr);
    Terminal::restore_now();
    signal(machine.stop_signal(), SIG_DFL);
    raise(machine.stop_signal());
  }
  return status;
}

}  // namespace vmm86
