#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/legacy/pic8259.h"

namespace vmm86 {
namespace {

// The PIC pair on a bus at its PC ports, programmed the way Linux's init_8259A() does.
class PicTest : public ::testing::Test {
 protected:
  PicTest() {
    EXPECT_EQ(bus.add(0x20, 2, pic.master_ports(), "pic1"), BusStatus::Ok);
    EXPECT_EQ(bus.add(0xA0, 2, pic.slave_ports(), "pic2"), BusStatus::Ok);
    EXPECT_EQ(bus.add(0x4D0, 2, pic.elcr_ports(), "elcr"), BusStatus::Ok);
  }

  void out(uint16_t port, uint8_t value) { bus.write(port, 1, value); }
  uint8_t in(uint16_t port) { return static_cast<uint8_t>(bus.read(port, 1)); }

  void linux_init(bool auto_eoi = false) {
    out(0x21, 0xFF);                    // mask all of 8259A-1
    out(0x20, 0x11);                    // ICW1: edge, cascade, ICW4
    out(0x21, 0x30);                    // ICW2: IRQ 0-7 -> 0x30-0x37
    out(0x21, 0x04);                    // ICW3: slave on IR2
    out(0x21, auto_eoi ? 0x03 : 0x01);  // ICW4: 8086 mode (+AEOI)
    out(0xA0, 0x11);
    out(0xA1, 0x38);  // IRQ 8-15 -> 0x38-0x3F
    out(0xA1, 0x02);  // slave id 2
    out(0xA1, 0x01);
    out(0x21, 0xFB);  // everything masked but the cascade
    out(0xA1, 0xFF);
  }
  void unmask(unsigned irq) {
    const uint16_t port = irq < 8 ? 0x21 : 0xA1;
    out(port, static_cast<uint8_t>(in(port) & ~(1u << (irq & 7))));
  }
  // What Linux's mask_and_ack_8259A() + unmask do around a handler: specific EOIs.
  void linux_eoi(unsigned irq) {
    if (irq >= 8) {
      out(0xA0, static_cast<uint8_t>(0x60 + (irq & 7)));
      out(0x20, 0x62);
    } else {
      out(0x20, static_cast<uint8_t>(0x60 + irq));
    }
  }
  uint8_t read_isr(uint16_t command_port) {
    out(command_port, 0x0B);
    const uint8_t v = in(command_port);
    out(command_port, 0x0A);
    return v;
  }

  Pic8259 pic;
  IoBus bus;
};

TEST_F(PicTest, LinuxInitSequenceProgramsVectorsAndMasks) {
  linux_init();
  EXPECT_EQ(pic.chip(Pic8259::Chip::Master).vector_base, 0x30);
  EXPECT_EQ(pic.chip(Pic8259::Chip::Slave).vector_base, 0x38);
  EXPECT_EQ(pic.chip(Pic8259::Chip::Master).icw3, 0x04);
  EXPECT_EQ(pic.chip(Pic8259::Chip::Slave).icw3, 0x02);
  EXPECT_EQ(in(0x21), 0xFB);
  EXPECT_EQ(in(0xA1), 0xFF);
  // probe_8259A: the mask reads back what was written.
  out(0x21, 0xFB);
  EXPECT_EQ(in(0x21), 0xFB);
}

TEST_F(PicTest, MasterInterruptIsDeliveredWithItsVector) {
  linux_init();
  unmask(0);
  EXPECT_FALSE(pic.interrupt_pending());
  pic.set_irq_level(0, true);
  EXPECT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(in(0x20), 0x01);  // IRR
  EXPECT_EQ(pic.acknowledge(), 0x30);
  EXPECT_FALSE(pic.interrupt_pending());
  EXPECT_EQ(in(0x20), 0x00);  // edge: IRR cleared by INTA
  EXPECT_EQ(read_isr(0x20), 0x01);
  linux_eoi(0);
  EXPECT_EQ(read_isr(0x20), 0x00);
}

TEST_F(PicTest, SlaveInterruptGoesThroughTheCascade) {
  linux_init();
  unmask(8);
  pic.set_irq_level(8, true);
  ASSERT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x38);
  EXPECT_EQ(read_isr(0x20), 0x04);
  EXPECT_EQ(read_isr(0xA0), 0x01);
  EXPECT_FALSE(pic.interrupt_pending());
  linux_eoi(8);
  EXPECT_EQ(read_isr(0x20), 0x00);
  EXPECT_EQ(read_isr(0xA0), 0x00);
}

TEST_F(PicTest, MaskedRequestWaitsInIrrUntilUnmasked) {
  linux_init();
  pic.set_irq_level(4, true);
  EXPECT_FALSE(pic.interrupt_pending());
  EXPECT_EQ(in(0x20), 0x10);
  unmask(4);
  EXPECT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x34);
}

