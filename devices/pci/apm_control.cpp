#include "devices/pci/apm_control.h"

namespace vmm86 {

uint32_t ApmControl::read(uint16_t offset, unsigned /*size*/) { return offset == 0 ? command_ : status_; }

void ApmControl::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  const auto byte = static_cast<uint8_t>(value);
  if (offset != 0) {
    status_ = byte;
    return;
  }
  command_ = byte;
  if (handler_) handler_(byte);
}

}  // namespace vmm86
