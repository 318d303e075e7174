#include "devices/pc_chipset.h"

#include "common/check.h"

namespace vmm86 {
namespace {

// QEMU's fixed I/O layout, which SeaBIOS follows: GPE0 at 0xAFE0, PMBA at 0xB000, SMBus
// at 0xB100; or, when fw_cfg has "etc/table-loader" (the ACPI tables come from the
// machine), PMBA at 0x600 and SMBus at 0x700 (SeaBIOS's qemu_cfg_init moves them there).
constexpr uint16_t kAcpiIoWindow = 0x600;
constexpr uint32_t kAcpiIoWindowSize = 0x200;
constexpr uint16_t kLowIoWindow = 0xA000;
constexpr uint32_t kLowIoWindowSize = 0x2000;
constexpr uint16_t kHighIoWindow = 0xC000;  ///< SeaBIOS's PCI I/O space
constexpr uint32_t kHighIoWindowSize = 0x4000;
constexpr uint32_t kMmioWindow = 0xE0000000;  ///< PCI memory below the IOAPIC/LAPIC/BIOS
constexpr uint32_t kMmioWindowSize = 0xFEC00000 - kMmioWindow;

}  // namespace

PcChipset::PcChipset(PcPlatform& platform, const VirtualClock& clock, LogFn log, bool acpi)
    : host_(I440fxHostBridge::kQemuSubsystemVendorId, I440fxHostBridge::kQemuSubsystemId),
      isa_(platform.isa_irqs()),
      pm_(clock, platform.timers(), IrqLine(&platform.isa_irqs(), Piix4Pm::kSciIrq)),
      windows_(log),
      mapper_(windows_, log) {
  VMM86_CHECK(bus_.attach(kHostBridgeSlot, 0, host_));
  VMM86_CHECK(bus_.attach(kPiixSlot, kIsaFunction, isa_));
  VMM86_CHECK(bus_.attach(kPiixSlot, kIdeFunction, ide_));
  if (acpi) {
    VMM86_CHECK(bus_.attach(kPiixSlot, kPmFunction, pm_));
  }
  apm_.set_command_handler([this](uint8_t command) { pm_.apm_command(command); });
  IoBus& io = platform.io_bus();
  BusRangeId id = 0;
  VMM86_CHECK(io.add(PciBus::kBasePort, PciBus::kPortCount, bus_, "pci-config", PciBus::kRegisterWidth, &id) ==
              BusStatus::Ok);
  VMM86_CHECK(io.add(ApmControl::kBasePort, ApmControl::kPortCount, apm_, "apm", 1, &id) == BusStatus::Ok);
  VMM86_CHECK(io.add(kAcpiIoWindow, kAcpiIoWindowSize, windows_.add_io_window(kAcpiIoWindow, kAcpiIoWindowSize),
                     "pci-io-acpi", 4, &id) == BusStatus::Ok);
  VMM86_CHECK(io.add(kLowIoWindow, kLowIoWindowSize, windows_.add_io_window(kLowIoWindow, kLowIoWindowSize),
                     "pci-io-low", 4, &id) == BusStatus::Ok);
  VMM86_CHECK(io.add(kHighIoWindow, kHighIoWindowSize, windows_.add_io_window(kHighIoWindow, kHighIoWindowSize),
                     "pci-io", 4, &id) == BusStatus::Ok);
  VMM86_CHECK(platform.mmio_bus().add(GuestPhys{kMmioWindow}, kMmioWindowSize,
                                      windows_.add_mmio_window(kMmioWindow, kMmioWindowSize), "pci-mmio", 4,
                                      &id) == BusStatus::Ok);
  mapper_.attach_io(pm_, pm_.pm_io_region(), pm_.pm_io(), "piix4-pm", 4);
  // Fixed ports inside the low PCI window, where QEMU's tables expect them.
  VMM86_CHECK(windows_.map_io(Piix4Pm::kQemuGpeBlockPort, Piix4Pm::kGpeBlockSize, pm_.gpe_block(), "acpi-gpe0", 4) ==
              BusStatus::Ok);
  VMM86_CHECK(windows_.map_io(PciHotplugPorts::kBasePort, PciHotplugPorts::kPortCount, pci_hotplug_, "acpi-pci-hotplug",
                              4) == BusStatus::Ok);
  VMM86_CHECK(windows_.map_io(CpuHotplugPorts::kBasePort, CpuHotplugPorts::kPortCount, cpu_hotplug_, "acpi-cpu-hotplug",
                              1) == BusStatus::Ok);
}

}  // namespace vmm86
