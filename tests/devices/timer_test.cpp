#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"

namespace vmm86 {
namespace {

TEST(VirtualClockTest, ManualClockMovesOnlyWhenTold) {
  VirtualClock clock = VirtualClock::manual(100);
  EXPECT_EQ(clock.mode(), VirtualClock::Mode::Manual);
  EXPECT_EQ(clock.now_ns(), 100u);
  clock.advance(50);
  EXPECT_EQ(clock.now_ns(), 150u);
  clock.set(1000);
  EXPECT_EQ(clock.now_ns(), 1000u);
  clock.set(10);  // never backwards
  EXPECT_EQ(clock.now_ns(), 1000u);
}

TEST(VirtualClockTest, HostClockStartsNearZeroAndAdvances) {
  VirtualClock clock = VirtualClock::host();
  const uint64_t t0 = clock.now_ns();
  EXPECT_LT(t0, 1'000'000'000u);
  uint64_t t1 = t0;
  while (t1 == t0) t1 = clock.now_ns();
  EXPECT_GT(t1, t0);
  clock.advance(1'000'000'000'000);  // ignored on a host clock
  EXPECT_LT(clock.now_ns(), 1'000'000'000u);
}

TEST(TimerQueueTest, RunsExpiredInDeadlineOrderTiesInScheduleOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.schedule(300, [&](uint64_t) { order.push_back(3); });
  q.schedule(100, [&](uint64_t) { order.push_back(1); });
  q.schedule(200, [&](uint64_t) { order.push_back(21); });
  q.schedule(200, [&](uint64_t) { order.push_back(22); });
  EXPECT_EQ(q.next_deadline(), 100u);
  EXPECT_EQ(q.run_expired(99), 0u);
  EXPECT_EQ(q.run_expired(200), 3u);
  EXPECT_EQ(order, (std::vector<int>{1, 21, 22}));
  EXPECT_EQ(q.next_deadline(), 300u);
  EXPECT_EQ(q.run_expired(1000), 1u);
  EXPECT_EQ(q.next_deadline(), std::nullopt);
}

TEST(TimerQueueTest, CancelRemovesOnlyThatTimer) {
  TimerQueue q;
  int ran = 0;
  const TimerId a = q.schedule(10, [&](uint64_t) { ran += 1; });
  q.schedule(20, [&](uint64_t) { ran += 10; });
  EXPECT_TRUE(q.cancel(a));
  EXPECT_FALSE(q.cancel(a));
  EXPECT_EQ(q.next_deadline(), 20u);
  q.run_expired(100);
  EXPECT_EQ(ran, 10);
}

TEST(TimerQueueTest, CallbackGetsNowAndMayReschedule) {
  TimerQueue q;
  std::vector<uint64_t> seen;
  std::function<void(uint64_t)> periodic = [&](uint64_t now) {
    seen.push_back(now);
    if (seen.size() < 3) q.schedule(now + 5, periodic);
  };
  q.schedule(10, periodic);
  EXPECT_EQ(q.run_expired(12), 1u);
  EXPECT_EQ(q.run_expired(17), 1u);
  EXPECT_EQ(q.run_expired(30), 1u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{12, 17, 30}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, ListenerHearsEarliestDeadlineChangesOncePerRun) {
  TimerQueue q;
  std::vector<std::optional<uint64_t>> heard;
  q.set_earliest_changed([&](std::optional<uint64_t> d) { heard.push_back(d); });
  q.schedule(100, [](uint64_t) {});
  q.schedule(200, [](uint64_t) {});  // not earlier: no news
  q.schedule(50, [&](uint64_t now) { q.schedule(now + 1000, [](uint64_t) {}); });
  q.run_expired(150);  // runs 50 and 100; one report at the end
  q.run_expired(5000);
  EXPECT_EQ(heard, (std::vector<std::optional<uint64_t>>{100, 50, 200, std::nullopt}));
}

TEST(DeviceTimerTest, RearmReplacesAndFiringDisarms) {
  TimerQueue q;
  int fired = 0;
  DeviceTimer t(q, [&](uint64_t) { ++fired; });
  t.arm(100);
  t.arm(50);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(t.armed());
  q.run_expired(60);
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(t.armed());
  t.arm(200);
  t.disarm();
  q.run_expired(1000);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace vmm86
