// Helpers shared by the device tests: an interrupt controller stand-in that records what
// the devices drive on their IRQ lines, guest RAM for DMA, and the ISA DMA programming
// SeaBIOS does.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "devices/bus.h"
#include "devices/dma_memory.h"
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

/// Guest RAM from 0 to `size`; anything else fails like an access outside RAM.
class FakeDmaMemory final : public DmaMemory {
 public:
  explicit FakeDmaMemory(size_t size) : bytes(size, 0) {}
  [[nodiscard]] bool read(uint64_t phys, std::span<uint8_t> out) override {
    if (phys > bytes.size() || out.size() > bytes.size() - phys) return false;
    std::memcpy(out.data(), bytes.data() + phys, out.size());
    return true;
  }
  [[nodiscard]] bool write(uint64_t phys, std::span<const uint8_t> data) override {
    if (phys > bytes.size() || data.size() > bytes.size() - phys) return false;
    std::memcpy(bytes.data() + phys, data.data(), data.size());
    return true;
  }
  void put32(uint64_t phys, uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes[phys + i] = static_cast<uint8_t>(value >> (8 * i));
  }
  /// One PRD entry (PIIX datasheet 2.7.4): address, byte count (0 = 64 KiB), EOT flag.
  void put_prd(uint64_t table, unsigned index, uint32_t address, uint32_t count, bool last) {
    put32(table + 8 * index, address);
    put32(table + 8 * index + 4, (count & 0xFFFF) | (last ? 0x80000000u : 0));
  }
  std::vector<uint8_t> bytes;
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
