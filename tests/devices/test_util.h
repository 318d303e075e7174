// Helpers shared by the device tests: an interrupt controller stand-in that records what
// the devices drive on their IRQ lines, and the ISA DMA programming SeaBIOS does.
#pragma once

#include <array>
#include <cstdint>

#include "devices/bus.h"
#include "devices/irq_line.h"

namespace vmm86::test {

class RecordingIrqSink final : public IrqSink {
 public:
  void set_irq_level(unsigned irq, bool level) override {
    if (level) ++rising_edges[irq];
    levels[irq] = level;
  }
  IrqLine line(unsigned irq) { return IrqLine(this, irq); }

  std::array<uint64_t, 16> rising_edges{};
  std::array<bool, 16> levels{};
};

/// SeaBIOS's dma_setup(): a master clear of both 8237As, channel 4 in cascade mode, unmasked.
inline void seabios_dma_setup(IoBus& bus) {
  bus.write(0x0D, 1, 0);
  bus.write(0xDA, 1, 0);
  bus.write(0xD6, 1, 0xC0);
  bus.write(0xD4, 1, 0x00);
}

/// SeaBIOS's floppy_cmd(): DMA channel 2 for `bytes` bytes at `addr` in `mode` (0x46: device
/// to memory, 0x4A: memory to device), unmasked.
inline void seabios_dma_channel2(IoBus& bus, uint32_t addr, uint32_t bytes, uint8_t mode) {
  const auto end = static_cast<uint16_t>(bytes - 1);
  bus.write(0x0A, 1, 0x06);  // mask channel 2
  bus.write(0x0C, 1, 0x00);  // clear the flip-flop
  bus.write(0x04, 1, addr & 0xFF);
  bus.write(0x04, 1, (addr >> 8) & 0xFF);
  bus.write(0x0C, 1, 0x00);
  bus.write(0x05, 1, end & 0xFFu);
  bus.write(0x05, 1, end >> 8);
  bus.write(0x0B, 1, mode);
  bus.write(0x81, 1, (addr >> 16) & 0xFF);
  bus.write(0x0A, 1, 0x02);  // unmask channel 2
}

}  // namespace vmm86::test
