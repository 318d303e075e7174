// Helpers shared by the device tests: an interrupt controller stand-in that records what
// the devices drive on their IRQ lines.
#pragma once

#include <array>
#include <cstdint>

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

}  // namespace vmm86::test
