// Interrupt request lines from devices to an interrupt controller. A line carries a
// level, as the wire does; whether the controller latches the rising edge or follows the
// level is the controller's business (on the PC: the 8259's ELCR, edge for ISA devices).
// So a device that signals by edges drives its line the way the hardware does:
//   * level sources (UART, i8042, RTC): set_level(condition) after every state change;
//   * pulse sources: pulse() makes one low-to-high edge and leaves the line low.
#pragma once

#include <cstdint>

namespace vmm86 {

/// The receiving end: an interrupt controller's input pins.
class IrqSink {
 public:
  /// Called only when the level of `irq` changes.
  virtual void set_irq_level(unsigned irq, bool level) = 0;

 protected:
  ~IrqSink() = default;
};

/// One device's output pin, wired to one controller input. Copyable handle; a
/// default-constructed line is unconnected and goes nowhere (useful in tests).
class IrqLine {
 public:
  IrqLine() = default;
  IrqLine(IrqSink* sink, unsigned irq) : sink_(sink), irq_(irq) {}

  void set_level(bool level) {
    if (level == level_) return;
    level_ = level;
    if (sink_ != nullptr) sink_->set_irq_level(irq_, level);
  }
  void raise() { set_level(true); }
  void lower() { set_level(false); }
  /// One rising edge, then low again: an edge-triggered request.
  void pulse() {
    lower();
    raise();
    lower();
  }

  [[nodiscard]] bool level() const { return level_; }
  [[nodiscard]] unsigned irq() const { return irq_; }
  [[nodiscard]] bool connected() const { return sink_ != nullptr; }

 private:
  IrqSink* sink_ = nullptr;
  unsigned irq_ = 0;
  bool level_ = false;
};

}  // namespace vmm86
