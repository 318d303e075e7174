#include "devices/legacy/pit8254.h"

#include <optional>

namespace vmm86 {
namespace {

// Control word (port 0x43): SC1 SC0 RW1 RW0 M2 M1 M0 BCD.
constexpr uint8_t kSelectReadBack = 3;
constexpr uint8_t kAccessLatch = 0;
constexpr uint8_t kReadBackNoCount = 0x20;  // active low in the read-back command
constexpr uint8_t kReadBackNoStatus = 0x10;
constexpr uint8_t kStatusOut = 0x80;
constexpr uint8_t kStatusNullCount = 0x40;
// Port 0x61.
constexpr uint8_t kPort61Gate2 = 0x01;
constexpr uint8_t kPort61Writable = 0x0F;
constexpr uint8_t kPort61Refresh = 0x10;
constexpr uint8_t kPort61Out2 = 0x20;
constexpr uint64_t kRefreshTicks = 18;  // DRAM refresh period: channel 1's usual count

constexpr uint64_t kNsPerSecond = 1'000'000'000;

uint64_t elapsed(const PitChannel& c, uint64_t tick) { return c.paused ? c.paused_elapsed : tick - c.start_tick; }

uint32_t modulus(const PitChannel& c) { return c.bcd ? 10000 : 65536; }

uint16_t to_bcd(uint32_t v) {
  return static_cast<uint16_t>((v % 10) | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000 % 10) << 12);
}

uint32_t from_bcd(uint16_t v) {
  return (v & 0xFu) + ((v >> 4) & 0xFu) * 10 + ((v >> 8) & 0xFu) * 100 + ((v >> 12) & 0xFu) * 1000;
}

// The counting element at `tick`, as a number in 0..modulus-1.
uint32_t counter_at(const PitChannel& c, uint64_t tick) {
  if (!c.counting || c.waiting_trigger) return c.bcd ? from_bcd(c.idle_count) : c.idle_count;
  const uint64_t d = elapsed(c, tick);
  const uint32_t m = modulus(c);
  const uint32_t n = c.reload;
  switch (c.mode) {
    case 2: return (n - static_cast<uint32_t>(d % n)) % m;
    case 3: {
      // Counts down by two through each half period; the high half is the longer one.
      const auto p = static_cast<uint32_t>(d % n);
      const uint32_t high_len = (n + 1) / 2;
      const uint32_t q = p < high_len ? p : p - high_len;
      return ((n & ~1u) - 2 * q) % m;
    }
    default:  // 0, 1, 4, 5 count down once and wrap
      return (n + m - static_cast<uint32_t>(d % m)) % m;
  }
}

bool out_at(const PitChannel& c, uint64_t tick) {
  if (!c.counting) return c.idle_out;
  if (c.waiting_trigger) return true;
  const uint64_t d = elapsed(c, tick);
  const uint32_t n = c.reload;
  switch (c.mode) {
    case 0:
    case 1: return d >= n;
    case 2: return c.paused || d % n != n - 1;
    case 3: return c.paused || d % n < (n + 1) / 2;
    default:  // 4, 5: one tick low at terminal count
      return d != n;
  }
}

// The first tick after `tick` at which OUT rises, if it ever does.
std::optional<uint64_t> next_rising_edge(const PitChannel& c, uint64_t tick) {
  if (!c.counting || c.waiting_trigger || c.paused) return std::nullopt;
  const uint64_t d = tick - c.start_tick;
  const uint64_t n = c.reload;
  switch (c.mode) {
    case 0:
    case 1:
      if (d < n) return c.start_tick + n;
      return std::nullopt;
    case 2:
    case 3: return c.start_tick + (d / n + 1) * n;
    default:
      if (d < n + 1) return c.start_tick + n + 1;
      return std::nullopt;
  }
}

uint64_t ticks_to_ns_ceil(uint64_t ticks) {
  const unsigned __int128 scaled = static_cast<unsigned __int128>(ticks) * kNsPerSecond + Pit8254::kInputHz - 1;
  return static_cast<uint64_t>(scaled / Pit8254::kInputHz);
}

uint8_t status_byte(const PitChannel& c, bool out) {
  return static_cast<uint8_t>((out ? kStatusOut : 0) | (c.null_count ? kStatusNullCount : 0) | c.access << 4 |
                              c.mode << 1 | (c.bcd ? 1 : 0));
}

}  // namespace

