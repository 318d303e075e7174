#include "devices/fixed_acpi_pm.h"

#include "common/check.h"

namespace vmm86 {

FixedAcpiPm::FixedAcpiPm(PcPlatform& platform, const VirtualClock& clock)
    : pm_(clock, platform.timers(), IrqLine(&platform.isa_irqs(), Piix4Pm::kSciIrq)) {
  apm_.set_command_handler([this](uint8_t command) { pm_.apm_command(command); });
  IoBus& io = platform.io_bus();
  // The machine's layout is fixed: a clash is a bug, not a guest's doing.
  VMM86_CHECK(io.add(kPmIoBase, Piix4Pm::kPmIoSize, pm_.pm_io(), "acpi-pm", 4) == BusStatus::Ok);
  VMM86_CHECK(io.add(Piix4Pm::kQemuGpeBlockPort, Piix4Pm::kGpeBlockSize, pm_.gpe_block(), "acpi-gpe0", 4) ==
              BusStatus::Ok);
  VMM86_CHECK(io.add(ApmControl::kBasePort, ApmControl::kPortCount, apm_, "apm", 1) == BusStatus::Ok);
}

}  // namespace vmm86
