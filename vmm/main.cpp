// vmm86 entry point: command line -> checked MachineConfig -> guest loaded into RAM (a BIOS
// at the reset vector, or a Linux or Multiboot kernel ready at its 32-bit entry) ->
// run_machine(), the one place where an execution engine takes over.
#include <fmt/format.h>

#include <cstdio>
#include <utility>

#include "vmm/cli.h"
#include "vmm/loader/firmware.h"
#include "vmm/loader/kernel_boot.h"
#include "vmm/machine/firmware_tables.h"
#include "vmm/machine/run_machine.h"
#include "vmm/machine/terminal.h"

namespace {

vmm86::KernelRequest kernel_request_of(const vmm86::MachineConfig& config) {
  vmm86::KernelRequest request;
  request.kernel_path = config.kernel_path;
  request.initrd = config.initrd_path;
  request.cmdline = config.cmdline;
  // What a BIOS would have left in RAM: the ACPI and MP tables.
  vmm86::DirectBootTables tables = vmm86::direct_boot_tables(config);
  request.holes = std::move(tables.holes);
  request.firmware_data = std::move(tables.blobs);
  return request;
}

int fail(int status, const std::string& message) {
  fmt::print(stderr, "vmm86: error: {}\n", message);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  vmm86::Terminal::reserve_standard_fds();
  const vmm86::CommandLine command = vmm86::parse_command_line(argc, argv, stdout, stderr);
  if (!command.run) return command.exit_status;
  const vmm86::MachineConfig& config = *command.run;
  if (config.kernel_path.empty()) {
    auto firmware = vmm86::firmware::load_bios(config.ram_bytes, config.bios_path);
    if (!firmware) return fail(vmm86::kExitFailure, firmware.error());
    return vmm86::run_machine(config, std::move(firmware->memory), firmware->cpu);
  }
  namespace kb = vmm86::kernel_boot;
  const vmm86::KernelRequest request = kernel_request_of(config);
  auto format = kb::detect_format(request.kernel_path);
  if (!format) return fail(vmm86::kExitFailure, format.error());

  // Too little --mem is a command-line mistake (status 2), so check it before loading.
  auto needed = kb::required_ram_bytes(request, *format);
  if (!needed) return fail(vmm86::kExitFailure, needed.error());
  if (config.ram_bytes < *needed) {
    const char* extra = request.initrd.empty()                   ? ""
                        : *format == kb::KernelFormat::Multiboot ? " with its modules"
                                                                 : " with its initrd";
    return fail(vmm86::kExitUsage,
                fmt::format("--mem {} is too small: this kernel{} needs at least {}",
                            vmm86::mem_size_string(config.ram_bytes), extra, vmm86::mem_size_string(*needed)));
  }

  auto guest = kb::load_kernel(config.ram_bytes, request, *format);
  if (!guest) return fail(vmm86::kExitFailure, guest.error());
  return vmm86::run_machine(config, std::move(guest->memory), guest->cpu);
}
