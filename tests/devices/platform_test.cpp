#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "devices/pc_platform.h"

namespace vmm86 {
namespace {

class PlatformTest : public ::testing::Test {
 protected:
  explicit PlatformTest(bool com2 = false)
      : clock(VirtualClock::manual()),
        pc(clock, PcPlatformConfig{.ram_below_4g = 64ull << 20,
                                   .com2 = com2,
                                   .rtc_start_unix_ns = int64_t{946'684'799} * 1'000'000'000,
                                   .log = [this](std::string_view m) { log.emplace_back(m); }}) {}

  void out(uint16_t port, uint8_t value) { pc.io_bus().write(port, 1, value); }
  uint8_t in(uint16_t port) { return static_cast<uint8_t>(pc.io_bus().read(port, 1)); }
  void linux_pic_init() {
    for (auto [port, value] : std::vector<std::pair<uint16_t, uint8_t>>{{0x21, 0xFF},
                                                                        {0x20, 0x11},
                                                                        {0x21, 0x30},
                                                                        {0x21, 0x04},
                                                                        {0x21, 0x01},
                                                                        {0xA0, 0x11},
                                                                        {0xA1, 0x38},
                                                                        {0xA1, 0x02},
                                                                        {0xA1, 0x01},
                                                                        {0x21, 0xFB},
                                                                        {0xA1, 0xFF}}) {
      out(port, value);
    }
  }

  std::vector<std::string> log;
  VirtualClock clock;
  PcPlatform pc;
};

TEST_F(PlatformTest, UnhandledPortsReadAllOnesAndLogOnce) {
  EXPECT_EQ(pc.io_bus().read(0x1234, 1), 0xFFu);
  EXPECT_EQ(pc.io_bus().read(0x1234, 2), 0xFFFFu);
  EXPECT_EQ(pc.io_bus().read(0x1234, 4), 0xFFFFFFFFu);
  pc.io_bus().write(0x1234, 4, 0);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("0x1234"), std::string::npos);
  EXPECT_EQ(pc.stats().unhandled_port_accesses, 4u);
  EXPECT_EQ(pc.io_bus().read(0x2F8, 1), 0xFFu);  // no COM2 unless configured
}

TEST_F(PlatformTest, TimerTickReachesTheCpuAsVector0x30) {
  linux_pic_init();
  out(0x21, 0xFA);  // unmask IRQ 0
  out(0x43, 0x34);
  out(0x40, 4773 & 0xFF);  // HZ=250
  out(0x40, 4773 >> 8);
  // The control word's OUT rising edge already requested IRQ 0 once, as on hardware.
  if (pc.interrupt_pending()) {
    EXPECT_EQ(pc.acknowledge_interrupt(), 0x30);
    out(0x20, 0x60);
  }
  ASSERT_TRUE(pc.next_timer_deadline().has_value());
  clock.set(*pc.next_timer_deadline());
  EXPECT_EQ(pc.run_timers(), 1u);
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x30);
  EXPECT_FALSE(pc.interrupt_pending());
  out(0x20, 0x60);
  const PcPlatformStats s = pc.stats();
  EXPECT_GE(s.irq_raised[0], 1u);
  EXPECT_GE(s.interrupts_acknowledged, 1u);
  EXPECT_EQ(s.timer_callbacks, 1u);
  EXPECT_GT(s.port_accesses.pic, 10u);
  EXPECT_EQ(s.port_accesses.pit, 3u);
}

TEST_F(PlatformTest, SerialConsoleBothWays) {
  std::string out_text;
  pc.set_serial_output([&](uint8_t b) { out_text.push_back(static_cast<char>(b)); });
  for (char c : std::string("ok\n")) out(0x3F8, static_cast<uint8_t>(c));
  EXPECT_EQ(out_text, "ok\n");
  const uint8_t input[] = {'l', 's'};
  EXPECT_EQ(pc.serial_input_space(), 1u);  // FIFOs off: one holding register
  EXPECT_EQ(pc.push_serial_input(input), 1u);
  linux_pic_init();
  out(0x21, 0xEB);   // unmask IRQ 4
  out(0x3FC, 0x0B);  // DTR RTS OUT2
  out(0x3F9, 0x01);  // receive interrupt
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x34);
  EXPECT_EQ(in(0x3F8), 'l');
  const PcPlatformStats s = pc.stats();
  EXPECT_EQ(s.serial_tx_bytes, 3u);
  EXPECT_EQ(s.serial_rx_bytes, 1u);
  EXPECT_GT(s.port_accesses.com1, 0u);
}