Pit8254::Pit8254(const VirtualClock& clock, TimerQueue& timers, IrqLine irq0)
    : clock_(clock), irq0_(irq0), timer_(timers, [this](uint64_t) { update_channel0(true); }) {
  channels_[2].gate = false;  // port 0x61 bit 0 starts clear
}

void Pit8254::reset() {
  channels_ = {};
  channels_[2].gate = false;  // port 0x61 bit 0 clear
  port61_ = 0;
  update_channel0(false);
}

uint64_t Pit8254::now_tick() const {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(clock_.now_ns()) * kInputHz / kNsPerSecond);
}

bool Pit8254::output(unsigned channel) const { return out_at(channels_[channel], now_tick()); }

uint16_t Pit8254::count(unsigned channel) const {
  return static_cast<uint16_t>(counter_at(channels_[channel], now_tick()));
}

uint32_t Pit8254::CounterPorts::read(uint16_t offset, unsigned /*size*/) {
  if (offset >= kChannels) return 0xFF;  // the control word register is write-only
  return pit_.read_counter(pit_.channels_[offset]);
}

void Pit8254::CounterPorts::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  if (offset >= kChannels) {
    pit_.write_control(static_cast<uint8_t>(value));
  } else {
    pit_.write_counter(offset, static_cast<uint8_t>(value));
  }
}

uint32_t Pit8254::Port61::read(uint16_t /*offset*/, unsigned /*size*/) {
  const uint64_t tick = pit_.now_tick();
  uint32_t value = pit_.port61_;
  if ((tick / kRefreshTicks) & 1) value |= kPort61Refresh;
  if (out_at(pit_.channels_[2], tick)) value |= kPort61Out2;
  return value;
}

void Pit8254::Port61::write(uint16_t /*offset*/, unsigned /*size*/, uint32_t value) {
  pit_.port61_ = static_cast<uint8_t>(value & kPort61Writable);
  pit_.set_gate(2, (value & kPort61Gate2) != 0);
}

uint8_t Pit8254::read_counter(PitChannel& c) {
  if (c.status_latched) {
    c.status_latched = false;
    return c.latched_status;
  }
  uint16_t value = 0;
  bool msb = false;
  if (c.count_latched) {
    value = c.latched_count;
    msb = c.access == 2 || (c.access == 3 && c.latch_msb_next);
    if (c.access == 3 && !c.latch_msb_next) {
      c.latch_msb_next = true;
    } else {
      c.count_latched = false;
      c.latch_msb_next = false;
    }
  } else {
    const uint32_t live = counter_at(c, now_tick());
    value = c.bcd ? to_bcd(live) : static_cast<uint16_t>(live);
    msb = c.access == 2 || (c.access == 3 && c.read_msb_next);
    if (c.access == 3) c.read_msb_next = !c.read_msb_next;
  }
  return static_cast<uint8_t>(msb ? value >> 8 : value);
}

void Pit8254::latch_count(PitChannel& c) {
  if (c.count_latched) return;  // a second latch before the read is ignored
  const uint32_t live = counter_at(c, now_tick());
  c.latched_count = c.bcd ? to_bcd(live) : static_cast<uint16_t>(live);
  c.count_latched = true;
  c.latch_msb_next = false;
}

void Pit8254::latch_status(PitChannel& c) {
  if (c.status_latched) return;
  c.latched_status = status_byte(c, out_at(c, now_tick()));
  c.status_latched = true;
}

void Pit8254::stop_counting(PitChannel& c, bool out) {
  const uint32_t live = counter_at(c, now_tick());
  c.idle_count = c.bcd ? to_bcd(live) : static_cast<uint16_t>(live);
  c.counting = false;
  c.waiting_trigger = false;
  c.paused = false;
  c.idle_out = out;
}

