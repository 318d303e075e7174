#include "devices/legacy/pic8259.h"

namespace vmm86 {
namespace {

// Command port (offset 0) writes, told apart by bits 4 and 3.
constexpr uint8_t kIcw1 = 0x10;
constexpr uint8_t kOcw3 = 0x08;
// ICW1
constexpr uint8_t kIcw1Icw4 = 0x01;
constexpr uint8_t kIcw1Single = 0x02;
constexpr uint8_t kIcw1Ltim = 0x08;
// ICW4
constexpr uint8_t kIcw4Aeoi = 0x02;
constexpr uint8_t kIcw4Sfnm = 0x10;
// OCW2 commands (bits 7..5)
constexpr uint8_t kOcw2RotateAeoiClear = 0;
constexpr uint8_t kOcw2NonSpecificEoi = 1;
constexpr uint8_t kOcw2Nop = 2;
constexpr uint8_t kOcw2SpecificEoi = 3;
constexpr uint8_t kOcw2RotateAeoiSet = 4;
constexpr uint8_t kOcw2RotateNonSpecificEoi = 5;
constexpr uint8_t kOcw2SetPriority = 6;
constexpr uint8_t kOcw2RotateSpecificEoi = 7;
// OCW3
constexpr uint8_t kOcw3ReadIsr = 0x01;
constexpr uint8_t kOcw3ReadSelect = 0x02;
constexpr uint8_t kOcw3Poll = 0x04;
constexpr uint8_t kOcw3SetSmm = 0x20;
constexpr uint8_t kOcw3SmmSelect = 0x40;

constexpr unsigned kCascadeIr = 2;
constexpr int kNone = -1;
// IRQ 0, 1, 2 (timer, keyboard, cascade) and 8, 13 (RTC, FPU) are always edge on a PC.
constexpr uint8_t kMasterElcrWritable = 0xF8;
constexpr uint8_t kSlaveElcrWritable = 0xDE;

uint8_t bit(unsigned ir) { return static_cast<uint8_t>(1u << ir); }

// Priority rank 0 (highest) .. 7 of the highest-priority IR in `mask`; 8 if empty.
unsigned best_rank(uint8_t mask, uint8_t priority_base) {
  for (unsigned rank = 0; rank < 8; ++rank) {
    if (mask & bit((rank + priority_base) & 7)) return rank;
  }
  return 8;
}

}  // namespace

Pic8259::Pic8259() {
  chips_[0].elcr_writable = kMasterElcrWritable;
  chips_[1].elcr_writable = kSlaveElcrWritable;
}

void Pic8259::reset() {
  for (size_t i = 0; i < chips_.size(); ++i) {
    const uint8_t pins = chips_[i].pins;
    chips_[i] = Pic8259Chip{};
    chips_[i].pins = pins;
    chips_[i].elcr_writable = i == 0 ? kMasterElcrWritable : kSlaveElcrWritable;
  }
  update();
}

uint32_t Pic8259::Ports::read(uint16_t offset, unsigned /*size*/) { return pic_.read_port(window_, offset); }

void Pic8259::Ports::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  pic_.write_port(window_, offset, static_cast<uint8_t>(value));
}

uint8_t Pic8259::level_mask(const Pic8259Chip& c) const {
  uint8_t mask = c.level_all ? 0xFF : c.elcr;
  if (is_master(c)) mask |= bit(kCascadeIr);  // see the header: the cascade is a level
  return mask;
}

void Pic8259::set_pin(Pic8259Chip& c, unsigned ir, bool level) {
  const uint8_t b = bit(ir);
  const bool was = (c.pins & b) != 0;
  if (level) {
    c.pins |= b;
    // Edge mode latches the rising edge only; level mode follows the pin.
    if (!was || (level_mask(c) & b)) c.irr |= b;
  } else {
    c.pins &= static_cast<uint8_t>(~b);
    if (level_mask(c) & b) c.irr &= static_cast<uint8_t>(~b);
  }
}

