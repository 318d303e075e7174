// The IDE function of a PIIX south bridge in compatibility mode: two channels at the legacy
// ports and IRQs, and the bus-master block that the PCI function's BAR4 places. The PCI
// configuration space (IDs, BAR4, the IDE timing registers, the decode-enable bit) is not
// here: devices/pci/ has it and calls bus_master() for the BAR's I/O.
//
//   primary:   command block 0x1F0-0x1F7, control block 0x3F6, IRQ 14
//   secondary: command block 0x170-0x177, control block 0x376, IRQ 15
//   BMIDE:     16 ports at BAR4 (bus_master(); IdeBusMaster::kPorts, kWidth)
#pragma once

#include <cstdint>
#include <memory>

#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/storage/dma.h"
#include "devices/storage/ide_bus_master.h"
#include "devices/storage/ide_channel.h"

namespace vmm86 {

class IdeController {
 public:
  static constexpr uint16_t kPrimaryCommandBase = 0x1F0;
  static constexpr uint16_t kPrimaryControlBase = 0x3F6;
  static constexpr uint16_t kSecondaryCommandBase = 0x170;
  static constexpr uint16_t kSecondaryControlBase = 0x376;
  static constexpr unsigned kPrimaryIrq = 14;
  static constexpr unsigned kSecondaryIrq = 15;

  /// `memory` is guest RAM for bus-master DMA; it must outlive the controller.
  IdeController(DmaMemory& memory, IrqLine primary_irq, IrqLine secondary_irq);
  IdeController(const IdeController&) = delete;
  IdeController& operator=(const IdeController&) = delete;

  /// 0 primary, 1 secondary.
  [[nodiscard]] IdeChannel& channel(unsigned index) { return *channels_[index & 1]; }
  /// Puts a drive on `channel` as device `unit` (0 master, 1 slave).
  void attach(unsigned channel, unsigned unit, std::unique_ptr<IdeDrive> drive) {
    channels_[channel & 1]->attach(unit, std::move(drive));
  }
  [[nodiscard]] IdeBusMaster& bus_master() { return *bus_master_; }

  /// Claims both channels' legacy command and control block ports (not BMIDE).
  [[nodiscard]] BusStatus register_legacy_ports(IoBus& bus);
  /// Machine reset: drives to power-on state, engines stopped.
  void reset();
  /// Makes every disk's completed writes durable (a qcow2 image writes back its cached
  /// metadata): for the end of a run, whatever the guest flushed or not. False if one failed.
  [[nodiscard]] bool flush_disks();

 private:
  std::array<std::unique_ptr<IdeChannel>, 2> channels_;
  std::unique_ptr<IdeBusMaster> bus_master_;
};

}  // namespace vmm86
