// Deadlines on the virtual clock. Devices schedule callbacks; the machine runs the expired
// ones on the vCPU thread and arms one host timer at next_deadline() (devices/README.md).
// Few timers are live at once (PIT channel 0, RTC update and periodic), so the queue is a
// vector kept sorted latest-first: the earliest deadline is at the back.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace vmm86 {

/// Identifies one scheduled callback; 0 is never a valid id.
using TimerId = uint64_t;

/// Receives the time that run_expired() was called with (>= the deadline). A periodic
/// device computes its next deadline from it; that deadline must lie after `now_ns`, or
/// it runs again within the same run_expired() call.
using TimerCallback = std::function<void(uint64_t now_ns)>;

class TimerQueue {
 public:
  /// Runs `callback` once, at the first run_expired() whose time is >= `deadline_ns`.
  TimerId schedule(uint64_t deadline_ns, TimerCallback callback);
  /// Returns false if `id` already ran or was cancelled.
  bool cancel(TimerId id);
  /// Runs every callback due at `now_ns`, earliest first (ties in scheduling order),
  /// including ones that callbacks schedule as already due. Returns how many ran.
  size_t run_expired(uint64_t now_ns);
  [[nodiscard]] std::optional<uint64_t> next_deadline() const;
  [[nodiscard]] size_t size() const { return entries_.size(); }

  /// Called whenever the earliest deadline changes (a host timer needs re-arming);
  /// nullopt means no timer is pending. During run_expired() it is called at most once,
  /// at the end.
  void set_earliest_changed(std::function<void(std::optional<uint64_t>)> listener) {
    earliest_changed_ = std::move(listener);
  }

 private:
  struct Entry {
    uint64_t deadline;
    TimerId id;
    TimerCallback callback;
  };
  void notify_if_changed(std::optional<uint64_t> before);

  std::vector<Entry> entries_;  ///< sorted by (deadline, id) descending
  TimerId next_id_ = 1;
  bool running_ = false;  ///< inside run_expired: report the earliest deadline once, at the end
  std::function<void(std::optional<uint64_t>)> earliest_changed_;
};

/// A device's one re-armable deadline: arming again replaces the previous deadline.
/// Not copyable or movable (the queue holds a callback into it).
class DeviceTimer {
 public:
  DeviceTimer(TimerQueue& queue, TimerCallback callback) : queue_(queue), callback_(std::move(callback)) {}
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;
  ~DeviceTimer() { disarm(); }

  void arm(uint64_t deadline_ns);
  void disarm();
  [[nodiscard]] bool armed() const { return id_ != 0; }
  [[nodiscard]] uint64_t deadline() const { return deadline_; }

 private:
  TimerQueue& queue_;
  TimerCallback callback_;
  TimerId id_ = 0;
  uint64_t deadline_ = 0;
};

}  // namespace vmm86
