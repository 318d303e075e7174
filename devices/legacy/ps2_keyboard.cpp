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
constexpr uint8_t kExtendedPrefix = 0xE0, kSet1Break = 0x80, kSet2Break = 0xF0;

/// Set 2 make codes by set 1 make code (0x00-0x58); 0: no such key. The E0 keys use the
/// code of the key they double (Up E0 48 is set 2 E0 75, as keypad 8 is 75).
constexpr uint8_t kSet1ToSet2[0x59] = {
    0x00, 0x76, 0x16, 0x1E, 0x26, 0x25, 0x2E, 0x36, 0x3D, 0x3E, 0x46, 0x45, 0x4E, 0x55, 0x66, 0x0D,  // 00-0F
    0x15, 0x1D, 0x24, 0x2D, 0x2C, 0x35, 0x3C, 0x43, 0x44, 0x4D, 0x54, 0x5B, 0x5A, 0x14, 0x1C, 0x1B,  // 10-1F
    0x23, 0x2B, 0x34, 0x33, 0x3B, 0x42, 0x4B, 0x4C, 0x52, 0x0E, 0x12, 0x5D, 0x1A, 0x22, 0x21, 0x2A,  // 20-2F
    0x32, 0x31, 0x3A, 0x41, 0x49, 0x4A, 0x59, 0x7C, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0C, 0x03,  // 30-3F
    0x0B, 0x83, 0x0A, 0x01, 0x09, 0x77, 0x7E, 0x6C, 0x75, 0x7D, 0x7B, 0x6B, 0x73, 0x74, 0x79, 0x69,  // 40-4F
    0x72, 0x7A, 0x70, 0x71, 0x00, 0x00, 0x61, 0x78, 0x07,                                            // 50-58
};

}  // namespace

std::vector<uint8_t> Ps2Keyboard::key_event(PcKey key, bool down, bool translate) const {
  if (!scanning_ || key.code == 0 || key.code >= sizeof kSet1ToSet2 || kSet1ToSet2[key.code] == 0) return {};
  std::vector<uint8_t> bytes;
  if (key.extended) bytes.push_back(kExtendedPrefix);
  if (scancode_set_ == 1 || translate) {
    bytes.push_back(down ? key.code : static_cast<uint8_t>(key.code | kSet1Break));
  } else {
    if (!down) bytes.push_back(kSet2Break);
    bytes.push_back(kSet1ToSet2[key.code]);
  }
  return bytes;
}

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
