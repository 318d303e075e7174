#include "devices/clock/timer_queue.h"

#include <algorithm>

namespace vmm86 {
namespace {

// Latest first, so that the earliest deadline is at the back; ties run in id order.
bool later(uint64_t d1, TimerId i1, uint64_t d2, TimerId i2) { return d1 != d2 ? d1 > d2 : i1 > i2; }

}  // namespace

TimerId TimerQueue::schedule(uint64_t deadline_ns, TimerCallback callback) {
  const auto before = next_deadline();
  const TimerId id = next_id_++;
  const auto pos = std::lower_bound(entries_.begin(), entries_.end(), deadline_ns,
                                    [id](const Entry& e, uint64_t d) { return later(e.deadline, e.id, d, id); });
  entries_.insert(pos, Entry{deadline_ns, id, std::move(callback)});
  notify_if_changed(before);
  return id;
}

bool TimerQueue::cancel(TimerId id) {
  const auto it = std::find_if(entries_.begin(), entries_.end(), [id](const Entry& e) { return e.id == id; });
  if (it == entries_.end()) return false;
  const auto before = next_deadline();
  entries_.erase(it);
  notify_if_changed(before);
  return true;
}

size_t TimerQueue::run_expired(uint64_t now_ns) {
  const auto before = next_deadline();
  size_t ran = 0;
  running_ = true;
  while (!entries_.empty() && entries_.back().deadline <= now_ns) {
    // Take the entry out first: the callback may schedule or cancel.
    TimerCallback callback = std::move(entries_.back().callback);
    entries_.pop_back();
    callback(now_ns);
    ++ran;
  }
  running_ = false;
  notify_if_changed(before);
  return ran;
}

std::optional<uint64_t> TimerQueue::next_deadline() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().deadline;
}

void TimerQueue::notify_if_changed(std::optional<uint64_t> before) {
  if (!running_ && earliest_changed_ && next_deadline() != before) earliest_changed_(next_deadline());
}

void DeviceTimer::arm(uint64_t deadline_ns) {
  if (id_ != 0 && deadline_ == deadline_ns) return;
  disarm();
  deadline_ = deadline_ns;
  id_ = queue_.schedule(deadline_ns, [this](uint64_t now_ns) {
    id_ = 0;  // consumed: the callback may re-arm
    callback_(now_ns);
  });
}

void DeviceTimer::disarm() {
  if (id_ == 0) return;
  queue_.cancel(id_);
  id_ = 0;
}

}  // namespace vmm86
