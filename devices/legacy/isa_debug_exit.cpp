#include "devices/legacy/isa_debug_exit.h"

namespace vmm86 {

uint32_t IsaDebugExit::read(uint16_t /*offset*/, unsigned /*size*/) { return 0; }

void IsaDebugExit::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  // The first write ends the machine; a second one (the upper half of a split access, or
  // code that runs on until the vCPU stops) changes nothing.
  if (value_) return;
  value_ = value;
  if (exit_request_) exit_request_(value);
}

}  // namespace vmm86
