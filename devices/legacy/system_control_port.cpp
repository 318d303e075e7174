#include "devices/legacy/system_control_port.h"

namespace vmm86 {

uint32_t SystemControlPortA::read(uint16_t /*offset*/, unsigned /*size*/) { return value_; }

void SystemControlPortA::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  const uint8_t before = value_;
  value_ = static_cast<uint8_t>(value);
  if (((before ^ value_) & kA20) != 0 && a20_listener_) a20_listener_();
  if ((value_ & kFastReset) != 0 && (before & kFastReset) == 0 && reset_request_) reset_request_();
}

}  // namespace vmm86
