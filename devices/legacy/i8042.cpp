#include "devices/legacy/i8042.h"

namespace vmm86 {
namespace {

// Status register (port 0x64 read).
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;  // keylock switch open
constexpr uint8_t kStatusAuxData = 0x20;
// Command byte (RAM byte 0).
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrAuxInt = 0x02;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKbdDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;
// What firmware leaves behind: translation on, keyboard interrupt on, aux off, POST done.
constexpr uint8_t kCtrInitial = kCtrKbdInt | kCtrSystemFlag | kCtrAuxDisabled | kCtrTranslate;
// Output port.
constexpr uint8_t kOutResetDeasserted = 0x01;  // 0 holds the CPU in reset
constexpr uint8_t kOutA20 = 0x02;
constexpr uint8_t kOutKbdFull = 0x10;
constexpr uint8_t kOutAuxFull = 0x20;
constexpr uint8_t kOutInitial = 0xCF;  // reset off, A20 on, clock/data lines idle high
// Controller commands.
constexpr uint8_t kCmdReadRamFirst = 0x20;
constexpr uint8_t kCmdReadRamLast = 0x3F;
constexpr uint8_t kCmdWriteRamFirst = 0x60;
constexpr uint8_t kCmdWriteRamLast = 0x7F;
constexpr uint8_t kCmdPasswordInstalled = 0xA4;
constexpr uint8_t kCmdAuxDisable = 0xA7;
constexpr uint8_t kCmdAuxEnable = 0xA8;
constexpr uint8_t kCmdAuxTest = 0xA9;
constexpr uint8_t kCmdSelfTest = 0xAA;
constexpr uint8_t kCmdKbdTest = 0xAB;
constexpr uint8_t kCmdKbdDisable = 0xAD;
constexpr uint8_t kCmdKbdEnable = 0xAE;
constexpr uint8_t kCmdReadInputPort = 0xC0;
constexpr uint8_t kCmdReadOutputPort = 0xD0;
constexpr uint8_t kCmdWriteOutputPort = 0xD1;
constexpr uint8_t kCmdWriteKbdBuffer = 0xD2;
constexpr uint8_t kCmdWriteAuxBuffer = 0xD3;
constexpr uint8_t kCmdWriteAuxDevice = 0xD4;
constexpr uint8_t kCmdA20Off = 0xDD;
constexpr uint8_t kCmdA20On = 0xDF;
constexpr uint8_t kCmdReadTestInputs = 0xE0;
constexpr uint8_t kCmdPulseFirst = 0xF0;  // 0xF0-0xFF pulse output port bits 0-3 that are 0
// Replies.
constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;
constexpr uint8_t kNoPassword = 0xF1;
constexpr uint8_t kInputPort = 0x80;  // keyboard not inhibited
constexpr uint8_t kDeviceResend = 0xFE;

constexpr size_t kOutputQueueLimit = 16;

}  // namespace

I8042::I8042(IrqLine keyboard_irq, IrqLine aux_irq)
    : output_port_(kOutInitial), keyboard_irq_(keyboard_irq), aux_irq_(aux_irq) {
  ram_[0] = kCtrInitial;
}

void I8042::reset() {
  const bool a20_before = a20_enabled();
  ram_ = {};
  ram_[0] = kCtrInitial;
  output_.clear();
  keys_.clear();
  last_output_ = 0;
  pending_command_ = 0;
  output_port_ = kOutInitial;
  last_write_was_command_ = false;
  keyboard_ = Ps2Keyboard{};
  keyboard_irq_.lower();
  aux_irq_.lower();
  if (a20_enabled() != a20_before && a20_listener_) a20_listener_(a20_enabled());
}

bool I8042::a20_enabled() const { return (output_port_ & kOutA20) != 0; }

uint32_t I8042::Window::read(uint16_t /*offset*/, unsigned /*size*/) {
  return command_ ? controller_.status() : controller_.read_data();
}

void I8042::Window::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  if (command_) {
    controller_.write_command(static_cast<uint8_t>(value));
  } else {
    controller_.write_data(static_cast<uint8_t>(value));
  }
}

uint8_t I8042::status() const {
  uint8_t s = kStatusNotInhibited;
  if (!output_.empty()) {
    s |= kStatusOutputFull;
    if (output_.front().aux) s |= kStatusAuxData;
  }
  if (ram_[0] & kCtrSystemFlag) s |= kStatusSystemFlag;
  if (last_write_was_command_) s |= kStatusLastWasCommand;
  return s;
}

