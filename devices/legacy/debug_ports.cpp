#include "devices/legacy/debug_ports.h"

namespace vmm86 {

uint32_t PostCodePort::read(uint16_t /*offset*/, unsigned /*size*/) { return last_code_; }

void PostCodePort::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  last_code_ = static_cast<uint8_t>(value);
}

uint32_t DebugConsolePort::read(uint16_t /*offset*/, unsigned /*size*/) { return kSignature; }

void DebugConsolePort::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  ++bytes_written_;
  if (sink_) sink_(static_cast<uint8_t>(value));
}

}  // namespace vmm86