void Pit8254::write_control(uint8_t value) {
  const unsigned select = value >> 6;
  if (select == kSelectReadBack) {
    read_back(value);
    return;
  }
  PitChannel& c = channels_[select];
  const auto access = static_cast<uint8_t>((value >> 4) & 3);
  if (access == kAccessLatch) {
    latch_count(c);
    return;
  }
  // A new mode stops the counter until a count arrives; OUT takes its initial level.
  uint8_t mode = (value >> 1) & 7;
  if (mode > 5) mode = static_cast<uint8_t>(mode - 4);
  stop_counting(c, mode != 0);
  c.mode = mode;
  c.access = access;
  c.bcd = (value & 1) != 0;
  c.null_count = true;
  c.write_msb_next = false;
  c.read_msb_next = false;
  c.count_latched = false;
  c.status_latched = false;
  if (select == 0) update_channel0(false);
}

void Pit8254::read_back(uint8_t value) {
  for (unsigned i = 0; i < kChannels; ++i) {
    if (!(value & (2u << i))) continue;
    if (!(value & kReadBackNoStatus)) latch_status(channels_[i]);
    if (!(value & kReadBackNoCount)) latch_count(channels_[i]);
  }
}

void Pit8254::write_counter(unsigned index, uint8_t value) {
  PitChannel& c = channels_[index];
  switch (c.access) {
    case 1: load_count(index, value); break;
    case 2: load_count(index, static_cast<uint16_t>(value << 8)); break;
    default:
      if (!c.write_msb_next) {
        c.write_lsb = value;
        c.write_msb_next = true;
        // Mode 0: the first byte of a new count stops the counter (8254 datasheet).
        if (c.mode == 0 && c.counting) {
          stop_counting(c, false);
          if (index == 0) update_channel0(false);
        }
      } else {
        c.write_msb_next = false;
        load_count(index, static_cast<uint16_t>(c.write_lsb | value << 8));
      }
      break;
  }
}

void Pit8254::load_count(unsigned index, uint16_t raw) {
  PitChannel& c = channels_[index];
  uint32_t n = c.bcd ? from_bcd(raw) : raw;
  if (n == 0) n = modulus(c);                        // 0 is the largest count
  if ((c.mode == 2 || c.mode == 3) && n < 2) n = 2;  // 1 is illegal there
  c.reload = n;
  c.null_count = false;
  c.counting = true;
  c.paused = false;
  c.paused_elapsed = 0;
  c.start_tick = now_tick();
  if (c.mode == 1 || c.mode == 5) {
    c.waiting_trigger = true;  // the gate's next rising edge starts it
  } else if (!c.gate) {
    c.paused = true;  // modes 0 and 4 hold, 2 and 3 wait, until the gate rises
  }
  if (index == 0) update_channel0(false);
}

void Pit8254::set_gate(unsigned channel, bool high) {
  PitChannel& c = channels_[channel];
  if (c.gate == high) return;
  c.gate = high;
  if (!c.counting) return;
  const uint64_t tick = now_tick();
  switch (c.mode) {
    case 0:
    case 4:  // gate low suspends counting
      if (!high) {
        c.paused_elapsed = tick - c.start_tick;
        c.paused = true;
      } else if (c.paused) {
        c.start_tick = tick - c.paused_elapsed;
        c.paused = false;
      }
      break;
    case 2:
    case 3:  // gate low stops counting with OUT high; the rising edge reloads
      if (!high) {
        c.paused_elapsed = tick - c.start_tick;
        c.paused = true;
      } else {
        c.start_tick = tick;
        c.paused = false;
      }
      break;
    default:  // 1, 5: the rising edge (re)triggers
      if (high) {
        c.start_tick = tick;
        c.waiting_trigger = false;
      }
      break;
  }
  if (channel == 0) update_channel0(false);
}

void Pit8254::update_channel0(bool edge_due) {
  const PitChannel& c = channels_[0];
  const uint64_t tick = now_tick();
  if (edge_due) {
    // The rising edge may lie between two host timer wake-ups: replay it.
    irq0_.lower();
    irq0_.raise();
  }
  irq0_.set_level(out_at(c, tick));
  if (const auto edge = next_rising_edge(c, tick)) {
    timer_.arm(ticks_to_ns_ceil(*edge));
  } else {
    timer_.disarm();
  }
}

}  // namespace vmm86
