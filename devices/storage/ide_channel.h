// One IDE channel of the PIIX (or any ISA-compatible) controller: a cable with up to two
// devices, its command block (8 ports: 0x1F0-0x1F7 primary, 0x170-0x177 secondary), its
// control block (one port: 0x3F6 / 0x376, alternate status and device control) and its
// interrupt line (IRQ 14 / 15 in compatibility mode).
//
// Both devices latch every command block write; reads and the command go to the device the
// DEV bit selects. An absent selected device leaves its registers undriven: they read 00h
// (ATA-6 9.16.1: device 0 answers for a missing device 1 with status 00h). The data
// register is 16 bits; a 32-bit access moves two words (PIIX turns it into two cycles), a
// byte access one word of which it returns the low byte. Device control: nIEN masks INTRQ,
// SRST resets both devices (BSY while set; the signature when cleared), HOB selects the
// previous ("high order byte") value of the LBA48 registers for reads.
//
// INTRQ is a level: the selected device's pending interrupt unless nIEN is set; reading the
// status register acknowledges it. ISA IDE interrupts are edge-triggered at the 8259, so a
// second interrupt before the status read makes no new edge, exactly as on hardware.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "devices/io_device.h"
#include "devices/irq_line.h"
#include "devices/storage/ide_drive.h"

namespace vmm86 {

/// What a channel tells its bus-master engine (ide_bus_master.h).
class IdeDmaListener {
 public:
  /// The channel's INTRQ was asserted (a new interrupt, or nIEN cleared over a pending one).
  virtual void channel_interrupt() = 0;
  /// The selected device waits for a DMA transfer.
  virtual void dma_requested() = 0;

 protected:
  ~IdeDmaListener() = default;
};

class IdeChannel {
 public:
  static constexpr uint32_t kCommandBlockPorts = 8;
  /// Register the command block this wide: the data register takes 32-bit accesses.
  static constexpr unsigned kCommandBlockWidth = 4;
  static constexpr uint32_t kControlBlockPorts = 1;
  static constexpr unsigned kControlBlockWidth = 1;

  explicit IdeChannel(IrqLine irq);
  IdeChannel(const IdeChannel&) = delete;
  IdeChannel& operator=(const IdeChannel&) = delete;

  /// Puts `drive` on the cable as device `unit` (0 master, 1 slave); null removes it.
  void attach(unsigned unit, std::unique_ptr<IdeDrive> drive);
  [[nodiscard]] IdeDrive* drive(unsigned unit) const { return drives_[unit & 1].get(); }

  /// Command block registers (offsets 0-7), for IoBus::add(base, kCommandBlockPorts, ...,
  /// kCommandBlockWidth).
  [[nodiscard]] PortIoDevice& command_block() { return command_block_; }
  /// Alternate status / device control (offset 0), for IoBus::add(base + 0x206, 1, ..., 1).
  [[nodiscard]] PortIoDevice& control_block() { return control_block_; }

  /// Hardware reset (RESET- on the cable): both devices back to power-on state.
  void reset();

  // --- The bus-master engine's side.
  void set_dma_listener(IdeDmaListener* listener) { dma_listener_ = listener; }
  [[nodiscard]] bool dma_requested() const;
  /// Runs the selected device's waiting DMA transfer through `stream`.
  DmaStatus run_dma(DmaStream& stream);

  [[nodiscard]] bool irq_level() const { return irq_.level(); }
  [[nodiscard]] uint8_t device_control() const { return device_control_; }
  [[nodiscard]] unsigned selected_unit() const { return selected_; }

 private:
  class CommandBlock final : public PortIoDevice {
   public:
    explicit CommandBlock(IdeChannel& channel) : channel_(channel) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    IdeChannel& channel_;
  };
  class ControlBlock final : public PortIoDevice {
   public:
    explicit ControlBlock(IdeChannel& channel) : channel_(channel) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    IdeChannel& channel_;
  };

  [[nodiscard]] IdeDrive* selected() const { return drives_[selected_].get(); }
  [[nodiscard]] uint16_t read_data();
  void write_data(uint16_t value);
  [[nodiscard]] uint8_t read_register(uint16_t reg);
  void write_register(uint16_t reg, uint8_t value);
  void write_device_control(uint8_t value);
  void execute_device_diagnostic();
  /// Re-derives INTRQ after anything a device did; tells the bus master about interrupts and
  /// DMA requests.
  void update();

  std::array<std::unique_ptr<IdeDrive>, 2> drives_;
  CommandBlock command_block_{*this};
  ControlBlock control_block_{*this};
  IrqLine irq_;
  IdeDmaListener* dma_listener_ = nullptr;
  unsigned selected_ = 0;
  uint8_t device_control_ = 0;
};

}  // namespace vmm86
