// The PC/AT pair of Intel 8259A programmable interrupt controllers: master at ports
// 0x20-0x21 (IRQ 0-7), slave at 0xA0-0xA1 (IRQ 8-15) cascaded into master IR2, and the
// PIIX-style edge/level control registers (ELCR) at 0x4D0-0x4D1.
// Implemented: ICW1-4 (cascade, LTIM, AEOI, SFNM), OCW1 masks, OCW2 non-specific /
// specific EOI and the rotations, OCW3 IRR/ISR read, poll and special mask mode,
// per-pin edge or level triggering, spurious IRQ 7 / IRQ 15.
// Not implemented: buffered mode and 8080 call sequences (meaningless on an x86 PC).
// The slave's INT output reaches master IR2 as a level, whatever the ELCR says, so a
// slave request still pending after an acknowledge cannot be lost. Spurious interrupts:
// a request withdrawn before acknowledge() yields IRQ 7's vector with nothing put in
// service. Because acknowledge() is atomic, the slave cannot lose its request between
// the master's and its own INTA, so the spurious IRQ 15 of real hardware does not
// arise; the guest still handles both.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "devices/io_device.h"
#include "devices/irq_line.h"

namespace vmm86 {

/// One 8259A's registers and programming state.
struct Pic8259Chip {
  enum class InitStep : uint8_t { Ready, Icw2, Icw3, Icw4 };

  uint8_t irr = 0;   ///< interrupt request register
  uint8_t isr = 0;   ///< in-service register
  uint8_t imr = 0;   ///< interrupt mask register (OCW1)
  uint8_t pins = 0;  ///< current input levels (edge detection)
  uint8_t elcr = 0;  ///< 1 = level-triggered (ELCR port)
  uint8_t elcr_writable = 0;
  uint8_t vector_base = 0;  ///< ICW2, low 3 bits zero
  uint8_t icw3 = 0;
  uint8_t priority_base = 0;  ///< the IR with the highest priority (rotation)
  InitStep init_step = InitStep::Ready;
  bool icw4_expected = false;
  bool single = false;          ///< ICW1 SNGL: no ICW3
  bool level_all = false;       ///< ICW1 LTIM: every input level-triggered
  bool auto_eoi = false;        ///< ICW4 AEOI
  bool rotate_on_aeoi = false;  ///< OCW2 rotate in automatic EOI mode
  bool special_nested = false;  ///< ICW4 SFNM (master only)
  bool special_mask = false;    ///< OCW3 SMM
  bool poll = false;            ///< OCW3 P: the next command-port read is a poll
  bool read_isr = false;        ///< OCW3 RIS: command-port reads return ISR, else IRR
};

class Pic8259 final : public IrqSink {
 public:
  enum class Chip : uint8_t { Master, Slave };

  Pic8259();
  Pic8259(const Pic8259&) = delete;
  /// System reset: both chips uninitialized (ELCR 0); the input levels stay, as the devices
  /// driving them decide those.
  void reset();
  Pic8259& operator=(const Pic8259&) = delete;

  /// Port windows to register: 2 ports each (command, data) and 2 for the ELCR.
  [[nodiscard]] PortIoDevice& master_ports() { return master_window_; }
  [[nodiscard]] PortIoDevice& slave_ports() { return slave_window_; }
  [[nodiscard]] PortIoDevice& elcr_ports() { return elcr_window_; }

  /// IRQ 0-15 input pins (IrqSink). IRQ 2 is the cascade and ignores outside input.
  void set_irq_level(unsigned irq, bool level) override;

  /// The master's INT output: is there an interrupt for the CPU (when IF allows)?
  [[nodiscard]] bool interrupt_pending() const { return int_output_; }
  /// The INTA cycle: returns the vector and moves the request into service. With nothing
  /// pending (the request went away) this is a spurious IRQ 7 (or 15 via the slave).
  [[nodiscard]] uint8_t acknowledge();
  /// Called with the new INT level whenever it changes, e.g. to set the vCPU's pending flag.
  void set_output_listener(std::function<void(bool)> listener) { output_listener_ = std::move(listener); }

  [[nodiscard]] const Pic8259Chip& chip(Chip c) const { return chips_[static_cast<unsigned>(c)]; }

  struct Stats {
    std::array<uint64_t, 16> raised{};  ///< rising edges per input pin
    uint64_t acknowledged = 0;          ///< INTA cycles
    uint64_t spurious = 0;              ///< of which spurious (IRQ 7 / 15)
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  enum class Window : uint8_t { Master, Slave, Elcr };
  class Ports final : public PortIoDevice {
   public:
    Ports(Pic8259& pic, Window window) : pic_(pic), window_(window) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    Pic8259& pic_;
    Window window_;
  };

  [[nodiscard]] uint8_t read_port(Window window, uint16_t offset);
  void write_port(Window window, uint16_t offset, uint8_t value);
  void write_command(Pic8259Chip& c, uint8_t value);
  void write_data(Pic8259Chip& c, uint8_t value);
  void write_elcr(Pic8259Chip& c, uint8_t value);
  void set_pin(Pic8259Chip& c, unsigned ir, bool level);
  [[nodiscard]] bool is_master(const Pic8259Chip& c) const { return &c == &chips_[0]; }
  [[nodiscard]] uint8_t level_mask(const Pic8259Chip& c) const;
  /// The IR to present next on `c`, or -1.
  [[nodiscard]] int highest_request(const Pic8259Chip& c) const;
  void start_service(Pic8259Chip& c, unsigned ir);
  [[nodiscard]] uint8_t poll(Pic8259Chip& c);
  /// Recomputes the cascade and INT output after any change.
  void update();

  std::array<Pic8259Chip, 2> chips_{};
  bool int_output_ = false;
  std::function<void(bool)> output_listener_;
  Stats stats_;
  Ports master_window_{*this, Window::Master};
  Ports slave_window_{*this, Window::Slave};
  Ports elcr_window_{*this, Window::Elcr};
};

}  // namespace vmm86
