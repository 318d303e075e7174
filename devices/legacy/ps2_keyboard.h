// A PS/2 (MF2) keyboard as the i8042 sees it on its keyboard port: it answers the host's
// commands (IBM PS/2 Keyboard Technical Reference; the same set QEMU's and Bochs's models
// answer), so firmware that insists on a keyboard (the Bochs BIOS stops with "Keyboard
// error" without one) and Linux's atkbd find it. Keys typed on a display (VNC) come in as
// PcKey and leave in the keyboard's scancode set: set 1, or set 2 (set 3 is answered as
// set 2), or set 1 again when the controller translates set 2 (its command byte bit 6),
// which is what firmware and Linux use on a PC. No typematic repeat: a client that
// repeats a held key sends the repeats itself.
//   FF reset -> FA AA      F2 identify -> FA AB 83     EE echo -> EE
//   ED LEDs, F3 typematic, F0 scancode set: FA, then FA for the argument (F0 00 reports the set)
//   F4 enable, F5 disable, F6 defaults, F7-FD (set 3 modes) -> FA; FE resend; others -> FE
#pragma once

#include <cstdint>
#include <vector>

namespace vmm86 {

/// A key of the PC keyboard, named by its scancode set 1 make code; `extended` for the
/// E0-prefixed ones (arrows, the right Ctrl and Alt, the editing block, keypad Enter and /).
struct PcKey {
  uint8_t code = 0;
  bool extended = false;
};

class Ps2Keyboard {
 public:
  /// The bytes the keyboard sends for `key` going down (make) or up (break); `translate`:
  /// the controller turns set 2 into set 1. Empty while scanning is disabled or for a code
  /// this keyboard does not have.
  [[nodiscard]] std::vector<uint8_t> key_event(PcKey key, bool down, bool translate) const;

  /// A byte from the host; returns the bytes the keyboard sends back, in order.
  [[nodiscard]] std::vector<uint8_t> receive(uint8_t byte);

  [[nodiscard]] bool scanning() const { return scanning_; }
  [[nodiscard]] uint8_t leds() const { return leds_; }
  [[nodiscard]] uint8_t scancode_set() const { return scancode_set_; }

  static constexpr uint8_t kAck = 0xFA;
  static constexpr uint8_t kResend = 0xFE;
  static constexpr uint8_t kSelfTestPassed = 0xAA;

 private:
  void set_defaults();
  std::vector<uint8_t> reply(std::vector<uint8_t> bytes);

  uint8_t pending_ = 0;  ///< command waiting for its argument byte, 0 = none
  bool scanning_ = true;
  uint8_t leds_ = 0;
  uint8_t scancode_set_ = 2;
  uint8_t typematic_ = 0x2B;  ///< 10.9 characters/s after 500 ms
  std::vector<uint8_t> last_reply_;
};

}  // namespace vmm86
