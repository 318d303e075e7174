#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/bus.h"

namespace vmm86 {
namespace {

struct Access {
  bool write;
  uint64_t offset;
  unsigned size;
  uint32_t value;
  bool operator==(const Access&) const = default;
};

// A device whose byte at offset i reads as base_value + i; records every access.
class FakePortDevice final : public PortIoDevice {
 public:
  explicit FakePortDevice(uint8_t base_value = 0x10) : base_value_(base_value) {}
  uint32_t read(uint16_t offset, unsigned size) override {
    log.push_back({false, offset, size, 0});
    uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i) v |= uint32_t{static_cast<uint8_t>(base_value_ + offset + i)} << (8 * i);
    return v;
  }
  void write(uint16_t offset, unsigned size, uint32_t value) override { log.push_back({true, offset, size, value}); }
  std::vector<Access> log;

 private:
  uint8_t base_value_;
};

class FakeMmioDevice final : public MmioDevice {
 public:
  uint32_t read(uint64_t offset, unsigned size) override {
    log.push_back({false, offset, size, 0});
    return 0xA0000000u | static_cast<uint32_t>(offset);
  }
  void write(uint64_t offset, unsigned size, uint32_t value) override { log.push_back({true, offset, size, value}); }
  std::vector<Access> log;
};

class IoBusTest : public ::testing::Test {
 protected:
  IoBusTest() : bus([this](std::string_view m) { messages.emplace_back(m); }) {}
  std::vector<std::string> messages;
  IoBus bus;
};

TEST_F(IoBusTest, UnhandledReadsAreAllOnesForEverySize) {
  EXPECT_EQ(bus.read(0x1234, 1), 0xFFu);
  EXPECT_EQ(bus.read(0x1234, 2), 0xFFFFu);
  EXPECT_EQ(bus.read(0x1234, 4), 0xFFFFFFFFu);
  EXPECT_EQ(bus.unhandled_accesses(), 3u);
}

TEST_F(IoBusTest, UnhandledAccessIsLoggedOncePerPort) {
  (void)bus.read(0xCF8, 4);
  (void)bus.read(0xCF8, 4);
  bus.write(0xCF8, 4, 0x80000000);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find("0xcf8"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("read"), std::string::npos) << messages[0];
  bus.write(0xED, 1, 0);  // another port: logged again
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[1].find("write"), std::string::npos) << messages[1];
  EXPECT_EQ(bus.unhandled_accesses(), 4u);
}

TEST_F(IoBusTest, RoutesByRangeWithOffsets) {
  FakePortDevice a(0x10), b(0x50);
  ASSERT_EQ(bus.add(0x40, 4, a, "a"), BusStatus::Ok);
  ASSERT_EQ(bus.add(0x3F8, 8, b, "b"), BusStatus::Ok);
  EXPECT_EQ(bus.read(0x42, 1), 0x12u);
  EXPECT_EQ(bus.read(0x3FD, 1), 0x55u);
  bus.write(0x3F8, 1, 0x41);
  EXPECT_EQ(a.log, (std::vector<Access>{{false, 2, 1, 0}}));
  EXPECT_EQ(b.log, (std::vector<Access>{{false, 5, 1, 0}, {true, 0, 1, 0x41}}));
  EXPECT_EQ(bus.read(0x44, 1), 0xFFu);  // just past the end
  EXPECT_EQ(bus.read(0x3F, 1), 0xFFu);  // just before the start
}

TEST_F(IoBusTest, WideAccessToByteDeviceSplitsLowByteFirst) {
  FakePortDevice d(0x10);
  ASSERT_EQ(bus.add(0x40, 4, d, "pit"), BusStatus::Ok);
  bus.write(0x40, 2, 0xBEEF);
  EXPECT_EQ(d.log, (std::vector<Access>{{true, 0, 1, 0xEF}, {true, 1, 1, 0xBE}}));
  d.log.clear();
  EXPECT_EQ(bus.read(0x40, 4), 0x13121110u);
  EXPECT_EQ(d.log, (std::vector<Access>{{false, 0, 1, 0}, {false, 1, 1, 0}, {false, 2, 1, 0}, {false, 3, 1, 0}}));
  EXPECT_EQ(bus.ranges()[0].accesses, 6u);
}