TEST_F(PlatformTest, DebugPortsAndKeyboardReset) {
  std::string debug;
  pc.set_debug_console_output([&](uint8_t b) { debug.push_back(static_cast<char>(b)); });
  out(0xE9, 'h');
  out(0xE9, 'i');
  EXPECT_EQ(debug, "hi");
  EXPECT_EQ(in(0xE9), 0xE9);
  out(0x80, 0x42);
  EXPECT_EQ(in(0x80), 0x42);
  EXPECT_EQ(pc.post_port().last_code(), 0x42);
  int resets = 0;
  pc.set_reset_request([&] { ++resets; });
  out(0x64, 0xFE);
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(pc.stats().reset_requests, 1u);
  EXPECT_TRUE(log.empty());
}

TEST_F(PlatformTest, RtcAndCmosThroughThePorts) {
  out(0x70, 0x09);
  EXPECT_EQ(in(0x71), 0x99);  // 1999-12-31 23:59:59
  out(0x70, 0x32);
  EXPECT_EQ(in(0x71), 0x19);
  out(0x70, 0x34);
  const uint8_t low = in(0x71);
  out(0x70, 0x35);
  EXPECT_EQ(low | in(0x71) << 8, 48 * 16);  // (64 - 16) MiB in 64 KiB units
  clock.advance(1'000'000'000);
  out(0x70, 0x09);
  EXPECT_EQ(in(0x71), 0x00);
  out(0x70, 0x32);
  EXPECT_EQ(in(0x71), 0x20);
}

TEST_F(PlatformTest, StatsNameEveryCounter) {
  std::map<std::string, uint64_t> all;
  pc.stats().for_each([&](std::string_view name, uint64_t value) { all.emplace(name, value); });
  for (const char* name : {"port_accesses.pic", "port_accesses.dma", "port_accesses.port92", "port_accesses.debugcon",
                           "unhandled_port_accesses", "interrupts_acknowledged", "irq_raised.0", "irq_raised.15"}) {
    EXPECT_EQ(all.count(name), 1u) << name;
  }
  EXPECT_EQ(all.count("apic.eois"), 1u);
  EXPECT_EQ(all.count("ioapic.messages"), 1u);
  EXPECT_EQ(all.size(), 10u + 7u + 16u + 14u + 4u);
}

// The platform with its APICs, driven as Linux drives them.
class ApicPlatformTest : public ::testing::Test {
 protected:
  ApicPlatformTest() : pc(clock, config()) {}
  static PcPlatformConfig config() {
    PcPlatformConfig c;
    c.apic = true;
    c.log = [](std::string_view) {};
    return c;
  }
  void out(uint16_t port, uint8_t value) { pc.io_bus().write(port, 1, value); }
  void apic_write(uint32_t offset, uint32_t value) { pc.mmio_write(GuestPhys{0xFEE00000 + offset}, 4, value); }
  uint32_t apic_read(uint32_t offset) { return pc.mmio_read(GuestPhys{0xFEE00000 + offset}, 4); }
  void ioapic_write(uint8_t index, uint32_t value) {
    pc.mmio_write(GuestPhys{0xFEC00000}, 4, index);
    pc.mmio_write(GuestPhys{0xFEC00010}, 4, value);
  }
  void pit_tick_every_us(uint16_t count) {
    out(0x43, 0x34);
    out(0x40, static_cast<uint8_t>(count));
    out(0x40, static_cast<uint8_t>(count >> 8));
  }
  void linux_pic_init() {
    for (auto [port, value] : std::vector<std::pair<uint16_t, uint8_t>>{
             {0x20, 0x11}, {0x21, 0x30}, {0x21, 0x04}, {0x21, 0x01}, {0x21, 0xFA}}) {
      out(port, value);
    }
  }
  /// The PIT at 1 kHz, then a millisecond of its ticks.
  void pit_runs_1ms() {
    if (!pit_started) pit_tick_every_us(1193);
    pit_started = true;
    clock.advance(1'000'000);
    pc.run_timers();
  }

  bool pit_started = false;
  VirtualClock clock = VirtualClock::manual();
  PcPlatform pc;
};

TEST_F(ApicPlatformTest, ThePicReachesTheCpuThroughTheVirtualWire) {
  linux_pic_init();
  pit_runs_1ms();
  // The APIC is software-disabled after reset: the 8259 goes straight to the CPU.
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x30);
  out(0x20, 0x20);
  apic_write(0xF0, 0x1FF);  // software enable: LINT0 is still ExtINT (reset state)
  pit_runs_1ms();
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x30);
  out(0x20, 0x20);
  apic_write(0x350, 0x10700);  // LINT0 masked: the 8259 is cut off
  pit_runs_1ms();
  EXPECT_FALSE(pc.interrupt_pending());
  EXPECT_TRUE(pc.pic().interrupt_pending());
}