uint8_t I8042::read_data() {
  if (output_.empty()) return last_output_;
  last_output_ = output_.front().value;
  output_.pop_front();
  // The next byte, if any, must reach the (edge-triggered) PIC as a new edge.
  keyboard_irq_.lower();
  aux_irq_.lower();
  update_irqs();
  pump_keys();
  return last_output_;
}

void I8042::key_event(PcKey key, bool down) {
  for (const uint8_t byte : keyboard_.key_event(key, down, (ram_[0] & kCtrTranslate) != 0)) {
    if (keys_.size() < kKeyQueueLimit) keys_.push_back(byte);
  }
  pump_keys();
}

void I8042::pump_keys() {
  if (keys_.empty() || !output_.empty() || (ram_[0] & kCtrKbdDisabled) != 0) return;
  const uint8_t byte = keys_.front();
  keys_.pop_front();
  queue_output(byte, false);
}

void I8042::write_command(uint8_t command) {
  last_write_was_command_ = true;
  pending_command_ = 0;
  if (command >= kCmdReadRamFirst && command <= kCmdReadRamLast) {
    queue_output(ram_[command - kCmdReadRamFirst], false);
    return;
  }
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    pending_command_ = command;
    return;
  }
  if (command >= kCmdPulseFirst) {
    if (!(command & kOutResetDeasserted)) request_reset();
    return;
  }
  switch (command) {
    case kCmdPasswordInstalled: queue_output(kNoPassword, false); break;
    case kCmdAuxDisable: ram_[0] |= kCtrAuxDisabled; break;
    case kCmdAuxEnable: ram_[0] &= static_cast<uint8_t>(~kCtrAuxDisabled); break;
    case kCmdAuxTest:
    case kCmdKbdTest: queue_output(kInterfaceOk, false); break;
    case kCmdSelfTest:
      ram_[0] |= kCtrSystemFlag;
      queue_output(kSelfTestPassed, false);
      break;
    case kCmdKbdDisable: ram_[0] |= kCtrKbdDisabled; break;
    case kCmdKbdEnable:
      ram_[0] &= static_cast<uint8_t>(~kCtrKbdDisabled);
      pump_keys();
      break;
    case kCmdReadInputPort: queue_output(kInputPort, false); break;
    case kCmdReadOutputPort: {
      uint8_t port = output_port_ & static_cast<uint8_t>(~(kOutKbdFull | kOutAuxFull));
      if (!output_.empty()) port |= output_.front().aux ? kOutAuxFull : kOutKbdFull;
      queue_output(port, false);
      break;
    }
    case kCmdWriteOutputPort:
    case kCmdWriteKbdBuffer:
    case kCmdWriteAuxBuffer:
    case kCmdWriteAuxDevice: pending_command_ = command; break;
    case kCmdA20Off: write_output_port(output_port_ & static_cast<uint8_t>(~kOutA20)); break;
    case kCmdA20On: write_output_port(output_port_ | kOutA20); break;
    case kCmdReadTestInputs: queue_output(0x00, false); break;
    default: break;  // unknown commands are ignored, as most controllers do
  }
}

void I8042::write_data(uint8_t value) {
  last_write_was_command_ = false;
  const uint8_t command = pending_command_;
  pending_command_ = 0;
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    ram_[command - kCmdWriteRamFirst] = value;
    update_irqs();
    pump_keys();
    return;
  }
  switch (command) {
    case kCmdWriteOutputPort: write_output_port(value); break;
    case kCmdWriteKbdBuffer: queue_output(value, false); break;
    case kCmdWriteAuxBuffer: queue_output(value, true); break;
    case kCmdWriteAuxDevice:
      queue_output(kDeviceResend, true);  // no mouse: ask for a resend, the driver gives up
      break;
    default:
      for (const uint8_t reply : keyboard_.receive(value)) queue_output(reply, false);
      break;
  }
}

void I8042::queue_output(uint8_t value, bool aux) {
  if (output_.size() >= kOutputQueueLimit) return;
  output_.push_back(OutputByte{value, aux});
  update_irqs();
}

void I8042::write_output_port(uint8_t value) {
  const bool a20_before = a20_enabled();
  output_port_ = value | kOutResetDeasserted;  // the reset line does not stay asserted
  if (a20_enabled() != a20_before && a20_listener_) a20_listener_(a20_enabled());
  if (!(value & kOutResetDeasserted)) request_reset();
}

void I8042::request_reset() {
  ++reset_requests_;
  if (reset_request_) reset_request_();
}

void I8042::update_irqs() {
  const bool full = !output_.empty();
  const bool aux = full && output_.front().aux;
  keyboard_irq_.set_level(full && !aux && (ram_[0] & kCtrKbdInt));
  aux_irq_.set_level(aux && (ram_[0] & kCtrAuxInt));
}

}  // namespace vmm86
