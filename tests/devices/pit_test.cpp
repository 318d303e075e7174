#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/legacy/pit8254.h"
#include "test_util.h"

namespace vmm86 {
namespace {

constexpr uint64_t kHz = Pit8254::kInputHz;

// The first ns at which `ticks` PIT ticks have elapsed since time 0.
uint64_t ns_for_ticks(uint64_t ticks) { return (ticks * 1'000'000'000 + kHz - 1) / kHz; }

class PitTest : public ::testing::Test {
 protected:
  PitTest() : clock(VirtualClock::manual()), pit(clock, timers, sink.line(0)) {
    EXPECT_EQ(bus.add(0x40, 4, pit.ports(), "pit"), BusStatus::Ok);
    EXPECT_EQ(bus.add(0x61, 1, pit.port61(), "portb"), BusStatus::Ok);
  }

  void out(uint16_t port, uint8_t value) { bus.write(port, 1, value); }
  uint8_t in(uint16_t port) { return static_cast<uint8_t>(bus.read(port, 1)); }
  void program(unsigned channel, uint8_t mode_bits, uint16_t count) {
    out(0x43, static_cast<uint8_t>(channel << 6 | 0x30 | mode_bits << 1));
    out(static_cast<uint16_t>(0x40 + channel), static_cast<uint8_t>(count));
    out(static_cast<uint16_t>(0x40 + channel), static_cast<uint8_t>(count >> 8));
  }
  // Moves time to `ns` in steps, running due timers like the machine's run loop does.
  void run_until(uint64_t ns, uint64_t step_ns = 100'000) {
    while (clock.now_ns() < ns) {
      clock.set(std::min(ns, clock.now_ns() + step_ns));
      timers.run_expired(clock.now_ns());
    }
  }
  uint64_t irq0_edges() const { return sink.rising_edges[0]; }

  VirtualClock clock;
  TimerQueue timers;
  test::RecordingIrqSink sink;
  Pit8254 pit;
  IoBus bus;
};

TEST_F(PitTest, Mode2PeriodicTickAtLinuxHz) {
  constexpr uint16_t kLatch = (kHz + 125) / 250;  // Linux's PIT_LATCH for HZ=250
  program(0, 2, kLatch);
  const uint64_t start = irq0_edges();
  EXPECT_TRUE(timers.next_deadline().has_value());
  run_until(1'000'000'000);
  EXPECT_EQ(irq0_edges() - start, pit.now_tick() / kLatch);
  EXPECT_EQ(irq0_edges() - start, 249u);
  EXPECT_TRUE(sink.levels[0]);  // mode 2 OUT rests high
}

TEST_F(PitTest, Mode3SquareWaveTicksOncePerPeriod) {
  constexpr uint16_t kLatch = 11932;  // 100 Hz
  program(0, 3, kLatch);
  const uint64_t start = irq0_edges();
  run_until(500'000'000, 37'000);
  EXPECT_EQ(irq0_edges() - start, pit.now_tick() / kLatch);
  // OUT is high for the first half of each period and low for the second.
  const uint64_t period_start = (pit.now_tick() / kLatch + 1) * kLatch;
  clock.set(ns_for_ticks(period_start + 10));
  EXPECT_TRUE(pit.output(0));
  clock.set(ns_for_ticks(period_start + kLatch / 2 + 10));
  EXPECT_FALSE(pit.output(0));
}

TEST_F(PitTest, LateTimerRunDeliversOneCoalescedEdge) {
  program(0, 2, 1000);
  const uint64_t start = irq0_edges();
  clock.set(ns_for_ticks(10'500));
  timers.run_expired(clock.now_ns());
  EXPECT_EQ(irq0_edges() - start, 1u);
  EXPECT_EQ(timers.next_deadline(), ns_for_ticks(11'000));  // back in phase
}

TEST_F(PitTest, Mode4OneShotAsLinuxClockeventsUseIt) {
  out(0x43, 0x38);  // channel 0, lo/hi, mode 4
  out(0x40, 0xE8);
  out(0x40, 0x03);  // 1000
  const uint64_t start = irq0_edges();
  run_until(ns_for_ticks(1000));
  EXPECT_EQ(irq0_edges() - start, 0u);
  EXPECT_FALSE(pit.output(0));  // the one-tick low pulse at terminal count
  run_until(ns_for_ticks(1001));
  EXPECT_EQ(irq0_edges() - start, 1u);
  run_until(ns_for_ticks(200'000));
  EXPECT_EQ(irq0_edges() - start, 1u);  // no reload in mode 4
  EXPECT_FALSE(timers.next_deadline().has_value());
}

TEST_F(PitTest, Mode0InterruptsOnTerminalCount) {
  // Linux's shutdown: mode 0, count 0 (65536).
  out(0x43, 0x30);
  out(0x40, 0);
  out(0x40, 0);
  EXPECT_FALSE(pit.output(0));
  EXPECT_FALSE(sink.levels[0]);
  const uint64_t start = irq0_edges();
  run_until(ns_for_ticks(65535));
  EXPECT_EQ(irq0_edges() - start, 0u);
  run_until(ns_for_ticks(65536));
  EXPECT_EQ(irq0_edges() - start, 1u);
  EXPECT_TRUE(pit.output(0));
}

TEST_F(PitTest, CounterLatchFreezesTheReadValue) {
  program(0, 2, 10000);
  clock.set(ns_for_ticks(1000));
  out(0x43, 0x00);  // latch channel 0
  clock.set(ns_for_ticks(3000));
  const uint16_t latched = static_cast<uint16_t>(in(0x40) | in(0x40) << 8);
  EXPECT_EQ(latched, 9000);
  const uint16_t live = static_cast<uint16_t>(in(0x40) | in(0x40) << 8);
  EXPECT_EQ(live, 7000);
}

TEST_F(PitTest, ReadBackLatchesStatusThenCount) {
  program(0, 2, 5000);
  clock.set(ns_for_ticks(100));
  out(0x43, 0xC2);                            // read-back: count and status of channel 0
  EXPECT_EQ(in(0x40), 0x80 | 0x30 | 2 << 1);  // OUT high, lo/hi, mode 2, binary
  EXPECT_EQ(static_cast<uint16_t>(in(0x40) | in(0x40) << 8), 4900);
  // Status right after a control word shows the null count.
  out(0x43, 0x34);
  out(0x43, 0xE2);  // status only
  EXPECT_EQ(in(0x40), 0x80 | 0x40 | 0x30 | 2 << 1);
}

TEST_F(PitTest, Port61Channel2CalibrationLikeLinuxPitCalibrateTsc) {
  constexpr uint16_t kLatch = kHz / (1000 / 10);               // CAL_MS = 10
  out(0x61, static_cast<uint8_t>((in(0x61) & ~0x02) | 0x01));  // gate high, speaker off
  out(0x43, 0xB0);                                             // channel 2, lo/hi, mode 0
  out(0x42, kLatch & 0xFF);
  out(0x42, kLatch >> 8);
  unsigned polls = 0;
  while ((in(0x61) & 0x20) == 0) {
    ++polls;
    clock.advance(1000);  // 1 us per poll
    ASSERT_LT(polls, 1'000'000u);
  }
  EXPECT_GE(pit.now_tick(), kLatch);
  EXPECT_LT(pit.now_tick(), kLatch + 2u);
  EXPECT_GE(polls, 1000u);  // Linux rejects the run below loopmin = 1000
  EXPECT_EQ(in(0x61) & 0x03, 0x01);
  EXPECT_EQ(irq0_edges(), 0u);  // channel 2 has no interrupt
}

TEST_F(PitTest, QuickCalibrationSeesTheMsbStepDown) {
  // quick_pit_calibrate(): mode 0 from 0xFFFF, unlatched LSB+MSB reads.
  out(0x61, 0x01);
  out(0x43, 0xB0);
  out(0x42, 0xFF);
  out(0x42, 0xFF);
  (void)in(0x42);
  EXPECT_EQ(in(0x42), 0xFF);
  clock.set(ns_for_ticks(256));
  (void)in(0x42);
  EXPECT_EQ(in(0x42), 0xFE);
  clock.set(ns_for_ticks(256 * 5 + 3));
  EXPECT_EQ(in(0x42), 0xFC);  // LSB: 0xFFFF - 1283 = 0xFAFC
  EXPECT_EQ(in(0x42), 0xFA);
}

TEST_F(PitTest, GateLowSuspendsMode0) {
  out(0x61, 0x01);
  program(2, 0, 1000);
  clock.set(ns_for_ticks(500));
  out(0x61, 0x00);
  clock.set(ns_for_ticks(5000));
  EXPECT_EQ(pit.count(2), 500);
  EXPECT_EQ(in(0x61) & 0x20, 0);
  out(0x61, 0x01);
  clock.set(ns_for_ticks(5499));
  EXPECT_EQ(in(0x61) & 0x20, 0);
  clock.set(ns_for_ticks(5500));
  EXPECT_EQ(in(0x61) & 0x20, 0x20);
}

TEST_F(PitTest, Mode1WaitsForTheGateEdge) {
  program(2, 1, 100);
  EXPECT_TRUE(pit.output(2));
  clock.set(ns_for_ticks(1000));
  EXPECT_TRUE(pit.output(2));
  out(0x61, 0x01);  // rising gate triggers the one-shot
  EXPECT_FALSE(pit.output(2));
  clock.set(ns_for_ticks(1100));
  EXPECT_TRUE(pit.output(2));
}

TEST_F(PitTest, RefreshBitToggles) {
  const uint8_t a = in(0x61) & 0x10;
  clock.set(ns_for_ticks(18));
  const uint8_t b = in(0x61) & 0x10;
  clock.set(ns_for_ticks(36));
  const uint8_t c = in(0x61) & 0x10;
  EXPECT_NE(a, b);
  EXPECT_EQ(a, c);
}

TEST_F(PitTest, BcdCounting) {
  out(0x61, 0x01);
  out(0x43, 0xB1);  // channel 2, lo/hi, mode 0, BCD
  out(0x42, 0x00);
  out(0x42, 0x10);  // 1000 decimal
  clock.set(ns_for_ticks(1));
  EXPECT_EQ(in(0x42), 0x99);
  EXPECT_EQ(in(0x42), 0x09);
}

TEST_F(PitTest, WordWriteReachesTwoConsecutivePortsAsOnIsa) {
  out(0x43, 0x34);
  out(0x43, 0x74);           // channel 1 too
  bus.write(0x40, 2, 2000);  // LSB 0xD0 to channel 0, 0x07 to channel 1
  EXPECT_TRUE(pit.channel(0).write_msb_next);
  EXPECT_EQ(pit.channel(0).write_lsb, 0xD0);
  EXPECT_EQ(pit.channel(1).write_lsb, 0x07);
  out(0x40, 0x07);
  EXPECT_EQ(pit.channel(0).reload, 2000u);
  EXPECT_FALSE(pit.channel(0).null_count);
}

TEST_F(PitTest, LsbOnlyAndMsbOnlyAccess) {
  out(0x43, 0x14);  // channel 0, LSB only, mode 2
  out(0x40, 200);
  EXPECT_EQ(pit.channel(0).reload, 200u);
  out(0x43, 0x24);  // MSB only
  out(0x40, 0x02);
  EXPECT_EQ(pit.channel(0).reload, 0x200u);
  clock.set(ns_for_ticks(0x100));
  EXPECT_EQ(in(0x40), 0x01);  // MSB of 0x100
}

}  // namespace
}  // namespace vmm86
