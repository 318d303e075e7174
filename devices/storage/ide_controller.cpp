#include "devices/storage/ide_controller.h"

#include "devices/storage/ata_disk.h"

namespace vmm86 {

IdeController::IdeController(DmaMemory& memory, IrqLine primary_irq, IrqLine secondary_irq)
    : channels_{std::make_unique<IdeChannel>(primary_irq), std::make_unique<IdeChannel>(secondary_irq)},
      bus_master_(std::make_unique<IdeBusMaster>(memory, *channels_[0], *channels_[1])) {}

BusStatus IdeController::register_legacy_ports(IoBus& bus) {
  struct Placement {
    uint16_t command;
    uint16_t control;
    const char* name;
  };
  const std::array<Placement, 2> placements = {{
      {kPrimaryCommandBase, kPrimaryControlBase, "ide0"},
      {kSecondaryCommandBase, kSecondaryControlBase, "ide1"},
  }};
  for (size_t i = 0; i < placements.size(); ++i) {
    IdeChannel& ch = *channels_[i];
    const Placement& place = placements[i];
    BusStatus status = bus.add(place.command, IdeChannel::kCommandBlockPorts, ch.command_block(), place.name,
                               IdeChannel::kCommandBlockWidth);
    if (status != BusStatus::Ok) return status;
    status = bus.add(place.control, IdeChannel::kControlBlockPorts, ch.control_block(),
                     std::string(place.name) + "-control", IdeChannel::kControlBlockWidth);
    if (status != BusStatus::Ok) return status;
  }
  return BusStatus::Ok;
}

void IdeController::reset() {
  bus_master_->reset();
  for (auto& ch : channels_) ch->reset();
}

bool IdeController::flush_disks() {
  bool ok = true;
  for (auto& ch : channels_) {
    for (unsigned unit = 0; unit < 2; ++unit) {
      if (auto* disk = dynamic_cast<AtaDisk*>(ch->drive(unit))) ok = disk->backend().flush() && ok;
    }
  }
  return ok;
}

}  // namespace vmm86