TEST_F(ApicPlatformTest, IsaIrq0ReachesIoApicPin2) {
  linux_pic_init();
  out(0x21, 0xFF);  // everything masked at the 8259
  apic_write(0xF0, 0x1FF);
  apic_write(0x350, 0x10700);
  ioapic_write(0x10 + 2 * 2, 0x31);  // pin 2: vector 0x31, edge, physical APIC 0
  ioapic_write(0x10 + 2 * 0, 0x3F);  // pin 0 is not wired
  pit_runs_1ms();
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x31);
  apic_write(0xB0, 0);
  EXPECT_FALSE(pc.interrupt_pending());
  // Every PIT edge reached both controllers (the IRR holds one of the 8259's edges).
  EXPECT_GE(pc.stats().irq_raised[0], 1u);
  EXPECT_EQ(pc.stats().ioapic.messages, pc.stats().irq_raised[0]);
  EXPECT_EQ(pc.stats().apic.ioapic_interrupts, pc.stats().irq_raised[0]);
  EXPECT_EQ(pc.stats().apic.eois, 1u);
}

TEST_F(ApicPlatformTest, ApicPageFollowsTheBaseAndResetRestoresIt) {
  EXPECT_EQ(apic_read(0x30), 0x00050014u);
  ASSERT_TRUE(pc.local_apic()->write_base_msr(0xD0000800));
  EXPECT_EQ(apic_read(0x30), 0xFFFFFFFFu);  // nothing behind the old page now
  EXPECT_EQ(pc.mmio_read(GuestPhys{0xD0000030}, 4), 0x00050014u);
  ASSERT_TRUE(pc.local_apic()->write_base_msr(0xD0000000));  // globally disabled
  EXPECT_EQ(pc.mmio_read(GuestPhys{0xD0000030}, 4), 0xFFFFFFFFu);
  pc.reset();
  EXPECT_EQ(apic_read(0x30), 0x00050014u);
  EXPECT_EQ(pc.local_apic()->base_msr(), 0xFEE00900u);
  pc.mmio_write(GuestPhys{0xFEC00000}, 4, 0x01);
  EXPECT_EQ(pc.mmio_read(GuestPhys{0xFEC00010}, 4), 0x00170020u);
}

TEST(PlatformHostClockTest, PitTicksInRealTime) {
  VirtualClock clock = VirtualClock::host();
  PcPlatformConfig config;
  config.log = [](std::string_view) {};
  PcPlatform pc(clock, std::move(config));
  auto out = [&](uint16_t port, uint8_t value) { pc.io_bus().write(port, 1, value); };
  out(0x43, 0x34);
  out(0x40, 1193 & 0xFF);  // 1 kHz
  out(0x40, 1193 >> 8);
  const uint64_t before = pc.stats().irq_raised[0];
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(pc.run_timers(), 1u);
  EXPECT_EQ(pc.stats().irq_raised[0], before + 1);  // coalesced: one edge per run
  ASSERT_TRUE(pc.next_timer_deadline().has_value());
  EXPECT_GT(*pc.next_timer_deadline(), clock.now_ns() - 1'000'000);
}

class PlatformWithCom2Test : public PlatformTest {
 protected:
  PlatformWithCom2Test() : PlatformTest(true) {}
};

TEST_F(PlatformWithCom2Test, Com2IsOnIrq3) {
  ASSERT_NE(pc.uart(SerialPort::Com2), nullptr);
  out(0x2FF, 0x77);
  EXPECT_EQ(in(0x2FF), 0x77);
  linux_pic_init();
  out(0x21, 0xF3);  // unmask IRQ 3 (and keep 2)
  out(0x2FC, 0x08);
  out(0x2F9, 0x02);
  ASSERT_TRUE(pc.interrupt_pending());
  EXPECT_EQ(pc.acknowledge_interrupt(), 0x33);
  EXPECT_GT(pc.stats().port_accesses.com2, 0u);
}

}  // namespace
}  // namespace vmm86

