#include "devices/apic/io_apic.h"

namespace vmm86 {
namespace {

// Writable bits of a redirection entry: vector, delivery and destination mode, polarity,
// trigger mode, mask, destination. Delivery status and remote IRR are read-only (delivery
// status reads 0: a message is sent at once).
constexpr uint64_t kEntryWritable = 0xFF00'0000'0001'AFFFull;
constexpr uint32_t kIdMask = 0x0F00'0000;

uint32_t pin_bit(unsigned pin) { return 1u << pin; }

}  // namespace

IoApic::IoApic(ApicMessageSink& local_apics) : local_apics_(local_apics) { reset(); }

void IoApic::reset() {
  table_.fill(kMasked);
  requests_ = 0;
  select_ = 0;
  id_ = 0;
}

uint32_t IoApic::read(uint64_t offset, unsigned size) {
  if (offset == kRegisterSelect) return select_;
  if (offset == kWindow && size == 4) return read_window();
  return 0;
}

void IoApic::write(uint64_t offset, unsigned size, uint32_t value) {
  if (offset == kRegisterSelect) {
    select_ = static_cast<uint8_t>(value);
  } else if (offset == kWindow && size == 4) {
    write_window(value);
  } else if (offset == kEoi && size == 4) {
    end_of_interrupt(static_cast<uint8_t>(value));
  }
}

uint32_t IoApic::read_window() const {
  switch (select_) {
    case kIndexId:
    case kIndexArbitration: return static_cast<uint32_t>(id_) << 24;
    case kIndexVersion: return kVersion;
    default: break;
  }
  if (select_ < kIndexRedirection) return 0;
  const unsigned pin = (select_ - kIndexRedirection) / 2u;
  if (pin >= kPins) return 0;
  const uint64_t entry = table_[pin];
  return static_cast<uint32_t>((select_ & 1) ? entry >> 32 : entry);
}

void IoApic::write_window(uint32_t value) {
  if (select_ == kIndexId) {
    id_ = static_cast<uint8_t>((value & kIdMask) >> 24);
    return;
  }
  if (select_ < kIndexRedirection) return;  // version, arbitration, reserved
  const unsigned pin = (select_ - kIndexRedirection) / 2u;
  if (pin >= kPins) return;
  uint64_t& entry = table_[pin];
  const uint64_t updated = (select_ & 1) ? (entry & 0xFFFF'FFFFull) | (uint64_t{value} << 32)
                                         : (entry & ~0xFFFF'FFFFull) | value;
  entry = (updated & kEntryWritable) | (entry & kRemoteIrr);
  if ((entry & kLevelTriggered) == 0) entry &= ~kRemoteIrr;
  // An edge entry forgets what came while it was masked; a level one sends at once if its
  // pin is asserted (unmasking a pending level interrupt).
  if ((entry & kLevelTriggered) == 0) {
    requests_ &= ~pin_bit(pin);
  } else if (levels_ & pin_bit(pin)) {
    requests_ |= pin_bit(pin);
  }
  service(pin);
}

void IoApic::set_irq_level(unsigned pin, bool level) {
  if (pin >= kPins) return;
  const uint32_t bit = pin_bit(pin);
  const bool rising = level && (levels_ & bit) == 0;
  levels_ = level ? levels_ | bit : levels_ & ~bit;
  const uint64_t entry = table_[pin];
  if (entry & kLevelTriggered) {
    requests_ = level ? requests_ | bit : requests_ & ~bit;
    if (level && (entry & kRemoteIrr)) ++stats_.level_held;
  } else if (rising) {
    if (entry & kMasked) {
      ++stats_.masked_edges;
      return;
    }
    requests_ |= bit;
  }
  service(pin);
}

void IoApic::service(unsigned pin) {
  const uint32_t bit = pin_bit(pin);
  uint64_t& entry = table_[pin];
  if ((requests_ & bit) == 0 || (entry & kMasked) != 0) return;
  if (entry & kLevelTriggered) {
    if (entry & kRemoteIrr) return;  // the last one is not EOIed yet
    entry |= kRemoteIrr;             // the request stays while the pin is asserted
  } else {
    requests_ &= ~bit;
  }
  ApicMessage m;
  m.vector = static_cast<uint8_t>(entry);
  m.mode = static_cast<ApicDeliveryMode>((entry >> 8) & 7);
  m.logical = ((entry >> 11) & 1) != 0;
  m.destination = static_cast<uint8_t>(entry >> 56);
  m.level_triggered = (entry & kLevelTriggered) != 0;
  ++stats_.messages;
  local_apics_.deliver(m);
}

void IoApic::end_of_interrupt(uint8_t vector) {
  for (unsigned pin = 0; pin < kPins; ++pin) {
    uint64_t& entry = table_[pin];
    if ((entry & 0xFF) != vector || (entry & kLevelTriggered) == 0 || (entry & kRemoteIrr) == 0) continue;
    entry &= ~kRemoteIrr;
    ++stats_.remote_irr_cleared;
    service(pin);  // still asserted: again
  }
}

}  // namespace vmm86