TEST_F(IoBusTest, AccessStraddlingADeviceEndGetsAllOnesForTheMissingBytes) {
  FakePortDevice d(0x10);
  ASSERT_EQ(bus.add(0x60, 1, d, "kbd"), BusStatus::Ok);
  EXPECT_EQ(bus.read(0x5F, 2), 0x10FFu);      // 0x5F unhandled, 0x60 handled
  EXPECT_EQ(bus.read(0x60, 4), 0xFFFFFF10u);  // 0x61-0x63 unhandled
  EXPECT_FALSE(messages.empty());
}

TEST_F(IoBusTest, WordDeviceTakesWordsAndSplitsDwords) {
  FakePortDevice d(0x20);
  ASSERT_EQ(bus.add(0x1F0, 8, d, "ide", 2), BusStatus::Ok);
  EXPECT_EQ(bus.read(0x1F0, 2), 0x2120u);
  EXPECT_EQ(bus.read(0x1F0, 4), 0x23222120u);
  EXPECT_EQ(d.log, (std::vector<Access>{{false, 0, 2, 0}, {false, 0, 2, 0}, {false, 2, 2, 0}}));
}

TEST_F(IoBusTest, RegistrationIsChecked) {
  FakePortDevice d;
  ASSERT_EQ(bus.add(0x70, 2, d, "rtc"), BusStatus::Ok);
  EXPECT_EQ(bus.add(0x71, 1, d, "x"), BusStatus::Overlap);
  EXPECT_EQ(bus.add(0x6F, 2, d, "x"), BusStatus::Overlap);
  EXPECT_EQ(bus.add(0x72, 0, d, "x"), BusStatus::EmptyRange);
  EXPECT_EQ(bus.add(0xFFFF, 2, d, "x"), BusStatus::OutOfSpace);
  EXPECT_EQ(bus.add(0x80, 1, d, "x", 3), BusStatus::BadWidth);
  EXPECT_EQ(bus.add(0x6F, 1, d, "x"), BusStatus::Ok);
  EXPECT_EQ(bus.add(0x72, 1, d, "x"), BusStatus::Ok);
  EXPECT_EQ(bus.ranges().size(), 3u);
}

TEST_F(IoBusTest, RangeIdsStayStableAcrossOutOfOrderRegistration) {
  FakePortDevice hi, lo;
  BusRangeId hi_id = 99, lo_id = 99;
  ASSERT_EQ(bus.add(0x3F8, 8, hi, "hi", 1, &hi_id), BusStatus::Ok);
  ASSERT_EQ(bus.add(0x20, 2, lo, "lo", 1, &lo_id), BusStatus::Ok);
  (void)bus.read(0x21, 1);
  (void)bus.read(0x21, 1);
  (void)bus.read(0x3F8, 1);
  EXPECT_EQ(bus.accesses(lo_id), 2u);
  EXPECT_EQ(bus.accesses(hi_id), 1u);
}

TEST(MmioBusTest, RoutesSplitsAndLogsOncePerPage) {
  std::vector<std::string> messages;
  MmioBus bus([&](std::string_view m) { messages.emplace_back(m); });
  FakeMmioDevice d;
  ASSERT_EQ(bus.add(GuestPhys{0xFEC00000}, 0x1000, d, "ioapic"), BusStatus::Ok);
  EXPECT_EQ(bus.read(GuestPhys{0xFEC00010}, 4), 0xA0000010u);
  EXPECT_EQ(bus.read(GuestPhys{0xFEC00010}, 8), 0xA0000014A0000010u);
  bus.write(GuestPhys{0xFEC00020}, 8, 0x1122334455667788u);
  EXPECT_EQ(d.log.back(), (Access{true, 0x24, 4, 0x11223344}));
  EXPECT_EQ(bus.read(GuestPhys{0xFED00000}, 8), ~uint64_t{0});
  EXPECT_EQ(bus.read(GuestPhys{0xFED00FF0}, 2), 0xFFFFu);
  EXPECT_EQ(bus.read(GuestPhys{0xFED01000}, 1), 0xFFu);
  EXPECT_EQ(messages.size(), 2u);  // pages 0xFED00 and 0xFED01
  EXPECT_EQ(bus.unhandled_accesses(), 3u);
}

}  // namespace
}  // namespace vmm86