namespace vmm86 {
namespace {

// A guest reboot: every legacy device back to its reset state, CMOS RAM kept.
TEST_F(PlatformTest, ResetReturnsDevicesToPowerOnKeepingCmosRam) {
  linux_pic_init();
  out(0x21, 0xFA);  // unmask IRQ 0
  out(0x43, 0x34);  // PIT channel 0, rate generator, 1 ms
  out(0x40, 0xA9);
  out(0x40, 0x04);
  out(0x3F9, 0x0F);  // COM1: every interrupt enabled
  out(0x70, 0x0B);
  out(0x71, 0x42);  // RTC: periodic interrupt on, 24-hour
  out(0x70, 0x40);
  out(0x71, 0x5A);  // a CMOS RAM byte
  out(0x64, 0x60);
  out(0x60, 0x00);  // i8042 command byte: interrupts off, translation off
  clock.advance(2'000'000);
  pc.run_timers();
  ASSERT_TRUE(pc.interrupt_pending());

  pc.reset();
  EXPECT_FALSE(pc.interrupt_pending());
  EXPECT_EQ(in(0x21), 0x00);   // IMR of an uninitialized PIC
  EXPECT_EQ(in(0x3F9), 0x00);  // IER
  out(0x70, 0x0B);
  EXPECT_EQ(in(0x71), 0x02);  // PIE cleared, 24-hour kept
  out(0x70, 0x40);
  EXPECT_EQ(in(0x71), 0x5A);  // CMOS RAM survives
  clock.advance(10'000'000);
  pc.run_timers();
  EXPECT_FALSE(pc.interrupt_pending());  // the PIT no longer counts
  out(0x64, 0x20);
  EXPECT_EQ(in(0x60), 0x65);  // the power-on command byte (kbd int, system flag, aux off, translate)
}

}  // namespace
}  // namespace vmm86

namespace vmm86 {
namespace {

// The CPU's A20 line is port 0x92's bit 1 OR the i8042's A20 output; port 0x92's bit 0
// resets the machine on a rising edge.
TEST_F(PlatformTest, A20IsPort92OrTheI8042AndPort92ResetsTheMachine) {
  std::vector<bool> a20;
  int resets = 0;
  pc.set_a20_listener([&](bool on) { a20.push_back(on); });
  pc.set_reset_request([&] { ++resets; });
  EXPECT_TRUE(pc.a20_enabled());  // the i8042's output port powers on with A20 set
  out(0x64, 0xD1);
  out(0x60, 0xDD);  // i8042 output port: A20 off
  EXPECT_FALSE(pc.a20_enabled());
  out(0x92, 0x02);  // fast A20 on
  EXPECT_TRUE(pc.a20_enabled());
  EXPECT_EQ(in(0x92), 0x02);
  out(0x64, 0xD1);
  out(0x60, 0xDF);  // the i8042's A20 back on: the line stays on, no event
  out(0x92, 0x00);  // still on through the i8042
  EXPECT_EQ(a20, (std::vector<bool>{false, true}));
  out(0x92, 0x01);
  out(0x92, 0x01);  // no edge, no second reset
  EXPECT_EQ(resets, 1);
}

// Two CPUs: each has its own APIC at the same address, IPIs travel between them, the IOAPIC
// reaches the one it names, and only the BSP is the 8259's virtual wire.
class SmpPlatformTest : public ::testing::Test {
 protected:
  SmpPlatformTest() : pc(clock, config()) {
    for (unsigned cpu = 0; cpu < 2; ++cpu) {
      pc.local_apic(cpu)->set_wake_listener([this, cpu] { ++wakes[cpu]; });
      ApicCpuSignals signals;
      signals.init = [this, cpu] { ++inits[cpu]; };
      signals.startup = [this, cpu](uint8_t vector) { startups[cpu].push_back(vector); };
      pc.local_apic(cpu)->set_cpu_signals(std::move(signals));
    }
  }
  static PcPlatformConfig config() {
    PcPlatformConfig c;
    c.apic = true;
    c.cpu_count = 2;
    c.log = [](std::string_view) {};
    return c;
  }
  void apic_write(unsigned cpu, uint32_t offset, uint32_t value) {
    pc.mmio_write(GuestPhys{0xFEE00000 + offset}, 4, value, cpu);
  }
  uint32_t apic_read(unsigned cpu, uint32_t offset) { return pc.mmio_read(GuestPhys{0xFEE00000 + offset}, 4, cpu); }
  void ipi(unsigned from, uint8_t destination, uint32_t low) {
    apic_write(from, 0x310, uint32_t{destination} << 24);
    apic_write(from, 0x300, low);
  }

