// run_machine(): the engine plugs in here. Until then it only reports what was loaded.
#include "vmm/machine_entry.h"

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
  const linux_boot::LoadedGuest loaded = std::move(guest);
  // "6.1.0-50-686 (debian-kernel@...) #1 SMP ..." -> "6.1.0-50-686"
  const std::string& version = loaded.kernel.version;
  const std::string release = version.empty() ? "(no version string)" : version.substr(0, version.find(' '));
  fmt::print(stderr,
             "vmm86: error: execution engine not available yet: the guest is loaded and checked "
             "(Linux {}, boot protocol {}, entry {:#x}, {} MiB RAM, engine {}) but cannot run\n",
             release, loaded.kernel.protocol_string(),
             loaded.cpu.eip, loaded.memory.ram_size() >> 20, engine_name(config.engine));
  return kExitNoEngine;
}

}  // namespace vmm86
