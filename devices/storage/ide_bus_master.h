// The PIIX/PIIX3/PIIX4 bus-master IDE register block (BMIDE; Intel 82371AB datasheet 2.7):
// 16 ports at the function's BAR4, eight per channel:
//   +0 command:  bit 0 start/stop, bit 3 direction (1 = write to memory, a device read)
//   +2 status:   bit 0 active (read-only), bit 1 error and bit 2 interrupt (write 1 to clear),
//                bits 5/6 device 0/1 DMA capable (software's scratch), bit 7 simplex (0)
//   +4 PRD table address (dword aligned)
// A PRD is two dwords: a buffer's physical address (bit 0 zero) and its byte count in
// bits 15:1 (0 means 64 KiB), bit 31 set on the last entry (EOT). The table may not cross a
// 64 KiB boundary, so it has at most 8192 entries; the walk stops there.
//
// Transfers are synchronous: when the engine is started and the selected device waits for
// DMA (in either order), all of its data moves before the port access returns. At the end
// the device raises its interrupt (status bit 2); active clears when the last PRD was used
// up, and stays set when the table was longer than the transfer (the guest stops the engine).
// A PRD or buffer outside guest RAM sets the error bit and clears active; the device fails
// the command with an interrupt, so the guest never waits for data that will not come. The
// direction bit is not checked against the command (the device knows which way it goes).
#pragma once

#include <array>
#include <cstdint>

#include "devices/io_device.h"
#include "devices/storage/dma.h"
#include "devices/storage/ide_channel.h"

namespace vmm86 {

class IdeBusMaster final : public PortIoDevice {
 public:
  static constexpr uint32_t kPorts = 16;
  static constexpr unsigned kWidth = 4;

  /// Command and status bits.
  static constexpr uint8_t kCommandStart = 0x01;
  static constexpr uint8_t kCommandToMemory = 0x08;
  static constexpr uint8_t kStatusActive = 0x01;
  static constexpr uint8_t kStatusError = 0x02;
  static constexpr uint8_t kStatusInterrupt = 0x04;
  static constexpr uint8_t kStatusDrive0Dma = 0x20;
  static constexpr uint8_t kStatusDrive1Dma = 0x40;

  struct ChannelRegs {
    uint8_t command = 0;
    uint8_t status = 0;
    uint32_t prd_table = 0;
  };

  /// `memory` and both channels must outlive the engine; it registers as their DMA listener.
  IdeBusMaster(DmaMemory& memory, IdeChannel& primary, IdeChannel& secondary);
  ~IdeBusMaster() override;
  IdeBusMaster(const IdeBusMaster&) = delete;
  IdeBusMaster& operator=(const IdeBusMaster&) = delete;

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  [[nodiscard]] const ChannelRegs& regs(unsigned channel) const { return engines_[channel & 1].regs; }
  void reset();

 private:
  struct Engine final : IdeDmaListener {
    void channel_interrupt() override { regs.status |= kStatusInterrupt; }
    void dma_requested() override;
    IdeBusMaster* owner = nullptr;
    IdeChannel* channel = nullptr;
    ChannelRegs regs;
  };

  [[nodiscard]] uint8_t read_byte(uint16_t offset) const;
  void write_byte(uint16_t offset, uint8_t value);
  void run(Engine& engine);

  DmaMemory& memory_;
  std::array<Engine, 2> engines_;
};

}  // namespace vmm86
