#include "devices/clock/virtual_clock.h"

#include <ctime>

namespace vmm86 {
namespace {

int64_t read_clock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

uint64_t host_monotonic_ns() { return static_cast<uint64_t>(read_clock(CLOCK_MONOTONIC)); }

int64_t host_unix_time_ns() { return read_clock(CLOCK_REALTIME); }

VirtualClock VirtualClock::host() { return VirtualClock(Mode::Host, host_monotonic_ns()); }

VirtualClock VirtualClock::manual(uint64_t start_ns) { return VirtualClock(Mode::Manual, start_ns); }

uint64_t VirtualClock::now_ns() const { return mode_ == Mode::Manual ? value_ : host_monotonic_ns() - value_; }

void VirtualClock::advance(uint64_t delta_ns) {
  if (mode_ == Mode::Manual) value_ += delta_ns;
}

void VirtualClock::set(uint64_t ns) {
  if (mode_ == Mode::Manual && ns > value_) value_ = ns;
}

}  // namespace vmm86
