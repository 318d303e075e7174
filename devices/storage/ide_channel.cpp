#include "devices/storage/ide_channel.h"

namespace vmm86 {
namespace {

// Device control register bits (ATA-6 7.9).
constexpr uint8_t kControlNien = 0x02;
constexpr uint8_t kControlSrst = 0x04;
constexpr uint8_t kControlHob = 0x80;

constexpr uint8_t kExecuteDeviceDiagnostic = 0x90;

}  // namespace

IdeChannel::IdeChannel(IrqLine irq) : irq_(irq) {}

void IdeChannel::attach(unsigned unit, std::unique_ptr<IdeDrive> drive) {
  if (drive) drive->set_unit(unit & 1);
  drives_[unit & 1] = std::move(drive);
  update();
}

void IdeChannel::reset() {
  for (auto& drive : drives_) {
    if (drive) drive->power_on_reset();
  }
  selected_ = 0;
  device_control_ = 0;
  update();
}

bool IdeChannel::dma_requested() const { return selected() != nullptr && selected()->dma_requested(); }

DmaStatus IdeChannel::run_dma(DmaStream& stream) {
  if (selected() == nullptr) return DmaStatus::Ok;
  const DmaStatus status = selected()->run_dma(stream);
  update();
  return status;
}

void IdeChannel::update() {
  IdeDrive* const current = selected();
  bool event = false;
  for (auto& drive : drives_) {
    // Only the selected device drives INTRQ; the other's events are not seen on the wire.
    if (drive && drive->take_interrupt_event() && drive.get() == current) event = true;
  }
  const bool level = current != nullptr && current->intrq() && (device_control_ & kControlNien) == 0;
  const bool asserted = level && (event || !irq_.level());
  irq_.set_level(level);
  if (dma_listener_ == nullptr) return;
  if (asserted) dma_listener_->channel_interrupt();
  if (current != nullptr && current->dma_requested()) dma_listener_->dma_requested();
}

uint16_t IdeChannel::read_data() {
  if (selected() == nullptr) return 0;
  const uint16_t value = selected()->read_data();
  update();
  return value;
}

void IdeChannel::write_data(uint16_t value) {
  if (selected() == nullptr) return;
  selected()->write_data(value);
  update();
}

uint8_t IdeChannel::read_register(uint16_t reg) {
  IdeDrive* const current = selected();
  if (current == nullptr) return 0;
  if (reg != ata_reg::Status) return current->read_register(reg, (device_control_ & kControlHob) != 0);
  const uint8_t status = current->status();
  current->acknowledge_interrupt();
  update();
  return status;
}

void IdeChannel::write_register(uint16_t reg, uint8_t value) {
  // Any command block write clears HOB (ATA-6 7.9.4).
  device_control_ = static_cast<uint8_t>(device_control_ & ~kControlHob);
  if (reg == ata_reg::Command) {
    if (value == kExecuteDeviceDiagnostic) {
      execute_device_diagnostic();
    } else if (selected() != nullptr) {
      // Writing the command register clears a pending interrupt (ATA-6, INTRQ signal); the line
      // drops before the command can raise it again, so its interrupt is a new edge.
      selected()->acknowledge_interrupt();
      update();
      selected()->execute(value);
    }
  } else {
    for (auto& drive : drives_) {
      if (drive) drive->write_register(reg, value);
    }
    if (reg == ata_reg::Device) selected_ = (value & ata_device::DEV) != 0 ? 1 : 0;
  }
  update();
}

void IdeChannel::execute_device_diagnostic() {
  // Addressed to both devices whatever DEV says (ATA-6 8.11): each runs its diagnostics and
  // shows its signature; "passed" is 01h (device 0 also reports device 1 passed or absent).
  for (auto& drive : drives_) {
    if (drive) drive->begin_reset();
  }
  update();  // the line drops while the devices run their diagnostics
  for (auto& drive : drives_) {
    if (!drive) continue;
    drive->finish_reset(ata_error::DiagnosticPassed);
    drive->raise_interrupt();
  }
}

void IdeChannel::write_device_control(uint8_t value) {
  const bool was_resetting = (device_control_ & kControlSrst) != 0;
  const bool resetting = (value & kControlSrst) != 0;
  device_control_ = value;
  if (!was_resetting && resetting) {
    for (auto& drive : drives_) {
      if (drive) drive->begin_reset();
    }
  } else if (was_resetting && !resetting) {
    for (auto& drive : drives_) {
      if (drive) drive->finish_reset(ata_error::DiagnosticPassed);
    }
    selected_ = 0;  // the device register is 00h after a reset
  }
  update();
}

uint32_t IdeChannel::CommandBlock::read(uint16_t offset, unsigned size) {
  if (offset == ata_reg::Data) {
    if (size == 4) {
      const uint32_t low = channel_.read_data();
      return low | static_cast<uint32_t>(channel_.read_data()) << 16;
    }
    const uint16_t word = channel_.read_data();
    return size == 1 ? word & 0xFFu : word;
  }
  // Byte registers: a wider access reads consecutive ones, low port first.
  uint32_t value = 0;
  for (unsigned i = 0; i < size && offset + i < kCommandBlockPorts; ++i) {
    value |= static_cast<uint32_t>(channel_.read_register(static_cast<uint16_t>(offset + i))) << (8 * i);
  }
  return value;
}

void IdeChannel::CommandBlock::write(uint16_t offset, unsigned size, uint32_t value) {
  if (offset == ata_reg::Data) {
    channel_.write_data(static_cast<uint16_t>(size == 1 ? value & 0xFF : value & 0xFFFF));
    if (size == 4) channel_.write_data(static_cast<uint16_t>(value >> 16));
    return;
  }
  for (unsigned i = 0; i < size && offset + i < kCommandBlockPorts; ++i) {
    channel_.write_register(static_cast<uint16_t>(offset + i), static_cast<uint8_t>(value >> (8 * i)));
  }
}

uint32_t IdeChannel::ControlBlock::read(uint16_t offset, unsigned /*size*/) {
  if (offset != 0) return 0xFF;
  // Alternate status: the status without acknowledging the interrupt.
  return channel_.selected() != nullptr ? channel_.selected()->status() : 0;
}

void IdeChannel::ControlBlock::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  if (offset == 0) channel_.write_device_control(static_cast<uint8_t>(value));
}

}  // namespace vmm86
