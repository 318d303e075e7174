// National Semiconductor 16550A UART (8 registers from the base: COM1 0x3F8 IRQ 4, COM2
// 0x2F8 IRQ 3). Transmission is instantaneous: a byte written to THR goes to the output
// sink at once, so THR and the shift register always read empty and a THRE interrupt
// follows every write. Reception: the host pushes bytes into the 16-byte RX FIFO (one
// byte holding register with FIFOs off); push_input() takes only what fits, so the
// host keeps the rest and never causes an overrun (a loopback write into a full FIFO
// does). Interrupts: receiver line status, received data (the FIFO trigger level), a
// character timeout reported at once for data below the trigger level (the host delivers
// bursts, so there is nothing to wait for), THRE, modem status. As on a PC board, the
// IRQ line is driven only while MCR OUT2 is set and loopback is off.
// The modem inputs (host side) read as DCD, DSR and CTS asserted; loopback feeds MCR
// back into MSR and THR into RBR. Baud rate and line format are stored, not used.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>

#include "devices/io_device.h"
#include "devices/irq_line.h"

namespace vmm86 {

/// Where transmitted bytes go (e.g. the terminal).
using ByteSink = std::function<void(uint8_t byte)>;

/// The registers, as the guest programs them.
struct Uart16550Regs {
  uint8_t ier = 0;
  uint8_t lcr = 0;
  uint8_t mcr = 0;
  uint8_t lsr = 0;  ///< error bits (OE PE FE BI); DR, THRE, TEMT are derived
  uint8_t msr = 0;
  uint8_t scr = 0;
  uint8_t dll = 0;
  uint8_t dlm = 0;
  uint8_t fcr = 0;            ///< as last written (write-only register)
  bool thre_pending = false;  ///< THRE interrupt latched, cleared by an IIR read or a THR write
};

class Uart16550 final : public PortIoDevice {
 public:
  static constexpr unsigned kFifoSize = 16;

  explicit Uart16550(IrqLine irq);
  Uart16550(const Uart16550&) = delete;
  /// System reset (MR): registers to their reset values, the receive FIFO emptied.
  void reset();
  Uart16550& operator=(const Uart16550&) = delete;

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Host side: transmitted bytes go to `sink` (dropped while none is set).
  void set_output(ByteSink sink) { sink_ = std::move(sink); }
  /// Host side: queues received bytes; returns how many fit (the rest is for later).
  size_t push_input(std::span<const uint8_t> bytes);
  /// Host side: how many bytes push_input() would take now.
  [[nodiscard]] size_t rx_free() const { return rx_capacity() - rx_count_; }

  [[nodiscard]] const Uart16550Regs& regs() const { return regs_; }
  /// The IIR value a read would return now (without its side effect).
  [[nodiscard]] uint8_t interrupt_id() const;

  struct Stats {
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
    uint64_t overruns = 0;
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  [[nodiscard]] bool fifo_enabled() const { return (regs_.fcr & 0x01) != 0; }
  [[nodiscard]] size_t rx_capacity() const { return fifo_enabled() ? kFifoSize : 1; }
  [[nodiscard]] unsigned rx_trigger() const;
  void rx_push(uint8_t byte);
  [[nodiscard]] uint8_t rx_pop();
  void rx_clear();
  void transmit(uint8_t byte);
  void write_fcr(uint8_t value);
  void write_mcr(uint8_t value);
  /// Sets MSR's status bits and the delta bits for those that changed.
  void set_modem_status(uint8_t status);
  void update_irq();

  Uart16550Regs regs_;
  std::array<uint8_t, kFifoSize> rx_{};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;
  IrqLine irq_;
  ByteSink sink_;
  Stats stats_;
};

}  // namespace vmm86