  VirtualClock clock = VirtualClock::manual();
  PcPlatform pc;
  std::array<int, 2> wakes{}, inits{};
  std::array<std::vector<uint8_t>, 2> startups;
};

TEST_F(SmpPlatformTest, EachCpuSeesItsOwnApic) {
  EXPECT_EQ(apic_read(0, 0x20) >> 24, 0u);
  EXPECT_EQ(apic_read(1, 0x20) >> 24, 1u);
  EXPECT_NE(pc.local_apic(0)->base_msr() & LocalApic::kBaseBsp, 0u);
  EXPECT_EQ(pc.local_apic(1)->base_msr() & LocalApic::kBaseBsp, 0u);  // an AP
  EXPECT_EQ(pc.local_apic(2), nullptr);
}

TEST_F(SmpPlatformTest, InitAndStartUpReachTheNamedCpuOnly) {
  ipi(0, 1, 0x4500);  // INIT, level assert, to APIC 1
  ipi(0, 1, 0x4670);  // start-up, vector 0x70
  EXPECT_EQ(inits, (std::array<int, 2>{0, 1}));
  EXPECT_EQ(startups[1], std::vector<uint8_t>{0x70});
  EXPECT_TRUE(startups[0].empty());
  EXPECT_EQ(wakes[1], 2);
}

TEST_F(SmpPlatformTest, FixedIpisByDestinationAndShorthand) {
  apic_write(0, 0xF0, 0x1FF);
  apic_write(1, 0xF0, 0x1FF);
  ipi(0, 1, 0x40);  // fixed, vector 0x40, physical APIC 1
  EXPECT_FALSE(pc.interrupt_pending(0));
  ASSERT_TRUE(pc.interrupt_pending(1));
  EXPECT_EQ(wakes[1], 1);
  EXPECT_EQ(pc.acknowledge_interrupt(1), 0x40);
  apic_write(1, 0xB0, 0);
  ipi(1, 0, 0xC0041);  // all excluding self, from CPU 1
  EXPECT_TRUE(pc.interrupt_pending(0));
  EXPECT_FALSE(pc.interrupt_pending(1));
  EXPECT_EQ(pc.acknowledge_interrupt(0), 0x41);
  ipi(0, 0, 0x80042);  // all including self
  EXPECT_TRUE(pc.local_apic(0)->irr_bit(0x42));
  EXPECT_TRUE(pc.local_apic(1)->irr_bit(0x42));
}

TEST_F(SmpPlatformTest, LowestPriorityPicksTheLowestTpr) {
  for (unsigned cpu = 0; cpu < 2; ++cpu) {
    apic_write(cpu, 0xF0, 0x1FF);
    apic_write(cpu, 0xD0, (1u << cpu) << 24);  // flat logical IDs 1 and 2
  }
  apic_write(0, 0x80, 0x20);           // CPU 0 busier
  ipi(0, 0x03, 0x100 | 0x800 | 0x50);  // lowest priority, logical, both named
  EXPECT_FALSE(pc.local_apic(0)->irr_bit(0x50));
  EXPECT_TRUE(pc.local_apic(1)->irr_bit(0x50));
}

TEST_F(SmpPlatformTest, ThePicReachesOnlyTheBsp) {
  for (auto [port, value] : std::vector<std::pair<uint16_t, uint8_t>>{
           {0x20, 0x11}, {0x21, 0x30}, {0x21, 0x04}, {0x21, 0x01}, {0x21, 0xFE}}) {
    pc.io_bus().write(port, 1, value);
  }
  pc.isa_irqs().set_irq_level(0, true);
  EXPECT_TRUE(pc.interrupt_pending(0));
  EXPECT_FALSE(pc.interrupt_pending(1));
}

}  // namespace
}  // namespace vmm86
