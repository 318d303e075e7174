#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/legacy/rtc_cmos.h"
#include "test_util.h"

namespace vmm86 {
namespace {

constexpr int64_t kNs = 1'000'000'000;
// 2024-02-29 23:59:58 UTC, a Thursday, half a second into the second.
constexpr int64_t kStart = 1'709'251'198 * kNs + kNs / 2;

class RtcTest : public ::testing::Test {
 protected:
  RtcTest() : clock(VirtualClock::manual()), rtc(clock, timers, sink.line(8), kStart) {
    EXPECT_EQ(bus.add(0x70, 2, rtc, "rtc"), BusStatus::Ok);
  }

  uint8_t cmos(uint8_t index) {
    bus.write(0x70, 1, index);
    return static_cast<uint8_t>(bus.read(0x71, 1));
  }
  void set_cmos(uint8_t index, uint8_t value) {
    bus.write(0x70, 1, index);
    bus.write(0x71, 1, value);
  }
  void advance(uint64_t ns) {
    clock.advance(ns);
    timers.run_expired(clock.now_ns());
  }

  VirtualClock clock;
  TimerQueue timers;
  test::RecordingIrqSink sink;
  RtcCmos rtc;
  IoBus bus;
};

TEST_F(RtcTest, TimeRegistersInBcdByDefault) {
  EXPECT_EQ(cmos(0x00), 0x58);
  EXPECT_EQ(cmos(0x02), 0x59);
  EXPECT_EQ(cmos(0x04), 0x23);
  EXPECT_EQ(cmos(0x06), 0x05);  // Thursday (Sunday = 1)
  EXPECT_EQ(cmos(0x07), 0x29);
  EXPECT_EQ(cmos(0x08), 0x02);
  EXPECT_EQ(cmos(0x09), 0x24);
  EXPECT_EQ(cmos(0x32), 0x20);
  EXPECT_EQ(cmos(0x0A), 0x26);
  EXPECT_EQ(cmos(0x0B), 0x02);
  EXPECT_EQ(cmos(0x0D), 0x80);
}

TEST_F(RtcTest, TimeRegistersInBinaryAnd12HourMode) {
  set_cmos(0x0B, 0x06);  // binary, 24 h
  EXPECT_EQ(cmos(0x00), 58);
  EXPECT_EQ(cmos(0x04), 23);
  EXPECT_EQ(cmos(0x09), 24);
  EXPECT_EQ(cmos(0x32), 20);
  set_cmos(0x0B, 0x04);  // binary, 12 h
  EXPECT_EQ(cmos(0x04), 0x80 | 11);
  set_cmos(0x0B, 0x00);  // BCD, 12 h
  EXPECT_EQ(cmos(0x04), 0x91);
}

TEST_F(RtcTest, ClockAdvancesWithVirtualTimeAcrossALeapDay) {
  advance(2 * kNs);  // 2024-03-01 00:00:00.5, a Friday
  EXPECT_EQ(cmos(0x00), 0x00);
  EXPECT_EQ(cmos(0x02), 0x00);
  EXPECT_EQ(cmos(0x04), 0x00);
  EXPECT_EQ(cmos(0x06), 0x06);
  EXPECT_EQ(cmos(0x07), 0x01);
  EXPECT_EQ(cmos(0x08), 0x03);
  EXPECT_EQ(rtc.unix_time_ns(), kStart + 2 * kNs);
}

TEST_F(RtcTest, UpdateInProgressIsSetJustBeforeTheSecondBoundary) {
  EXPECT_EQ(cmos(0x0A) & 0x80, 0);
  advance(kNs / 2 - 200'000);  // 200 us before the boundary
  EXPECT_EQ(cmos(0x0A) & 0x80, 0x80);
  EXPECT_EQ(cmos(0x00), 0x58);
  advance(200'000);
  EXPECT_EQ(cmos(0x0A) & 0x80, 0);
  EXPECT_EQ(cmos(0x00), 0x59);
}

TEST_F(RtcTest, LinuxReadLoopTerminatesAsTimePasses) {
  advance(kNs / 2 - 100'000);
  // mach_get_cmos_time(): wait for UIP to clear, then read.
  unsigned spins = 0;
  while (cmos(0x0A) & 0x80) {
    clock.advance(1'000);  // each poll costs a microsecond
    ASSERT_LT(++spins, 1'000u);
  }
  EXPECT_GT(spins, 0u);
  EXPECT_EQ(cmos(0x00), 0x59);
}

TEST_F(RtcTest, UpdateInterruptAndRegisterCReadClears) {
  set_cmos(0x0B, 0x12);  // UIE, 24 h, BCD
  EXPECT_FALSE(sink.levels[8]);
  advance(kNs / 2);
  EXPECT_TRUE(sink.levels[8]);
  EXPECT_EQ(cmos(0x0C) & 0xB0, 0x90);  // IRQF | UF (PF is set too: periodic flags run)
  EXPECT_FALSE(sink.levels[8]);
  EXPECT_EQ(cmos(0x0C), 0x00);
  advance(kNs);
  EXPECT_EQ(sink.rising_edges[8], 2u);
}

TEST_F(RtcTest, FlagsWithoutEnablesDoNotInterrupt) {
  advance(kNs);
  EXPECT_EQ(sink.rising_edges[8], 0u);
  EXPECT_EQ(cmos(0x0C) & 0x90, 0x10);  // UF without IRQF
}

TEST_F(RtcTest, PeriodicInterruptAt1024Hz) {
  set_cmos(0x0B, 0x42);                // PIE
  for (int i = 0; i < 100'000; ++i) {  // 100 ms in 1 us steps
    clock.advance(1'000);
    timers.run_expired(clock.now_ns());
    if (sink.levels[8]) {
      EXPECT_EQ(cmos(0x0C) & 0xC0, 0xC0);  // the handler reads C
    }
  }
  EXPECT_EQ(sink.rising_edges[8], 102u);  // 1024 Hz * 0.1 s
}

TEST_F(RtcTest, PeriodicFlagIsVisibleWithoutPie) {
  EXPECT_EQ(cmos(0x0C), 0x00);
  advance(1'000'000);  // 1 ms > 976 us
  EXPECT_EQ(cmos(0x0C), 0x40);
  EXPECT_EQ(cmos(0x0C), 0x00);
  set_cmos(0x0A, 0x20);  // rate 0: no periodic flag
  advance(10'000'000);
  EXPECT_EQ(cmos(0x0C) & 0x40, 0);
}

TEST_F(RtcTest, AlarmFiresWhenTimeMatches) {
  set_cmos(0x01, 0x01);  // 00:00:01
  set_cmos(0x03, 0x00);
  set_cmos(0x05, 0xC0);  // any hour
  set_cmos(0x0B, 0x22);  // AIE
  advance(kNs / 2);      // 23:59:59
  advance(kNs);          // 00:00:00
  EXPECT_FALSE(sink.levels[8]);
  advance(kNs);  // 00:00:01
  EXPECT_TRUE(sink.levels[8]);
  EXPECT_EQ(cmos(0x0C) & 0xA0, 0xA0);
}

TEST_F(RtcTest, SetBitFreezesAndTheGuestSetsTheTime) {
  // Like mc146818_set_time(): SET and divider reset, write, restore.
  set_cmos(0x0B, 0x82);
  set_cmos(0x0A, 0x70);
  advance(5 * kNs);
  EXPECT_EQ(cmos(0x00), 0x58);  // frozen
  EXPECT_EQ(cmos(0x0A) & 0x80, 0);
  set_cmos(0x00, 0x30);
  set_cmos(0x02, 0x15);
  set_cmos(0x04, 0x10);
  set_cmos(0x07, 0x04);
  set_cmos(0x08, 0x07);
  set_cmos(0x09, 0x99);
  set_cmos(0x32, 0x19);
  set_cmos(0x0B, 0x02);
  set_cmos(0x0A, 0x26);  // divider runs again: first update half a second later
  EXPECT_EQ(cmos(0x00), 0x30);
  EXPECT_EQ(cmos(0x06), 0x01);  // 1999-07-04 was a Sunday
  advance(kNs / 2);
  EXPECT_EQ(cmos(0x00), 0x31);
  EXPECT_EQ(cmos(0x04), 0x10);
  EXPECT_EQ(cmos(0x09), 0x99);
}

TEST_F(RtcTest, WriteToSecondsWhileRunningKeepsTheRest) {
  set_cmos(0x00, 0x10);
  EXPECT_EQ(cmos(0x00), 0x10);
  EXPECT_EQ(cmos(0x02), 0x59);
  advance(kNs / 2);
  EXPECT_EQ(cmos(0x00), 0x11);
}

TEST_F(RtcTest, NmiMaskBitAndPlainCmosRam) {
  bus.write(0x70, 1, 0x80 | 0x40);
  EXPECT_TRUE(rtc.nmi_masked());
  bus.write(0x71, 1, 0xAB);
  bus.write(0x70, 1, 0x40);
  EXPECT_FALSE(rtc.nmi_masked());
  EXPECT_EQ(bus.read(0x71, 1), 0xABu);
  EXPECT_EQ(bus.read(0x70, 1), 0xFFu);  // the index port is write-only
  set_cmos(0x0D, 0x00);                 // read-only
  EXPECT_EQ(cmos(0x0D), 0x80);
}

TEST_F(RtcTest, MemorySizeBytes) {
  rtc.set_memory_size(128ull << 20);
  EXPECT_EQ(cmos(0x15) | cmos(0x16) << 8, 640);
  EXPECT_EQ(cmos(0x17) | cmos(0x18) << 8, 0xFFFF);  // 127 MiB does not fit in KiB
  EXPECT_EQ(cmos(0x30) | cmos(0x31) << 8, 0xFFFF);
  EXPECT_EQ(cmos(0x34) | cmos(0x35) << 8, (112 << 20) >> 16);
  rtc.set_memory_size(32ull << 20);
  EXPECT_EQ(cmos(0x17) | cmos(0x18) << 8, 31 * 1024);
  unsigned sum = 0;
  for (uint8_t i = 0x10; i < 0x2E; ++i) sum += cmos(i);
  EXPECT_EQ(cmos(0x2E) << 8 | cmos(0x2F), sum);
}

}  // namespace
}  // namespace vmm86
