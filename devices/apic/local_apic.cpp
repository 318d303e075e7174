#include "devices/apic/local_apic.h"

#include <algorithm>
#include <bit>

namespace vmm86 {
namespace {

// Register indexes: offset >> 4 (registers sit at 16-byte strides).
constexpr unsigned kRegId = 0x02;
constexpr unsigned kRegVersion = 0x03;
constexpr unsigned kRegTpr = 0x08;
constexpr unsigned kRegApr = 0x09;
constexpr unsigned kRegPpr = 0x0A;
constexpr unsigned kRegEoi = 0x0B;
constexpr unsigned kRegRemoteRead = 0x0C;
constexpr unsigned kRegLdr = 0x0D;
constexpr unsigned kRegDfr = 0x0E;
constexpr unsigned kRegSvr = 0x0F;
constexpr unsigned kRegIsr = 0x10;  // .. 0x17
constexpr unsigned kRegTmr = 0x18;  // .. 0x1F
constexpr unsigned kRegIrr = 0x20;  // .. 0x27
constexpr unsigned kRegEsr = 0x28;
constexpr unsigned kRegIcrLow = 0x30;
constexpr unsigned kRegIcrHigh = 0x31;
constexpr unsigned kRegLvt = 0x32;  // .. 0x37, in Lvt order
constexpr unsigned kRegInitialCount = 0x38;
constexpr unsigned kRegCurrentCount = 0x39;
constexpr unsigned kRegDivide = 0x3E;

constexpr uint32_t kSvrWritable = 0x1FF;  // vector and enable; focus checking is not an xAPIC bit
constexpr uint32_t kDivideWritable = 0xB;
// ICR low: vector, delivery mode, destination mode, level, trigger, shorthand.
constexpr uint32_t kIcrLowWritable = 0x000CCFFF;
constexpr uint32_t kIcrHighWritable = 0xFF000000;
constexpr uint32_t kIcrLogical = 1u << 11;
constexpr uint32_t kIcrLevelAssert = 1u << 14;
constexpr uint32_t kIcrLevelTriggered = 1u << 15;
constexpr uint32_t kLvtLevelTriggered = 1u << 15;
constexpr uint32_t kLvtRemoteIrr = 1u << 14;
constexpr uint32_t kLvtReset = 1u << 16;  // masked, everything else 0
constexpr uint32_t kLint0VirtualWire = 0x700;

// Writable bits of each LVT entry (SDM Figure 10-8; bit 18, TSC-deadline mode, is not
// offered). The remote IRR and delivery status bits are read-only.
constexpr std::array<uint32_t, LocalApic::kLvtCount> kLvtWritable = {
    0x000300FF,  // timer: vector, mask, periodic
    0x000107FF,  // thermal: vector, delivery mode, mask
    0x000107FF,  // performance counters
    0x0001A7FF,  // LINT0: + polarity, trigger mode
    0x0001A7FF,  // LINT1
    0x000100FF,  // error: vector, mask
};

constexpr uint64_t kNsPerSecond = 1'000'000'000;

ApicDeliveryMode delivery_mode(uint32_t reg) { return static_cast<ApicDeliveryMode>((reg >> 8) & 7); }

}  // namespace

LocalApic::LocalApic(const VirtualClock& clock, TimerQueue& timers, uint8_t id, uint64_t timer_hz)
    : clock_(clock),
      initial_id_(id),
      timer_hz_(std::max<uint64_t>(timer_hz, 1)),
      timer_(timers, [this](uint64_t now_ns) { timer_expired(now_ns); }) {
  reset();
}

void LocalApic::reset() {
  const uint64_t before = base_msr_;
  // APIC ID 0 is the bootstrap processor; the others start as APs, LINT0 masked (only the
  // BSP is the 8259's virtual wire).
  const bool bsp = initial_id_ == 0;
  base_msr_ = kDefaultBase | (bsp ? kBaseBsp : 0) | kBaseEnable;
  id_ = initial_id_;
  init_registers();
  if (bsp) lvt_[static_cast<unsigned>(Lvt::Lint0)] = kLint0VirtualWire;
  if (before != base_msr_ && base_listener_) base_listener_();
}

void LocalApic::init_registers() {
  tpr_ = 0;
  ldr_ = 0;
  dfr_model_ = 0xF;
  svr_ = 0xFF;
  isr_ = {};
  tmr_ = {};
  irr_ = {};
  esr_ = 0;
  esr_pending_ = 0;
  icr_low_ = icr_high_ = 0;
  lvt_.fill(kLvtReset);
  initial_count_ = 0;
  divide_config_ = 0;
  count_start_tick_ = 0;
  timer_.disarm();
  update_pending();
}

bool LocalApic::write_base_msr(uint64_t value) {
  // Bits 0-7 and 9 are reserved, 10 is the x2APIC enable (no x2APIC here), 32-63 lie
  // beyond the 32-bit physical address width.
  constexpr uint64_t kWritable = kBaseAddressMask | kBaseBsp | kBaseEnable;
  if ((value & ~kWritable) != 0) return false;
  const uint64_t before = base_msr_;
  // The BSP flag is the hardware's; writes do not change it.
  base_msr_ = (value & (kBaseAddressMask | kBaseEnable)) | (base_msr_ & kBaseBsp);
  if ((before & kBaseEnable) && !globally_enabled()) init_registers();
  update_pending();
  if (before != base_msr_ && base_listener_) base_listener_();
  return true;
}

// ---- Registers -----------------------------------------------------------------------

uint32_t LocalApic::read(uint64_t offset, unsigned size) {
  const uint64_t within = offset & 0xF;
  if (offset >= kPageSize || within >= 4) return 0;  // the rest of a 16-byte slot
  const uint32_t value = read_register(static_cast<unsigned>(offset >> 4)) >> (8 * within);
  return size >= 4 ? value : value & ((1u << (8 * size)) - 1);
}

void LocalApic::write(uint64_t offset, unsigned size, uint32_t value) {
  if (offset >= kPageSize || size != 4 || (offset & 0xF) != 0) return;
  write_register(static_cast<unsigned>(offset >> 4), value);
}

uint32_t LocalApic::read_register(unsigned index) {
  if (index >= kRegIsr && index < kRegIsr + 8) return isr_[index - kRegIsr];
  if (index >= kRegTmr && index < kRegTmr + 8) return tmr_[index - kRegTmr];
  if (index >= kRegIrr && index < kRegIrr + 8) return irr_[index - kRegIrr];
  if (index >= kRegLvt && index < kRegLvt + kLvtCount) return lvt_[index - kRegLvt];
  switch (index) {
    case kRegId: return uint32_t{id_} << 24;
    case kRegVersion: return kVersion;
    case kRegTpr: return tpr_;
    case kRegApr: {
      // SDM §10.8.3.1 (P6 / Pentium 4): the TPR while it outranks every request and
      // in-service vector, else the highest of the three classes.
      const int irrv = std::max(highest(irr_), 0);
      const int isrv = std::max(highest(isr_), 0);
      if ((tpr_ >> 4) >= (irrv >> 4) && (tpr_ >> 4) > (isrv >> 4)) return tpr_;
      return static_cast<uint32_t>(std::max({tpr_ & 0xF0, irrv & 0xF0, isrv & 0xF0}));
    }
    case kRegPpr: return ppr();
    case kRegEoi:
    case kRegRemoteRead: return 0;
    case kRegLdr: return uint32_t{ldr_} << 24;
    case kRegDfr: return (uint32_t{dfr_model_} << 28) | 0x0FFFFFFF;
    case kRegSvr: return svr_;
    case kRegEsr: return esr_;
    case kRegIcrLow: return icr_low_;  // delivery status 0: an IPI is sent at once
    case kRegIcrHigh: return icr_high_;
    case kRegInitialCount: return initial_count_;
    case kRegCurrentCount: return current_count();
    case kRegDivide: return divide_config_;
    default: signal_error(kEsrIllegalRegister); return 0;
  }
}

void LocalApic::write_register(unsigned index, uint32_t value) {
  if (index >= kRegLvt && index < kRegLvt + kLvtCount) {
    write_lvt(static_cast<Lvt>(index - kRegLvt), value);
    return;
  }
  if (index >= kRegIsr && index < kRegIrr + 8) return;  // read-only
  switch (index) {
    case kRegId: id_ = static_cast<uint8_t>(value >> 24); break;
    case kRegTpr:
      tpr_ = static_cast<uint8_t>(value);
      update_pending();
      break;
    case kRegEoi: end_of_interrupt(); break;
    case kRegLdr: ldr_ = static_cast<uint8_t>(value >> 24); break;
    case kRegDfr: dfr_model_ = static_cast<uint8_t>(value >> 28); break;
    case kRegSvr: write_svr(value); break;
    case kRegEsr:
      esr_ = esr_pending_;
      esr_pending_ = 0;
      break;
    case kRegIcrLow:
      icr_low_ = value & kIcrLowWritable;
      send_ipi();
      break;
    case kRegIcrHigh: icr_high_ = value & kIcrHighWritable; break;
    case kRegInitialCount:
      initial_count_ = value;
      count_start_tick_ = now_tick();
      rearm_timer(count_start_tick_);
      break;
    case kRegDivide: {
      // The count goes on from where it is, now at the new rate.
      const uint64_t tick = now_tick();
      const uint64_t done = elapsed_counts(tick);
      divide_config_ = value & kDivideWritable;
      count_start_tick_ = tick - (done << divide_shift());
      rearm_timer(tick);
      break;
    }
    case kRegVersion:
    case kRegApr:
    case kRegPpr:
    case kRegRemoteRead:
    case kRegCurrentCount: break;  // read-only
    default: signal_error(kEsrIllegalRegister); break;
  }
}

void LocalApic::write_lvt(Lvt entry, uint32_t value) {
  const auto i = static_cast<unsigned>(entry);
  uint32_t v = (value & kLvtWritable[i]) | (lvt_[i] & kLvtRemoteIrr);
  if (!software_enabled()) v |= kLvtMask;  // masks cannot be cleared while disabled
  lvt_[i] = v;
  if (entry == Lvt::Timer) rearm_timer(now_tick());
}

void LocalApic::write_svr(uint32_t value) {
  const bool was_enabled = software_enabled();
  svr_ = value & kSvrWritable;
  update_pending();
  if (was_enabled && !software_enabled()) {
    for (uint32_t& entry : lvt_) entry |= kLvtMask;
    timer_.disarm();
  }
}

// ---- Acceptance and delivery ---------------------------------------------------------

int LocalApic::highest(const Bits256& bits) {
  for (int word = 7; word >= 0; --word) {
    if (const uint32_t w = bits[static_cast<unsigned>(word)]; w != 0) return word * 32 + 31 - std::countl_zero(w);
  }
  return -1;
}

uint8_t LocalApic::ppr() const {
  const int isrv = std::max(highest(isr_), 0);
  if ((tpr_ >> 4) >= (isrv >> 4)) return tpr_;
  return static_cast<uint8_t>(isrv & 0xF0);
}

bool LocalApic::accept(uint8_t vector, bool level_triggered) {
  if (vector < 16) {
    signal_error(kEsrReceiveIllegalVector);
    return false;
  }
  set(irr_, vector);
  if (level_triggered) {
    set(tmr_, vector);
  } else {
    clear(tmr_, vector);
  }
  update_pending();
  return true;
}

void LocalApic::update_pending() {
  const int irrv = highest(irr_);
  const bool was_pending = pending_;
  pending_ = globally_enabled() && software_enabled() && irrv >= 0 && (irrv & 0xF0) > (ppr() & 0xF0);
  if (pending_ && !was_pending && wake_listener_) wake_listener_();
}

uint8_t LocalApic::acknowledge() {
  if (!interrupt_pending()) {
    ++stats_.spurious;
    return static_cast<uint8_t>(svr_);
  }
  const auto vector = static_cast<uint8_t>(highest(irr_));
  clear(irr_, vector);
  set(isr_, vector);
  update_pending();
  ++stats_.acknowledged;
  return vector;
}

bool LocalApic::accepts_pic_interrupts() const {
  if (!globally_enabled() || !software_enabled()) return true;
  const uint32_t lint0 = lvt(Lvt::Lint0);
  return (lint0 & kLvtMask) == 0 && delivery_mode(lint0) == ApicDeliveryMode::ExtInt;
}

void LocalApic::end_of_interrupt() {
  ++stats_.eois;
  const int isrv = highest(isr_);
  if (isrv < 0) return;
  const auto vector = static_cast<uint8_t>(isrv);
  clear(isr_, vector);
  update_pending();
  if (test(tmr_, vector)) {
    ++stats_.eoi_broadcasts;
    if (eoi_listener_) eoi_listener_(vector);
  }
  // A level-triggered LINT pin still asserted requests again once its remote IRR clears.
  for (const Lvt pin : {Lvt::Lint0, Lvt::Lint1}) {
    uint32_t& entry = lvt_[static_cast<unsigned>(pin)];
    if ((entry & kLvtRemoteIrr) == 0 || (entry & 0xFF) != vector) continue;
    entry &= ~kLvtRemoteIrr;
    if (lint_level_[pin == Lvt::Lint0 ? 0 : 1]) local_interrupt(pin);
  }
}

void LocalApic::set_lint(unsigned pin, bool level) {
  if (pin >= lint_level_.size()) return;
  const bool rising = level && !lint_level_[pin];
  lint_level_[pin] = level;
  if (rising) local_interrupt(pin == 0 ? Lvt::Lint0 : Lvt::Lint1);
}

void LocalApic::local_interrupt(Lvt entry) {
  uint32_t& reg = lvt_[static_cast<unsigned>(entry)];
  if (!globally_enabled() || (reg & kLvtMask) != 0) return;
  const bool lint = entry == Lvt::Lint0 || entry == Lvt::Lint1;
  // The timer and error entries have no delivery mode field: always fixed.
  const ApicDeliveryMode mode = entry == Lvt::Timer || entry == Lvt::Error ? ApicDeliveryMode::Fixed
                                                                           : delivery_mode(reg);
  switch (mode) {
    case ApicDeliveryMode::Fixed: {
      const bool level = lint && (reg & kLvtLevelTriggered) != 0;
      if (level && (reg & kLvtRemoteIrr) != 0) return;  // the last one is not EOIed yet
      if (!accept(static_cast<uint8_t>(reg), level)) return;
      if (level) reg |= kLvtRemoteIrr;
      if (entry == Lvt::Timer) {
        ++stats_.timer_interrupts;
      } else if (entry == Lvt::Error) {
        ++stats_.error_interrupts;
      } else if (lint) {
        ++stats_.lint_interrupts;
      }
      break;
    }
    case ApicDeliveryMode::Nmi:
    case ApicDeliveryMode::Init:
      receive(ApicMessage{0, mode, false, id_, false, true}, &LocalApicStats::lint_interrupts);
      break;
    case ApicDeliveryMode::ExtInt: break;       // the CPU asks the 8259 (accepts_pic_interrupts)
    default: ++stats_.dropped_messages; break;  // SMI: no SMM here; reserved modes
  }
}

void LocalApic::signal_error(uint32_t esr_bits) {
  esr_pending_ |= esr_bits;
  // An error while raising the error interrupt (its own vector illegal) does not recurse.
  if (in_error_interrupt_) return;
  in_error_interrupt_ = true;
  local_interrupt(Lvt::Error);
  in_error_interrupt_ = false;
}

bool LocalApic::matches(const ApicMessage& message) const {
  if (!message.logical) return message.destination == 0xFF || message.destination == id_;
  switch (dfr_model_) {
    case 0xF: return (message.destination & ldr_) != 0;  // flat: one bit per APIC
    case 0x0: {                                          // cluster: 4-bit cluster, 4 APICs each
      const unsigned cluster = message.destination >> 4;
      return (cluster == 0xF || cluster == unsigned{ldr_} >> 4) && (message.destination & ldr_ & 0xF) != 0;
    }
    default: return false;
  }
}

void LocalApic::deliver(const ApicMessage& message) {
  if (!globally_enabled() || !matches(message)) {
    ++stats_.dropped_messages;
    return;
  }
  receive(message, &LocalApicStats::ioapic_interrupts);
}

void LocalApic::send_ipi() {
  ApicMessage m;
  m.vector = static_cast<uint8_t>(icr_low_);
  m.mode = delivery_mode(icr_low_);
  m.logical = (icr_low_ & kIcrLogical) != 0;
  m.destination = static_cast<uint8_t>(icr_high_ >> 24);
  m.level_triggered = (icr_low_ & kIcrLevelTriggered) != 0;
  m.assert_level = (icr_low_ & kIcrLevelAssert) != 0;
  const bool fixed = m.mode == ApicDeliveryMode::Fixed || m.mode == ApicDeliveryMode::LowestPriority;
  if (fixed && m.vector < 16) {
    signal_error(kEsrSendIllegalVector);
    return;
  }
  const auto shorthand = static_cast<IpiShorthand>((icr_low_ >> 18) & 3);
  if (ipi_route_ && shorthand != IpiShorthand::Self) {
    ipi_route_(*this, m, shorthand);
    return;
  }
  bool to_self = false;
  switch (shorthand) {
    case IpiShorthand::None: to_self = matches(m); break;
    // SDM Table 10-3: "self" is valid with fixed delivery only.
    case IpiShorthand::Self: to_self = m.mode == ApicDeliveryMode::Fixed; break;
    case IpiShorthand::AllIncludingSelf: to_self = true; break;
    case IpiShorthand::AllExcludingSelf: break;  // no other CPU here
  }
  if (!to_self) {
    ++stats_.dropped_messages;
    return;
  }
  receive(m, &LocalApicStats::ipi_interrupts);
}

void LocalApic::receive_ipi(const ApicMessage& message) {
  if (!globally_enabled()) {
    ++stats_.dropped_messages;
    return;
  }
  receive(message, &LocalApicStats::ipi_interrupts);
}

void LocalApic::receive(const ApicMessage& message, uint64_t LocalApicStats::*source) {
  switch (message.mode) {
    case ApicDeliveryMode::Fixed:
    case ApicDeliveryMode::LowestPriority:
      // A software-disabled APIC answers only INIT, NMI, SMI and start-up (SDM §10.4.7.2).
      if (!software_enabled()) {
        ++stats_.dropped_messages;
        return;
      }
      if (accept(message.vector, message.level_triggered)) ++(stats_.*source);
      return;
    case ApicDeliveryMode::Nmi:
      ++stats_.nmis;
      if (signals_.nmi) signals_.nmi();
      if (wake_listener_) wake_listener_();
      return;
    case ApicDeliveryMode::Init:
      // The level de-assert only resynchronises arbitration IDs, which are not modelled.
      if (!message.assert_level && message.level_triggered) return;
      ++stats_.init_ipis;
      init_registers();
      if (signals_.init) signals_.init();
      if (wake_listener_) wake_listener_();
      return;
    case ApicDeliveryMode::StartUp:
      ++stats_.startup_ipis;
      if (signals_.startup) signals_.startup(message.vector);
      if (wake_listener_) wake_listener_();
      return;
    default: ++stats_.dropped_messages; return;  // SMI (no SMM), ExtINT (not wired), reserved
  }
}

// ---- Timer --------------------------------------------------------------------------------

uint64_t LocalApic::tick_of_ns(uint64_t ns) const {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(ns) * timer_hz_ / kNsPerSecond);
}