TEST_F(PicTest, PriorityAndNesting) {
  linux_init();
  for (unsigned irq : {0u, 1u, 3u, 4u}) unmask(irq);
  pic.set_irq_level(4, true);
  pic.set_irq_level(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x33);     // IRQ 3 beats IRQ 4
  EXPECT_FALSE(pic.interrupt_pending());  // IRQ 4 is lower than the one in service
  pic.set_irq_level(1, true);
  EXPECT_TRUE(pic.interrupt_pending());  // IRQ 1 nests
  EXPECT_EQ(pic.acknowledge(), 0x31);
  EXPECT_EQ(read_isr(0x20), 0x0A);
  out(0x20, 0x20);  // non-specific EOI ends the highest: IRQ 1
  EXPECT_EQ(read_isr(0x20), 0x08);
  EXPECT_FALSE(pic.interrupt_pending());
  out(0x20, 0x20);
  EXPECT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x34);
}

TEST_F(PicTest, SpecificEoiEndsTheNamedLevel) {
  linux_init();
  unmask(1);
  unmask(5);
  pic.set_irq_level(5, true);
  EXPECT_EQ(pic.acknowledge(), 0x35);
  pic.set_irq_level(1, true);
  EXPECT_EQ(pic.acknowledge(), 0x31);
  out(0x20, 0x65);  // specific EOI for 5 while 1 is still in service
  EXPECT_EQ(read_isr(0x20), 0x02);
}

TEST_F(PicTest, EdgeTriggeredNeedsANewEdge) {
  linux_init();
  unmask(3);
  pic.set_irq_level(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x33);
  linux_eoi(3);
  EXPECT_FALSE(pic.interrupt_pending());  // still high, but no new edge
  pic.set_irq_level(3, false);
  pic.set_irq_level(3, true);
  EXPECT_TRUE(pic.interrupt_pending());
}

TEST_F(PicTest, LevelTriggeredRequestsWhileHigh) {
  linux_init();
  out(0x4D1, 0x04);  // IRQ 10 level-triggered
  EXPECT_EQ(in(0x4D1), 0x04);
  unmask(10);
  pic.set_irq_level(10, true);
  EXPECT_EQ(pic.acknowledge(), 0x3A);
  linux_eoi(10);
  EXPECT_TRUE(pic.interrupt_pending());  // the line is still asserted
  EXPECT_EQ(pic.acknowledge(), 0x3A);
  pic.set_irq_level(10, false);
  linux_eoi(10);
  EXPECT_FALSE(pic.interrupt_pending());
  EXPECT_EQ(in(0xA0), 0x00);
}

TEST_F(PicTest, IcwLtimMakesAllInputsLevelTriggered) {
  out(0x20, 0x19);  // ICW1 with LTIM
  out(0x21, 0x20);
  out(0x21, 0x04);
  out(0x21, 0x01);
  out(0x21, 0xFE);
  pic.set_irq_level(0, true);
  EXPECT_EQ(pic.acknowledge(), 0x20);
  out(0x20, 0x20);
  EXPECT_TRUE(pic.interrupt_pending());
}

TEST_F(PicTest, ElcrKeepsTimerKeyboardCascadeRtcAndFpuEdge) {
  out(0x4D0, 0xFF);
  out(0x4D1, 0xFF);
  EXPECT_EQ(in(0x4D0), 0xF8);
  EXPECT_EQ(in(0x4D1), 0xDE);
  EXPECT_EQ(bus.read(0x4D0, 2), 0xDEF8u);  // a word read splits into both ports
}

TEST_F(PicTest, RequestThatGoesAwayBeforeInterruptAcknowledgeIsSpuriousIrq7) {
  linux_init();
  out(0x4D0, 0x20);  // IRQ 5 level
  unmask(5);
  pic.set_irq_level(5, true);
  ASSERT_TRUE(pic.interrupt_pending());
  pic.set_irq_level(5, false);  // the device withdrew it
  EXPECT_EQ(pic.acknowledge(), 0x37);
  EXPECT_EQ(read_isr(0x20), 0x00);  // a spurious IRQ 7 is not in service
  EXPECT_EQ(pic.stats().spurious, 1u);
}