void Pic8259::set_irq_level(unsigned irq, bool level) {
  if (irq >= 16 || irq == kCascadeIr) return;
  Pic8259Chip& c = chips_[irq >> 3];
  if (level && !(c.pins & bit(irq & 7))) ++stats_.raised[irq];
  set_pin(c, irq & 7, level);
  update();
}

int Pic8259::highest_request(const Pic8259Chip& c) const {
  const uint8_t requests = static_cast<uint8_t>(c.irr & ~c.imr);
  if (c.special_mask) {
    // SMM: any unmasked request not itself in service may interrupt, whatever its rank.
    const unsigned rank = best_rank(static_cast<uint8_t>(requests & ~c.isr), c.priority_base);
    return rank == 8 ? kNone : static_cast<int>((rank + c.priority_base) & 7);
  }
  const unsigned rank = best_rank(requests, c.priority_base);
  if (rank == 8) return kNone;
  uint8_t in_service = c.isr;
  // SFNM: a higher-priority slave request may interrupt a slave handler in service.
  if (is_master(c) && c.special_nested) in_service &= static_cast<uint8_t>(~bit(kCascadeIr));
  return rank < best_rank(in_service, c.priority_base) ? static_cast<int>((rank + c.priority_base) & 7) : kNone;
}

void Pic8259::start_service(Pic8259Chip& c, unsigned ir) {
  if (c.auto_eoi) {
    if (c.rotate_on_aeoi) c.priority_base = static_cast<uint8_t>((ir + 1) & 7);
  } else {
    c.isr |= bit(ir);
  }
  if (!(level_mask(c) & bit(ir))) c.irr &= static_cast<uint8_t>(~bit(ir));
}

void Pic8259::update() {
  Pic8259Chip& master = chips_[0];
  set_pin(master, kCascadeIr, highest_request(chips_[1]) != kNone);
  const bool out = highest_request(master) != kNone;
  if (out == int_output_) return;
  int_output_ = out;
  if (output_listener_) output_listener_(out);
}

uint8_t Pic8259::acknowledge() {
  ++stats_.acknowledged;
  Pic8259Chip& master = chips_[0];
  Pic8259Chip& slave = chips_[1];
  uint8_t vector = 0;
  const int ir = highest_request(master);
  if (ir == kNone) {
    ++stats_.spurious;
    vector = static_cast<uint8_t>(master.vector_base | 7);
  } else if (static_cast<unsigned>(ir) == kCascadeIr) {
    start_service(master, kCascadeIr);
    const int slave_ir = highest_request(slave);
    if (slave_ir == kNone) {  // kept for the 8259 contract; see the header
      ++stats_.spurious;
      vector = static_cast<uint8_t>(slave.vector_base | 7);
    } else {
      start_service(slave, static_cast<unsigned>(slave_ir));
      vector = static_cast<uint8_t>(slave.vector_base | slave_ir);
    }
  } else {
    start_service(master, static_cast<unsigned>(ir));
    vector = static_cast<uint8_t>(master.vector_base | ir);
  }
  update();
  return vector;
}

uint8_t Pic8259::poll(Pic8259Chip& c) {
  c.poll = false;
  const int ir = highest_request(c);
  if (ir == kNone) return 0;
  start_service(c, static_cast<unsigned>(ir));
  update();
  return static_cast<uint8_t>(0x80 | ir);
}

uint8_t Pic8259::read_port(Window window, uint16_t offset) {
  if (window == Window::Elcr) return chips_[offset & 1].elcr;
  Pic8259Chip& c = chips_[window == Window::Master ? 0 : 1];
  if (c.poll) return poll(c);
  if ((offset & 1) != 0) return c.imr;
  return c.read_isr ? c.isr : c.irr;
}

void Pic8259::write_port(Window window, uint16_t offset, uint8_t value) {
  if (window == Window::Elcr) {
    write_elcr(chips_[offset & 1], value);
  } else {
    Pic8259Chip& c = chips_[window == Window::Master ? 0 : 1];
    if ((offset & 1) == 0) {
      write_command(c, value);
    } else {
      write_data(c, value);
    }
  }
  update();
}