uint64_t LocalApic::ns_of_tick(uint64_t tick) const {
  // The first nanosecond at which now_tick() reaches `tick`.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(tick) * kNsPerSecond + timer_hz_ - 1) / timer_hz_);
}

unsigned LocalApic::divide_shift() const {
  // Bits 0, 1 and 3: 000 divides by 2, 001 by 4, ... 110 by 128, 111 by 1.
  const uint32_t v = (divide_config_ & 3) | ((divide_config_ >> 1) & 4);
  return (v + 1) & 7;
}

uint64_t LocalApic::elapsed_counts(uint64_t tick) const {
  if (initial_count_ == 0) return 0;
  const uint64_t counts = (tick - count_start_tick_) >> divide_shift();
  return periodic() ? counts % initial_count_ : std::min<uint64_t>(counts, initial_count_);
}

uint32_t LocalApic::current_count() const {
  if (initial_count_ == 0) return 0;
  return static_cast<uint32_t>(initial_count_ - elapsed_counts(now_tick()));
}

void LocalApic::rearm_timer(uint64_t tick) {
  // A masked timer counts all the same (current_count reads the clock); it needs no
  // deadline until it is unmasked.
  if (initial_count_ == 0 || (lvt(Lvt::Timer) & kLvtMask) != 0) {
    timer_.disarm();
    return;
  }
  const uint64_t counts = (tick - count_start_tick_) >> divide_shift();
  uint64_t next = initial_count_;
  if (periodic()) {
    next = (counts / initial_count_ + 1) * initial_count_;
  } else if (counts >= initial_count_) {
    timer_.disarm();  // a one-shot count that already reached zero
    return;
  }
  timer_.arm(ns_of_tick(count_start_tick_ + (next << divide_shift())));
}

void LocalApic::timer_expired(uint64_t now_ns) {
  ++stats_.timer_fires;
  local_interrupt(Lvt::Timer);
  rearm_timer(tick_of_ns(now_ns));
}

}  // namespace vmm86
