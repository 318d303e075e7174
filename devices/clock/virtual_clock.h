// The guest's notion of elapsed time, in nanoseconds since the machine was created.
// Every time-dependent device (PIT counts, RTC seconds, UIP windows) reads this clock
// rather than the host's, so the same model runs in real time under a guest and in
// exactly reproducible steps in tests (Mode::Manual).
#pragma once

#include <cstdint>

namespace vmm86 {

class VirtualClock {
 public:
  enum class Mode : uint8_t {
    Host,    ///< follows CLOCK_MONOTONIC from construction on
    Manual,  ///< stands still until advance()/set(): deterministic tests
  };

  /// A clock that reads 0 now and then runs with the host's monotonic clock.
  [[nodiscard]] static VirtualClock host();
  /// A clock that reads `start_ns` until told otherwise.
  [[nodiscard]] static VirtualClock manual(uint64_t start_ns = 0);

  [[nodiscard]] uint64_t now_ns() const;
  [[nodiscard]] Mode mode() const { return mode_; }

  /// Manual mode only (a no-op on a host clock): moves time forward.
  void advance(uint64_t delta_ns);
  /// Manual mode only: jumps to `ns`; the clock never goes backwards, so an earlier
  /// value is ignored.
  void set(uint64_t ns);

 private:
  VirtualClock(Mode mode, uint64_t value) : mode_(mode), value_(value) {}

  Mode mode_;
  uint64_t value_;  ///< Host: host monotonic ns at creation; Manual: the current time
};

/// Host monotonic time in ns (CLOCK_MONOTONIC).
[[nodiscard]] uint64_t host_monotonic_ns();
/// Host wall-clock time in ns since the Unix epoch (CLOCK_REALTIME), for the RTC.
[[nodiscard]] int64_t host_unix_time_ns();

}  // namespace vmm86
