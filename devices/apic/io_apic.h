// The I/O APIC of the PC (Intel 82093AA register model, version 0x20 as QEMU's pc machine
// reports, with the EOI register of the later ICH parts) at 0xFEC00000: 24 input pins,
// each with a 64-bit redirection entry that turns its interrupt into a message to the
// local APICs. Registers, reached through an index:
//   offset 0x00 IOREGSEL (index, 8 bits)   0x10 IOWIN (32-bit data)   0x40 EOI (vector)
//   index 0x00 ID (bits 27:24)   0x01 version (0x00170020: 24 entries)   0x02 arbitration ID
//   index 0x10 + 2n / 0x11 + 2n  redirection entry n, low / high dword:
//     7:0 vector, 10:8 delivery mode, 11 destination mode, 12 delivery status (RO),
//     13 polarity, 14 remote IRR (RO), 15 trigger mode (1 level), 16 mask, 63:56 destination.
// Edge entries send one message per rising edge of an unmasked pin (an edge on a masked
// pin is lost, as on the 82093AA). Level entries send while the pin is asserted and
// remote IRR is clear, and set remote IRR; the local APIC's EOI of that vector (or a write
// of it to the EOI register) clears it, and a pin still asserted sends again. Writing an
// entry as edge-triggered clears its remote IRR (Linux relies on this to retire a stuck
// level interrupt, and QEMU does it too).
// Pin inputs carry the asserted state as the devices drive it (IrqLine); the polarity
// bit is kept for the guest but does not invert them, as in QEMU: the platform's lines are
// already "asserted = high", whatever the pin's electrical polarity would be.
// Registers are taken with 32-bit accesses only (narrower IOWIN/EOI accesses are dropped;
// IOREGSEL takes any width); reserved indexes read 0 and ignore writes.
#pragma once

#include <array>
#include <cstdint>

#include "devices/apic/apic_message.h"
#include "devices/io_device.h"
#include "devices/irq_line.h"

namespace vmm86 {

// The IOAPIC's counters: one row each (statistics, PcPlatformStats).
#define VMM86_IOAPIC_COUNTERS(X)                           \
  X(messages, "interrupt messages sent to the local APIC") \
  X(remote_irr_cleared, "level entries retired by an EOI") \
  X(masked_edges, "rising edges lost on masked pins")      \
  X(level_held, "level requests held while remote IRR was set (coalesced)")

struct IoApicStats {
#define VMM86_X(name, what) uint64_t name = 0;
  VMM86_IOAPIC_COUNTERS(VMM86_X)
#undef VMM86_X
};

class IoApic final : public MmioDevice, public IrqSink {
 public:
  static constexpr uint64_t kDefaultBase = 0xFEC00000;
  static constexpr uint64_t kMmioSize = 0x1000;
  static constexpr unsigned kPins = 24;
  static constexpr uint32_t kVersion = 0x20 | ((kPins - 1) << 16);
  /// MMIO offsets.
  static constexpr uint64_t kRegisterSelect = 0x00;
  static constexpr uint64_t kWindow = 0x10;
  static constexpr uint64_t kEoi = 0x40;
  /// Register indexes.
  static constexpr uint8_t kIndexId = 0x00;
  static constexpr uint8_t kIndexVersion = 0x01;
  static constexpr uint8_t kIndexArbitration = 0x02;
  static constexpr uint8_t kIndexRedirection = 0x10;
  /// Redirection entry bits.
  static constexpr uint64_t kDeliveryStatus = 1u << 12;
  static constexpr uint64_t kRemoteIrr = 1u << 14;
  static constexpr uint64_t kLevelTriggered = 1u << 15;
  static constexpr uint64_t kMasked = 1u << 16;

  /// `local_apics` receives the messages and must outlive the IOAPIC.
  explicit IoApic(ApicMessageSink& local_apics);
  IoApic(const IoApic&) = delete;
  IoApic& operator=(const IoApic&) = delete;

  /// Reset: every entry masked and zero, ID 0, IOREGSEL 0; pin levels stay (the devices
  /// drive them).
  void reset();

  uint32_t read(uint64_t offset, unsigned size) override;
  void write(uint64_t offset, unsigned size, uint32_t value) override;

  /// Pins 0-23 (IrqSink); others are ignored.
  void set_irq_level(unsigned pin, bool level) override;
  /// The local APIC's EOI broadcast of a level-triggered vector.
  void end_of_interrupt(uint8_t vector);

  [[nodiscard]] uint64_t redirection(unsigned pin) const { return pin < kPins ? table_[pin] : 0; }
  [[nodiscard]] const IoApicStats& stats() const { return stats_; }

 private:
  [[nodiscard]] uint32_t read_window() const;
  void write_window(uint32_t value);
  /// Sends pin's message if its entry lets it (requested, unmasked, remote IRR clear).
  void service(unsigned pin);

  ApicMessageSink& local_apics_;
  std::array<uint64_t, kPins> table_{};
  uint32_t requests_ = 0;  ///< edge seen / level asserted, not yet sent (bit per pin)
  uint32_t levels_ = 0;    ///< current pin inputs
  uint8_t select_ = 0;
  uint8_t id_ = 0;
  IoApicStats stats_;
};

}  // namespace vmm86
