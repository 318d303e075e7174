// What travels between APICs (Intel SDM Vol. 3A §10.6, the IOAPIC's redirection entries
// and the local APIC's ICR share the format): an interrupt message with its vector,
// delivery mode, destination and trigger mode. On the P6 this was the 3-wire APIC bus,
// on later CPUs the system bus; here it is a function call on the vCPU thread.
#pragma once

#include <cstdint>

namespace vmm86 {

/// Delivery modes (ICR / LVT / redirection entry bits 10:8).
enum class ApicDeliveryMode : uint8_t {
  Fixed = 0,
  LowestPriority = 1,
  Smi = 2,
  Nmi = 4,
  Init = 5,
  StartUp = 6,
  ExtInt = 7,
};

/// One interrupt message. `destination` is an APIC ID (physical mode, 0xFF: everyone) or
/// a message destination address matched against LDR/DFR (logical mode).
struct ApicMessage {
  uint8_t vector = 0;
  ApicDeliveryMode mode = ApicDeliveryMode::Fixed;
  bool logical = false;  ///< destination mode
  uint8_t destination = 0;
  bool level_triggered = false;
  bool assert_level = true;  ///< the ICR's Level bit: false only for the INIT level de-assert
};

/// Whoever accepts interrupt messages from the bus (the local APICs).
class ApicMessageSink {
 public:
  virtual void deliver(const ApicMessage& message) = 0;

 protected:
  ~ApicMessageSink() = default;
};

}  // namespace vmm86
