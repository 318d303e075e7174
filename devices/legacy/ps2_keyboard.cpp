#include "devices/legacy/ps2_keyboard.h"

namespace vmm86 {
namespace {

enum : uint8_t {
  kSetLeds = 0xED,
  kEcho = 0xEE,
  kScancodeSet = 0xF0,
  kIdentify = 0xF2,
  kTypematic = 0xF3,
  kEnable = 0xF4,
  kDisable = 0xF5,
  kDefaults = 0xF6,
  kSet3First = 0xF7,  ///< F7-FD: set-3 key modes, acknowledged and ignored
  kSet3Last = 0xFD,
  kResendCommand = 0xFE,
  kReset = 0xFF,
};
constexpr uint8_t kIdFirst = 0xAB, kIdSecond = 0x83;  ///< MF2 keyboard

}  // namespace

void Ps2Keyboard::set_defaults() {
  scancode_set_ = 2;
  typematic_ = 0x2B;
}

std::vector<uint8_t> Ps2Keyboard::reply(std::vector<uint8_t> bytes) {
  last_reply_ = bytes;
  return bytes;
}

std::vector<uint8_t> Ps2Keyboard::receive(uint8_t byte) {
  if (const uint8_t command = pending_; command != 0) {
    pending_ = 0;
    switch (command) {
      case kSetLeds: leds_ = byte & 7; return reply({kAck});
      case kTypematic: typematic_ = byte & 0x7F; return reply({kAck});
      case kScancodeSet:
        if (byte == 0) return reply({kAck, scancode_set_});
        if (byte <= 3) {
          scancode_set_ = byte;
          return reply({kAck});
        }
        return reply({kResend});
      default: break;
    }
  }
  switch (byte) {
    case kSetLeds:
    case kTypematic:
    case kScancodeSet: pending_ = byte; return reply({kAck});
    case kEcho: return reply({kEcho});
    case kIdentify: return reply({kAck, kIdFirst, kIdSecond});
    case kEnable: scanning_ = true; return reply({kAck});
    case kDisable:
      scanning_ = false;
      set_defaults();
      return reply({kAck});
    case kDefaults: set_defaults(); return reply({kAck});
    case kResendCommand: return last_reply_;
    case kReset:
      set_defaults();
      scanning_ = true;
      leds_ = 0;
      return reply({kAck, kSelfTestPassed});
    default:
      if (byte >= kSet3First && byte <= kSet3Last) return reply({kAck});
      return reply({kResend});
  }
}

}  // namespace vmm86