TEST_F(PicTest, WithdrawnSlaveRequestAlsoWithdrawsTheCascadeRequest) {
  linux_init();
  unmask(9);
  out(0x4D1, 0x02);  // IRQ 9 level
  pic.set_irq_level(9, true);
  ASSERT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(in(0x20), 0x04);  // master IRR shows the cascade
  pic.set_irq_level(9, false);
  EXPECT_EQ(in(0x20), 0x00);  // the slave's INT is a level at master IR2
  EXPECT_FALSE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x37);
  EXPECT_EQ(read_isr(0x20), 0x00);
  EXPECT_EQ(pic.stats().spurious, 1u);
}

TEST_F(PicTest, SlaveRequestsQueuedBehindOneInServiceAreNotLost) {
  linux_init();
  unmask(8);
  unmask(12);
  pic.set_irq_level(12, true);
  pic.set_irq_level(8, true);
  EXPECT_EQ(pic.acknowledge(), 0x38);
  EXPECT_FALSE(pic.interrupt_pending());
  linux_eoi(8);
  ASSERT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x3C);
}

TEST_F(PicTest, AutoEoiLeavesNothingInService) {
  linux_init(true);
  unmask(1);
  pic.set_irq_level(1, true);
  EXPECT_EQ(pic.acknowledge(), 0x31);
  EXPECT_EQ(read_isr(0x20), 0x00);
  pic.set_irq_level(1, false);
  pic.set_irq_level(1, true);
  EXPECT_TRUE(pic.interrupt_pending());  // no EOI needed
}

TEST_F(PicTest, PollModeActsAsAcknowledge) {
  linux_init();
  unmask(6);
  pic.set_irq_level(6, true);
  out(0x20, 0x0C);  // OCW3 poll
  EXPECT_EQ(in(0x20), 0x86);
  EXPECT_EQ(read_isr(0x20), 0x40);
  out(0x20, 0x0C);
  EXPECT_EQ(in(0x20), 0x00);  // nothing more
}

TEST_F(PicTest, RotateOnNonSpecificEoiMakesTheServedLevelLowest) {
  linux_init();
  for (unsigned irq : {1u, 3u}) unmask(irq);
  pic.set_irq_level(1, true);
  EXPECT_EQ(pic.acknowledge(), 0x31);
  out(0x20, 0xA0);  // rotate on non-specific EOI: IRQ 1 becomes lowest, 2 highest
  pic.set_irq_level(1, false);
  pic.set_irq_level(1, true);
  pic.set_irq_level(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x33);  // 3 now outranks 1
  EXPECT_EQ(pic.chip(Pic8259::Chip::Master).priority_base, 2);
}

TEST_F(PicTest, SpecialMaskModeLetsLowerLevelsIn) {
  linux_init();
  for (unsigned irq : {1u, 5u}) unmask(irq);
  pic.set_irq_level(1, true);
  EXPECT_EQ(pic.acknowledge(), 0x31);
  pic.set_irq_level(5, true);
  EXPECT_FALSE(pic.interrupt_pending());
  out(0x21, static_cast<uint8_t>(in(0x21) | 0x02));  // the handler masks its own level
  out(0x20, 0x68);                                   // OCW3: set special mask mode
  EXPECT_TRUE(pic.interrupt_pending());
  EXPECT_EQ(pic.acknowledge(), 0x35);
}

TEST_F(PicTest, Icw1ResetsMaskAndInServiceButKeepsLevelRequests) {
  linux_init();
  unmask(3);
  pic.set_irq_level(3, true);
  EXPECT_EQ(pic.acknowledge(), 0x33);
  out(0x20, 0x11);
  EXPECT_EQ(read_isr(0x20), 0x00);
  out(0x21, 0x40);
  out(0x21, 0x04);
  out(0x21, 0x01);
  EXPECT_EQ(in(0x21), 0x00);
  EXPECT_FALSE(pic.interrupt_pending());  // edge detection restarted: 3 is still high
}

TEST_F(PicTest, OutputListenerFollowsInt) {
  linux_init();
  std::vector<bool> heard;
  pic.set_output_listener([&](bool level) { heard.push_back(level); });
  unmask(0);
  pic.set_irq_level(0, true);
  (void)pic.acknowledge();
  EXPECT_EQ(heard, (std::vector<bool>{true, false}));
  EXPECT_EQ(pic.stats().raised[0], 1u);
  EXPECT_EQ(pic.stats().acknowledged, 1u);
}

}  // namespace
}  // namespace vmm86
