#include "devices/apic/io_apic.h"

#include <gtest/gtest.h>

#include <vector>

#include "devices/apic/local_apic.h"

namespace vmm86 {
namespace {

class RecordingApics final : public ApicMessageSink {
 public:
  void deliver(const ApicMessage& message) override { messages.push_back(message); }
  std::vector<ApicMessage> messages;
};

class IoApicTest : public ::testing::Test {
 protected:
  uint32_t reg(uint8_t index) {
    ioapic.write(IoApic::kRegisterSelect, 4, index);
    return ioapic.read(IoApic::kWindow, 4);
  }
  void set_reg(uint8_t index, uint32_t value) {
    ioapic.write(IoApic::kRegisterSelect, 4, index);
    ioapic.write(IoApic::kWindow, 4, value);
  }
  /// Redirection entry of `pin`, high dword first (as Linux writes it: mask last).
  void route(unsigned pin, uint64_t entry) {
    set_reg(static_cast<uint8_t>(0x11 + 2 * pin), static_cast<uint32_t>(entry >> 32));
    set_reg(static_cast<uint8_t>(0x10 + 2 * pin), static_cast<uint32_t>(entry));
  }
  uint64_t entry(unsigned pin) { return ioapic.redirection(pin); }

  RecordingApics apics;
  IoApic ioapic{apics};
};

TEST_F(IoApicTest, IdentificationRegisters) {
  EXPECT_EQ(reg(0x01), 0x00170020u);  // version 0x20, 24 entries
  EXPECT_EQ(reg(0x00), 0u);
  set_reg(0x00, 0xFFFFFFFF);
  EXPECT_EQ(reg(0x00), 0x0F000000u);  // 4-bit ID
  EXPECT_EQ(reg(0x02), 0x0F000000u);  // arbitration ID follows it
  set_reg(0x01, 0);
  EXPECT_EQ(reg(0x01), 0x00170020u);
  for (unsigned pin = 0; pin < IoApic::kPins; ++pin) {
    EXPECT_EQ(reg(static_cast<uint8_t>(0x10 + 2 * pin)), IoApic::kMasked) << pin;
    EXPECT_EQ(reg(static_cast<uint8_t>(0x11 + 2 * pin)), 0u) << pin;
  }
  ioapic.write(IoApic::kRegisterSelect, 4, 0x3F);
  EXPECT_EQ(ioapic.read(IoApic::kRegisterSelect, 4), 0x3Fu);
}

TEST_F(IoApicTest, EntryWritableBits) {
  route(5, ~uint64_t{0});
  EXPECT_EQ(entry(5), 0xFF00'0000'0001'AFFFull);  // delivery status and remote IRR read-only
  route(5, 0);
  EXPECT_EQ(entry(5), 0u);
}

TEST_F(IoApicTest, EdgePinSendsOneMessagePerRisingEdge) {
  route(4, 0x0300'0000'0000'0834ull);  // vector 0x34, logical, destination 3, edge
  ioapic.set_irq_level(4, true);
  ioapic.set_irq_level(4, true);
  ASSERT_EQ(apics.messages.size(), 1u);
  const ApicMessage& m = apics.messages[0];
  EXPECT_EQ(m.vector, 0x34);
  EXPECT_TRUE(m.logical);
  EXPECT_EQ(m.destination, 3);
  EXPECT_FALSE(m.level_triggered);
  EXPECT_EQ(m.mode, ApicDeliveryMode::Fixed);
  ioapic.set_irq_level(4, false);
  ioapic.set_irq_level(4, true);
  EXPECT_EQ(apics.messages.size(), 2u);
  // Masked: the edge is lost, unmasking later sends nothing.
  ioapic.set_irq_level(4, false);
  route(4, IoApic::kMasked | 0x34);
  ioapic.set_irq_level(4, true);
  route(4, 0x34);
  EXPECT_EQ(apics.messages.size(), 2u);
  EXPECT_EQ(ioapic.stats().masked_edges, 1u);
}

TEST_F(IoApicTest, LevelPinHoldsRemoteIrrUntilEoi) {
  route(9, IoApic::kLevelTriggered | 0x39);
  ioapic.set_irq_level(9, true);
  ASSERT_EQ(apics.messages.size(), 1u);
  EXPECT_TRUE(apics.messages[0].level_triggered);
  EXPECT_TRUE(entry(9) & IoApic::kRemoteIrr);
  ioapic.end_of_interrupt(0x38);  // another vector: nothing
  EXPECT_TRUE(entry(9) & IoApic::kRemoteIrr);
  ioapic.end_of_interrupt(0x39);  // still asserted: sent again
  EXPECT_EQ(apics.messages.size(), 2u);
  EXPECT_TRUE(entry(9) & IoApic::kRemoteIrr);
  ioapic.set_irq_level(9, false);
  ioapic.end_of_interrupt(0x39);
  EXPECT_EQ(apics.messages.size(), 2u);
  EXPECT_FALSE(entry(9) & IoApic::kRemoteIrr);
  EXPECT_EQ(ioapic.stats().remote_irr_cleared, 2u);
  // The EOI register (version 0x20) does the same.
  ioapic.set_irq_level(9, true);
  EXPECT_EQ(apics.messages.size(), 3u);
  ioapic.write(IoApic::kEoi, 4, 0x39);
  EXPECT_EQ(apics.messages.size(), 4u);
}

TEST_F(IoApicTest, UnmaskingAnAssertedLevelPinSends) {
  route(10, IoApic::kMasked | IoApic::kLevelTriggered | 0x3A);
  ioapic.set_irq_level(10, true);
  EXPECT_TRUE(apics.messages.empty());
  route(10, IoApic::kLevelTriggered | 0x3A);
  EXPECT_EQ(apics.messages.size(), 1u);
}

TEST_F(IoApicTest, RewritingAsEdgeClearsRemoteIrr) {
  // Linux's retirement of a stuck level interrupt on IOAPICs without an EOI register.
  route(11, IoApic::kLevelTriggered | 0x3B);
  ioapic.set_irq_level(11, true);
  ioapic.set_irq_level(11, false);
  ASSERT_TRUE(entry(11) & IoApic::kRemoteIrr);
  route(11, IoApic::kMasked | 0x3B);
  EXPECT_FALSE(entry(11) & IoApic::kRemoteIrr);
  route(11, IoApic::kLevelTriggered | 0x3B);
  ioapic.set_irq_level(11, true);
  EXPECT_EQ(apics.messages.size(), 2u);
}

TEST_F(IoApicTest, HostileAccessesAreHarmless) {
  for (uint32_t index = 0; index < 0x100; ++index) {
    set_reg(static_cast<uint8_t>(index), 0xFFFFFFFF);
    (void)reg(static_cast<uint8_t>(index));
  }
  ioapic.write(IoApic::kWindow, 1, 0xFF);  // narrow window accesses are dropped
  ioapic.write(0xFFF, 4, 0xFFFFFFFF);
  ioapic.write(0x123456789ull, 4, 1);
  EXPECT_EQ(ioapic.read(0x20, 4), 0u);
  ioapic.set_irq_level(24, true);
  ioapic.set_irq_level(~0u, true);
  ioapic.end_of_interrupt(0xFF);
  // Every entry was set to all-ones (masked): nothing was sent.
  EXPECT_TRUE(apics.messages.empty());
}

TEST_F(IoApicTest, ResetMasksEverythingAndKeepsPinLevels) {
  route(3, IoApic::kLevelTriggered | 0x33);
  ioapic.set_irq_level(3, true);
  ioapic.reset();
  EXPECT_EQ(entry(3), IoApic::kMasked);
  route(3, IoApic::kLevelTriggered | 0x33);  // the pin is still asserted
  EXPECT_EQ(apics.messages.size(), 2u);
}

// The IOAPIC and a local APIC together: a level interrupt goes through the IRR and ISR,
// and the EOI's broadcast retires the IOAPIC's remote IRR.
TEST(IoApicWithLocalApic, LevelInterruptRoundTrip) {
  VirtualClock clock = VirtualClock::manual();
  TimerQueue timers;
  LocalApic lapic(clock, timers, 0);
  IoApic ioapic(lapic);
  lapic.set_eoi_listener([&](uint8_t v) { ioapic.end_of_interrupt(v); });
  lapic.write(0xF0, 4, 0x1FF);
  ioapic.write(IoApic::kRegisterSelect, 4, 0x10 + 2 * 9);
  ioapic.write(IoApic::kWindow, 4, IoApic::kLevelTriggered | 0x49);  // physical, APIC 0
  ioapic.set_irq_level(9, true);
  ASSERT_TRUE(lapic.interrupt_pending());
  EXPECT_EQ(lapic.acknowledge(), 0x49);
  EXPECT_TRUE(ioapic.redirection(9) & IoApic::kRemoteIrr);
  ioapic.set_irq_level(9, false);  // the handler quietened the device
  lapic.write(0xB0, 4, 0);
  EXPECT_FALSE(ioapic.redirection(9) & IoApic::kRemoteIrr);
  EXPECT_FALSE(lapic.interrupt_pending());
  // An entry naming another APIC ID is not taken here.
  ioapic.write(IoApic::kWindow, 4, 0x4A);
  ioapic.write(IoApic::kRegisterSelect, 4, 0x11 + 2 * 9);
  ioapic.write(IoApic::kWindow, 4, 0x05000000);
  ioapic.set_irq_level(9, true);
  EXPECT_FALSE(lapic.interrupt_pending());
  EXPECT_EQ(lapic.stats().dropped_messages, 1u);
}

}  // namespace
}  // namespace vmm86