void Pic8259::write_command(Pic8259Chip& c, uint8_t value) {
  if (value & kIcw1) {
    // ICW1 resets the chip (8259A datasheet): masks and in-service cleared, IR7 lowest
    // priority, SMM off, IRR selected, ICW4 functions zero. Edge detection restarts, so
    // a pin that is already high must fall and rise again to request.
    c.imr = 0;
    c.isr = 0;
    c.priority_base = 0;
    c.special_mask = false;
    c.poll = false;
    c.read_isr = false;
    c.auto_eoi = false;
    c.rotate_on_aeoi = false;
    c.special_nested = false;
    c.icw4_expected = (value & kIcw1Icw4) != 0;
    c.single = (value & kIcw1Single) != 0;
    c.level_all = (value & kIcw1Ltim) != 0;
    c.irr = static_cast<uint8_t>(c.pins & level_mask(c));
    c.init_step = Pic8259Chip::InitStep::Icw2;
    return;
  }
  if (value & kOcw3) {
    if (value & kOcw3Poll) c.poll = true;
    if (value & kOcw3ReadSelect) c.read_isr = (value & kOcw3ReadIsr) != 0;
    if (value & kOcw3SmmSelect) c.special_mask = (value & kOcw3SetSmm) != 0;
    return;
  }
  // OCW2
  const unsigned command = value >> 5;
  const unsigned level = value & 7;
  switch (command) {
    case kOcw2RotateAeoiClear:
    case kOcw2RotateAeoiSet: c.rotate_on_aeoi = command == kOcw2RotateAeoiSet; break;
    case kOcw2NonSpecificEoi:
    case kOcw2RotateNonSpecificEoi: {
      // Ends the highest-priority level in service (SMM: among the unmasked ones).
      const uint8_t in_service = c.special_mask ? static_cast<uint8_t>(c.isr & ~c.imr) : c.isr;
      const unsigned rank = best_rank(in_service, c.priority_base);
      if (rank == 8) break;
      const unsigned ir = (rank + c.priority_base) & 7;
      c.isr &= static_cast<uint8_t>(~bit(ir));
      if (command == kOcw2RotateNonSpecificEoi) c.priority_base = static_cast<uint8_t>((ir + 1) & 7);
      break;
    }
    case kOcw2SpecificEoi:
    case kOcw2RotateSpecificEoi:
      c.isr &= static_cast<uint8_t>(~bit(level));
      if (command == kOcw2RotateSpecificEoi) c.priority_base = static_cast<uint8_t>((level + 1) & 7);
      break;
    case kOcw2SetPriority: c.priority_base = static_cast<uint8_t>((level + 1) & 7); break;
    case kOcw2Nop:
    default: break;
  }
}

void Pic8259::write_data(Pic8259Chip& c, uint8_t value) {
  using Step = Pic8259Chip::InitStep;
  switch (c.init_step) {
    case Step::Ready:
      c.imr = value;  // OCW1
      break;
    case Step::Icw2:
      c.vector_base = static_cast<uint8_t>(value & 0xF8);
      c.init_step = !c.single ? Step::Icw3 : c.icw4_expected ? Step::Icw4 : Step::Ready;
      break;
    case Step::Icw3:
      c.icw3 = value;
      c.init_step = c.icw4_expected ? Step::Icw4 : Step::Ready;
      break;
    case Step::Icw4:
      c.auto_eoi = (value & kIcw4Aeoi) != 0;
      c.special_nested = (value & kIcw4Sfnm) != 0;
      c.init_step = Step::Ready;
      break;
  }
}

void Pic8259::write_elcr(Pic8259Chip& c, uint8_t value) {
  c.elcr = static_cast<uint8_t>(value & c.elcr_writable);
  // A pin that became level-triggered requests exactly while it is high.
  const uint8_t level = level_mask(c);
  c.irr = static_cast<uint8_t>((c.irr & ~level) | (c.pins & level));
}

}  // namespace vmm86
