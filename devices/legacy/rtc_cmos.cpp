#include "devices/legacy/rtc_cmos.h"

namespace vmm86 {
namespace {

// Time and alarm registers.
constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kSecondsAlarm = 0x01;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kMinutesAlarm = 0x03;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kHoursAlarm = 0x05;
constexpr uint8_t kWeekday = 0x06;
constexpr uint8_t kDay = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
// Register A
constexpr uint8_t kAUip = 0x80;
constexpr uint8_t kARateMask = 0x0F;
constexpr unsigned kADividerShift = 4;
constexpr uint8_t kADividerReset = 6;  // 110 and 111 hold the divider chain in reset
constexpr uint8_t kADefault = 0x26;    // 32.768 kHz time base, 1024 Hz periodic rate
// Register B
constexpr uint8_t kBSet = 0x80;
constexpr uint8_t kBPeriodicIrq = 0x40;
constexpr uint8_t kBAlarmIrq = 0x20;
constexpr uint8_t kBUpdateIrq = 0x10;
constexpr uint8_t kBBinary = 0x04;
constexpr uint8_t kB24Hour = 0x02;
constexpr uint8_t kBDefault = kB24Hour;
// Register C: flags in the same bit positions as their enables in B.
constexpr uint8_t kCIrq = 0x80;
constexpr uint8_t kCFlags = kBPeriodicIrq | kBAlarmIrq | kBUpdateIrq;
// Register D
constexpr uint8_t kDValidRam = 0x80;

constexpr uint8_t kIndexMask = 0x7F;
constexpr uint8_t kNmiMask = 0x80;
constexpr uint8_t kAlarmDontCare = 0xC0;
constexpr uint8_t kHourPm = 0x80;

/// The registers that hold the running time (and the century byte that extends them).
constexpr uint8_t kTimeRegisters[] = {kSeconds, kMinutes, kHours, kWeekday, kDay, kMonth, kYear, RtcCmos::kCentury};
constexpr bool is_time_register(uint8_t index) {
  for (uint8_t r : kTimeRegisters) {
    if (r == index) return true;
  }
  return false;
}

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr uint64_t kTimeBaseHz = 32768;
// UIP rises 8 time-base cycles (244 us) before each update.
constexpr int64_t kUipWindowNs = 8 * kNsPerSecond / static_cast<int64_t>(kTimeBaseHz);

constexpr int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
constexpr int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

struct CivilTime {
  int64_t year;
  unsigned month, day, hour, minute, second;
  unsigned weekday;  // 0 = Sunday
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = floor_div(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilTime civil_from_unix(int64_t seconds) {
  const int64_t days = floor_div(seconds, 86400);
  const int64_t secs = seconds - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const auto month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  CivilTime t{};
  t.year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  t.month = month;
  t.day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  t.hour = static_cast<unsigned>(secs / 3600);
  t.minute = static_cast<unsigned>(secs / 60 % 60);
  t.second = static_cast<unsigned>(secs % 60);
  t.weekday = static_cast<unsigned>(floor_mod(days + 4, 7));  // 1970-01-01 was a Thursday
  return t;
}

uint8_t to_bcd(unsigned v) { return static_cast<uint8_t>((v / 10 % 10) << 4 | v % 10); }
unsigned from_bcd(uint8_t v) { return (v >> 4) * 10u + (v & 0xFu); }

}  // namespace

RtcCmos::RtcCmos(const VirtualClock& clock, TimerQueue& timers, IrqLine irq8, int64_t start_unix_ns)
    : clock_(clock),
      irq_(irq8),
      base_unix_ns_(start_unix_ns),
      base_vns_(clock.now_ns()),
      last_c_read_vns_(clock.now_ns()),
      update_timer_(timers, [this](uint64_t) { on_update(); }),
      periodic_timer_(timers, [this](uint64_t) { on_periodic(); }) {
  cmos_[kRegA] = kADefault;
  cmos_[kRegB] = kBDefault;
  cmos_[kRegD] = kDValidRam;
  arm_update_timer();
}

void RtcCmos::reset() {
  constexpr uint8_t kBSquareWave = 0x08;
  cmos_[kRegB] &= static_cast<uint8_t>(~(kBPeriodicIrq | kBAlarmIrq | kBUpdateIrq | kBSquareWave));
  cmos_[kRegC] = 0;
  arm_periodic_timer();
  update_irq();
}

bool RtcCmos::divider_running() const { return (cmos_[kRegA] >> kADividerShift & 7) < kADividerReset; }

bool RtcCmos::running() const { return divider_running() && !(cmos_[kRegB] & kBSet); }

int64_t RtcCmos::unix_time_ns() const {
  if (!running_) return base_unix_ns_;
  return base_unix_ns_ + static_cast<int64_t>(clock_.now_ns() - base_vns_);
}

uint32_t RtcCmos::read(uint16_t offset, unsigned /*size*/) {
  if ((offset & 1) == 0) return 0xFF;
  return read_register(index_);
}

void RtcCmos::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  const auto byte = static_cast<uint8_t>(value);
  if ((offset & 1) == 0) {
    index_ = byte & kIndexMask;
    nmi_masked_ = (byte & kNmiMask) != 0;
  } else {
    write_register(index_, byte);
  }
}

void RtcCmos::set_cmos_byte(uint8_t index, uint8_t value) {
  index &= kIndexMask;
  if (index > kRegD) cmos_[index] = value;
  if (index >= kFloppyTypes && index < kChecksumHigh) update_checksum();
}

void RtcCmos::update_checksum() {
  unsigned sum = 0;
  for (unsigned i = kFloppyTypes; i < kChecksumHigh; ++i) sum += cmos_[i];
  cmos_[kChecksumHigh] = static_cast<uint8_t>(sum >> 8);
  cmos_[kChecksumLow] = static_cast<uint8_t>(sum);
}

void RtcCmos::set_memory_size(uint64_t ram_below_4g_bytes) {
  constexpr uint64_t kMiB = 1024 * 1024;
  auto put16 = [this](uint8_t low_index, uint64_t value) {
    const uint64_t clamped = value > 0xFFFF ? 0xFFFF : value;
    cmos_[low_index] = static_cast<uint8_t>(clamped);
    cmos_[low_index + 1] = static_cast<uint8_t>(clamped >> 8);
  };
  put16(kBaseMemLow, 640);
  const uint64_t extended_kib = ram_below_4g_bytes > kMiB ? (ram_below_4g_bytes - kMiB) / 1024 : 0;
  put16(kExtMemLow, extended_kib);
  put16(kExtMem2Low, extended_kib);
  put16(kHighMemLow, ram_below_4g_bytes > 16 * kMiB ? (ram_below_4g_bytes - 16 * kMiB) / (64 * 1024) : 0);
  update_checksum();
}

uint8_t RtcCmos::format_time_register(uint8_t index, int64_t unix_seconds) const {
  const CivilTime t = civil_from_unix(unix_seconds);
  const bool binary = (cmos_[kRegB] & kBBinary) != 0;
  auto encode = [binary](unsigned v) { return binary ? static_cast<uint8_t>(v) : to_bcd(v); };
  switch (index) {
    case kSeconds: return encode(t.second);
    case kMinutes: return encode(t.minute);
    case kHours:
      if (cmos_[kRegB] & kB24Hour) return encode(t.hour);
      return static_cast<uint8_t>(encode(t.hour % 12 == 0 ? 12 : t.hour % 12) | (t.hour >= 12 ? kHourPm : 0));
    case kWeekday: return encode(t.weekday + 1);
    case kDay: return encode(t.day);
    case kMonth: return encode(t.month);
    case kYear: return encode(static_cast<unsigned>(floor_mod(t.year, 100)));
    case kCentury: return encode(static_cast<unsigned>(floor_div(t.year, 100)));
    default: return cmos_[index];
  }
}

int64_t RtcCmos::parse_time_registers() const {
  const bool binary = (cmos_[kRegB] & kBBinary) != 0;
  auto decode = [binary](uint8_t v) { return binary ? unsigned{v} : from_bcd(v); };
  const uint8_t hour_reg = cmos_[kHours];
  unsigned hour = 0;
  if (cmos_[kRegB] & kB24Hour) {
    hour = decode(hour_reg);
  } else {
    hour = decode(static_cast<uint8_t>(hour_reg & ~kHourPm)) % 12 + ((hour_reg & kHourPm) ? 12 : 0);
  }
  const int64_t year = int64_t{decode(cmos_[kCentury])} * 100 + decode(cmos_[kYear]);
  unsigned month = decode(cmos_[kMonth]);
  if (month < 1 || month > 12) month = 1;  // garbage in: keep the arithmetic defined
  const int64_t days = days_from_civil(year, month, decode(cmos_[kDay]));
  return days * 86400 + int64_t{hour} * 3600 + int64_t{decode(cmos_[kMinutes])} * 60 + decode(cmos_[kSeconds]);
}

bool RtcCmos::alarm_matches(int64_t unix_seconds) const {
  auto field_matches = [&](uint8_t alarm_index, uint8_t time_index) {
    const uint8_t alarm = cmos_[alarm_index];
    return (alarm & kAlarmDontCare) == kAlarmDontCare || alarm == format_time_register(time_index, unix_seconds);
  };
  return field_matches(kSecondsAlarm, kSeconds) && field_matches(kMinutesAlarm, kMinutes) &&
         field_matches(kHoursAlarm, kHours);
}

void RtcCmos::halt() {
  if (!running_) return;
  const int64_t now = unix_time_ns();
  const int64_t seconds = floor_div(now, kNsPerSecond);
  for (uint8_t index : kTimeRegisters) {
    cmos_[index] = format_time_register(index, seconds);
  }
  halted_fraction_ns_ = now - seconds * kNsPerSecond;
  base_unix_ns_ = now;
  running_ = false;
  update_timer_.disarm();
}

void RtcCmos::resume() {
  base_unix_ns_ = parse_time_registers() * kNsPerSecond + halted_fraction_ns_;
  base_vns_ = clock_.now_ns();
  running_ = true;
  arm_update_timer();
}

void RtcCmos::reconfigure(bool was_divider_running) {
  if (running() && !running_) {
    // Leaving divider reset, the first update comes half a second later (datasheet).
    if (!was_divider_running) halted_fraction_ns_ = kNsPerSecond / 2;
    resume();
  } else if (!running() && running_) {
    halt();
  }
  arm_periodic_timer();
  update_irq();
}

uint8_t RtcCmos::read_register(uint8_t index) {
  if (is_time_register(index)) {
    return running_ ? format_time_register(index, floor_div(unix_time_ns(), kNsPerSecond)) : cmos_[index];
  }
  switch (index) {
    case kRegA: {
      const bool uip = running_ && floor_mod(unix_time_ns(), kNsPerSecond) >= kNsPerSecond - kUipWindowNs;
      return static_cast<uint8_t>((cmos_[kRegA] & ~kAUip) | (uip ? kAUip : 0));
    }
    case kRegC: {
      // Periodic flags are derived here, so PF works without PIE and without a timer.
      const uint64_t now = clock_.now_ns();
      if (periodic_ticks() != 0 && periodic_index(now) != periodic_index(last_c_read_vns_)) {
        cmos_[kRegC] |= kBPeriodicIrq;
      }
      last_c_read_vns_ = now;
      const uint8_t value = cmos_[kRegC];
      cmos_[kRegC] = 0;
      update_irq();
      return value;
    }
    default: return cmos_[index];
  }
}

void RtcCmos::write_register(uint8_t index, uint8_t value) {
  if (is_time_register(index)) {
    if (running_) {
      // A write while the clock runs sets that field and keeps the rest running.
      halt();
      cmos_[index] = value;
      resume();
    } else {
      cmos_[index] = value;
    }
    return;
  }
  switch (index) {
    case kRegA: {
      const bool was_divider_running = divider_running();
      cmos_[kRegA] = static_cast<uint8_t>(value & ~kAUip);
      reconfigure(was_divider_running);
      break;
    }
    case kRegB: {
      const bool was_divider_running = divider_running();
      if (value & kBSet) value &= static_cast<uint8_t>(~kBUpdateIrq);  // SET clears UIE
      cmos_[kRegB] = value;
      reconfigure(was_divider_running);
      break;
    }
    case kRegC:
    case kRegD: break;  // read-only
    default: cmos_[index] = value; break;
  }
}

void RtcCmos::arm_update_timer() {
  if (!running_) return;
  const int64_t to_boundary = kNsPerSecond - floor_mod(unix_time_ns(), kNsPerSecond);
  update_timer_.arm(clock_.now_ns() + static_cast<uint64_t>(to_boundary));
}

void RtcCmos::on_update() {
  const int64_t seconds = floor_div(unix_time_ns(), kNsPerSecond);
  cmos_[kRegC] |= kBUpdateIrq;
  if (alarm_matches(seconds)) cmos_[kRegC] |= kBAlarmIrq;
  update_irq();
  arm_update_timer();
}

uint64_t RtcCmos::periodic_ticks() const {
  if (!divider_running()) return 0;
  const unsigned rate = cmos_[kRegA] & kARateMask;
  if (rate == 0) return 0;
  if (rate <= 2) return rate == 1 ? 128 : 256;  // 256 Hz and 128 Hz, as rates 8 and 9
  return uint64_t{1} << (rate - 1);
}

uint64_t RtcCmos::periodic_index(uint64_t vns) const {
  const unsigned __int128 ticks = static_cast<unsigned __int128>(vns) * kTimeBaseHz / kNsPerSecond;
  return static_cast<uint64_t>(ticks / periodic_ticks());
}

void RtcCmos::arm_periodic_timer() {
  const uint64_t period = periodic_ticks();
  if (period == 0 || !(cmos_[kRegB] & kBPeriodicIrq)) {
    periodic_timer_.disarm();
    return;
  }
  // The next multiple of the period in time-base ticks, in ns rounded up.
  const unsigned __int128 next_tick = static_cast<unsigned __int128>(periodic_index(clock_.now_ns()) + 1) * period;
  periodic_timer_.arm(static_cast<uint64_t>((next_tick * kNsPerSecond + kTimeBaseHz - 1) / kTimeBaseHz));
}

void RtcCmos::on_periodic() {
  cmos_[kRegC] |= kBPeriodicIrq;
  update_irq();
  arm_periodic_timer();
}

void RtcCmos::update_irq() {
  const bool irq = (cmos_[kRegC] & cmos_[kRegB] & kCFlags) != 0;
  cmos_[kRegC] = static_cast<uint8_t>((cmos_[kRegC] & kCFlags) | (irq ? kCIrq : 0));
  irq_.set_level(irq);
}

}  // namespace vmm86
