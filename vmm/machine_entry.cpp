// run_machine(): the machine takes over a loaded guest and runs it to its end.
#include "vmm/machine_entry.h"

#include <memory>

#include "vmm/machine/machine.h"

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <utility>

namespace vmm86 {

std::string_view engine_name(Engine engine) {
  for (const auto& [name, e] : kEngineNames) {
    if (e == engine) return name;
  }
  return "?";
}

int run_machine(const MachineConfig& config, linux_boot::LoadedGuest&& guest) {
  // Not destroyed on the way out: freeing tens of thousands of translated blocks and
  // unmapping the windows one by one took a tenth of a second that exit() does not need.
  // What must happen at the end does at exit(): stdio streams (console, --trace,
  // --perf-map) are flushed and the terminal is restored by its atexit handler.
  auto owned = std::make_unique<Machine>(config, std::move(guest));
  Machine& machine = *owned;
#if defined(__SANITIZE_ADDRESS__)
  const std::unique_ptr<Machine> destroyed_at_return = std::move(owned);  // LeakSanitizer wants it freed
#else
  (void)owned.release();
#endif
  std::string error;
  if (!machine.init(&error)) {
    fmt::print(stderr, "vmm86: error: {}\n", error);
    return kExitFailure;
  }
  const MachineExit exit = machine.run();
  int status = kExitOk;
  switch (exit) {
    case MachineExit::Reset:
      fmt::print(stderr, "\r\nvmm86: the guest reset the machine\n");
      break;
    case MachineExit::PowerOff:
      fmt::print(stderr, "\r\nvmm86: the guest halted with interrupts disabled (power off)\n");
      break;
    case MachineExit::UserQuit:
      fmt::print(stderr, "\r\nvmm86: quit (Ctrl-A x)\n");
      break;
    case MachineExit::TripleFault:
      fmt::print(stderr, "\r\nvmm86: error: the guest triple-faulted (CPU shutdown)\n");
      machine.print_guest_state(stderr);
      status = kExitFailure;
      break;
    case MachineExit::Unsupported:
      fmt::print(stderr, "\r\nvmm86: error: the guest needs something vmm86 does not implement: {}\n", machine.detail());
      machine.print_guest_state(stderr);
      status = kExitFailure;
      break;
    case MachineExit::HostError:
      fmt::print(stderr, "\r\nvmm86: error: {}\n", machine.detail());
      status = kExitFailure;
      break;
  }
  if (config.stats) machine.print_stats(stderr);
  return status;
}

}  // namespace vmm86
