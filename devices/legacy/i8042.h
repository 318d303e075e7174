// Intel 8042 keyboard controller at ports 0x60 (data) and 0x64 (status / command), with
// a PS/2 keyboard on its keyboard port (IRQ 1; devices/legacy/ps2_keyboard.h) and nothing
// on its auxiliary port (IRQ 12): a byte for the mouse is answered with 0xFE (resend), so
// psmouse gives up at once instead of waiting for timeouts. Controller commands: read/write RAM (command byte at
// 0x20/0x60), self-test 0xAA -> 0x55, interface tests, enable/disable ports, the input and output ports, loopback
// writes to the output buffers (0xD2, 0xD3: Linux's AUX loop test and IRQ 12 check), 0xD4 (to the aux device), A20 via
// the output port, and reset: output port bit 0 low (0xD1) or a pulse command 0xF0-0xFF with bit 0 clear (0xFE) calls
// the reset request callback. The controller answers at once, so IBF always reads 0.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>

#include "devices/io_device.h"
#include "devices/irq_line.h"
#include "devices/legacy/ps2_keyboard.h"

namespace vmm86 {

class I8042 {
 public:
  I8042(IrqLine keyboard_irq, IrqLine aux_irq);
  I8042(const I8042&) = delete;
  /// System reset: the controller and the keyboard to power-on state (A20 on).
  void reset();
  I8042& operator=(const I8042&) = delete;

  /// Port windows to register: data at 0x60, status/command at 0x64 (one port each;
  /// 0x61-0x63 belong to other devices).
  [[nodiscard]] PortIoDevice& data_port() { return data_window_; }
  [[nodiscard]] PortIoDevice& command_port() { return command_window_; }

  /// Called when the guest asks the controller to reset the system.
  void set_reset_request(std::function<void()> callback) { reset_request_ = std::move(callback); }
  /// Called with the new A20 state when the guest changes it through the output port.
  void set_a20_listener(std::function<void(bool)> listener) { a20_listener_ = std::move(listener); }
  [[nodiscard]] bool a20_enabled() const;
  [[nodiscard]] uint8_t command_byte() const { return ram_[0]; }
  /// A key typed on a display: its bytes reach the guest one at a time, each as the output
  /// buffer empties, while the keyboard port is enabled (at most kKeyQueueLimit wait).
  void key_event(PcKey key, bool down);
  static constexpr size_t kKeyQueueLimit = 256;
  [[nodiscard]] uint8_t status() const;
  [[nodiscard]] uint64_t reset_requests() const { return reset_requests_; }

 private:
  class Window final : public PortIoDevice {
   public:
    Window(I8042& controller, bool command) : controller_(controller), command_(command) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    I8042& controller_;
    bool command_;
  };
  struct OutputByte {
    uint8_t value;
    bool aux;
  };
  [[nodiscard]] uint8_t read_data();
  void write_command(uint8_t command);
  void write_data(uint8_t value);
  void queue_output(uint8_t value, bool aux);
  void write_output_port(uint8_t value);
  void request_reset();
  void update_irqs();
  /// Moves the next typed byte into the empty output buffer.
  void pump_keys();

  std::deque<uint8_t> keys_;       ///< bytes the keyboard has yet to send
  std::array<uint8_t, 32> ram_{};  ///< internal RAM; byte 0 is the command byte
  std::deque<OutputByte> output_;  ///< the output buffer's byte, then those queued behind it
  uint8_t last_output_ = 0;        ///< what 0x60 reads when the buffer is empty
  uint8_t pending_command_ = 0;    ///< command waiting for its data byte, 0 = none
  uint8_t output_port_;
  bool last_write_was_command_ = false;
  uint64_t reset_requests_ = 0;
  Ps2Keyboard keyboard_;
  IrqLine keyboard_irq_;
  IrqLine aux_irq_;
  std::function<void()> reset_request_;
  std::function<void(bool)> a20_listener_;
  Window data_window_{*this, false};
  Window command_window_{*this, true};
};

}  // namespace vmm86
