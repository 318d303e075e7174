// PIIX4 (82371AB) function 3 power management: configuration registers, the PM I/O
// block (PMSTS/PMEN/PMCNTRL/PMTMR/GPSTS/GPEN) and the APM ports, with values from the
// 82371AB datasheet and the ACPI PM timer's 3.579545 MHz (ACPI 1.0 §4.7.3.3).
#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/pci/apm_control.h"
#include "devices/pci/piix4_pm.h"
#include "test_util.h"

namespace vmm86 {
namespace {

constexpr uint16_t kPmBase = 0x600;  // where SeaBIOS puts it
// 2^23 ticks of 3.579545 MHz: 2.343484437 s.
constexpr uint64_t kFirstOverflowNs = 2'343'484'438;
constexpr uint64_t kSecondOverflowNs = 4'686'968'875;

class Piix4PmTest : public ::testing::Test {
 protected:
  Piix4PmTest() : clock(VirtualClock::manual()), pm(clock, timers, sink.line(9)) {
    EXPECT_EQ(io.add(kPmBase, Piix4Pm::kPmIoSize, pm.pm_io(), "pm", 4), BusStatus::Ok);
  }
  void advance_to(uint64_t ns) {
    clock.set(ns);
    timers.run_expired(clock.now_ns());
  }
  uint16_t status() { return static_cast<uint16_t>(io.read(kPmBase + Piix4Pm::PMSTS, 2)); }

  VirtualClock clock;
  TimerQueue timers;
  test::RecordingIrqSink sink;
  Piix4Pm pm;
  IoBus io;
};

TEST_F(Piix4PmTest, Identity) {
  EXPECT_EQ(pm.config_read(0x00, 4), 0x7113'8086u);
  EXPECT_EQ(pm.config_read(0x08, 4), 0x0680'0003u);  // bridge/other, revision 03
  EXPECT_EQ(pm.config_read(0x3D, 1), 0x01u);         // INTA#
}

TEST_F(Piix4PmTest, DevactbByte5BResetsToApmcEnable) {
  EXPECT_EQ(pm.config_read(0x5B, 1), 0x02u);
  EXPECT_EQ(pm.config_read(0x58, 4), 0x0200'0000u);  // SeaBIOS tests bit 25 of the dword
}

TEST_F(Piix4PmTest, PmbaDecodesWhenPmregmiscEnables) {
  EXPECT_EQ(pm.config_read(0x40, 4), 0x1u);
  pm.config_write(0x40, 4, 0xFFFF'FFFF);
  EXPECT_EQ(pm.config_read(0x40, 4), 0x0000'FFC1u);  // bits 15:6, bit 0 = I/O
  pm.config_write(0x40, 4, kPmBase | 1);
  EXPECT_FALSE(pm.pm_io_base());
  pm.config_write(0x80, 1, 0x01);  // PMIOSE
  EXPECT_EQ(pm.pm_io_base(), kPmBase);
  EXPECT_EQ(pm.region(pm.pm_io_region()).size, 64u);
  EXPECT_FALSE(pm.io_space_enabled());  // PMBA does not depend on PCICMD
  pm.config_write(0x80, 1, 0x00);
  EXPECT_FALSE(pm.pm_io_base());
}

TEST_F(Piix4PmTest, SmbusBaseIsStored) {
  EXPECT_EQ(pm.config_read(0x90, 4), 0x1u);
  pm.config_write(0x90, 4, 0x0701);
  pm.config_write(0xD2, 1, 0x09);  // what SeaBIOS writes
  EXPECT_FALSE(pm.smbus_base());
  pm.config_write(0x04, 2, 0x0001);
  EXPECT_EQ(pm.smbus_base(), 0x700u);
}

TEST_F(Piix4PmTest, TimerRunsAt3579545HzAndWrapsAt24Bits) {
  EXPECT_EQ(io.read(kPmBase + 8, 4), 0u);
  advance_to(1'000'000'000);
  EXPECT_EQ(io.read(kPmBase + 8, 4), 3'579'545u);
  advance_to(1'000'001'000);  // 1 us = 3.58 ticks
  EXPECT_EQ(io.read(kPmBase + 8, 4), 3'579'548u);
  advance_to(5'000'000'000);  // 17897725 mod 2^24
  EXPECT_EQ(io.read(kPmBase + 8, 4), 1'120'509u);
  EXPECT_EQ(io.read(kPmBase + 11, 1), 0u);  // bits 31:24 read 0
  io.write(kPmBase + 8, 4, 0);              // read-only
  EXPECT_EQ(io.read(kPmBase + 8, 4), 1'120'509u);
}

TEST_F(Piix4PmTest, TimerOverflowStatusWhenBit23Toggles) {
  advance_to(kFirstOverflowNs - 1);
  EXPECT_EQ(status() & Piix4Pm::kTimerOverflow, 0);
  advance_to(kFirstOverflowNs);
  EXPECT_EQ(io.read(kPmBase + 8, 4), 0x80'0000u);
  EXPECT_EQ(status() & Piix4Pm::kTimerOverflow, Piix4Pm::kTimerOverflow);
  io.write(kPmBase, 2, 0);  // writing 0 clears nothing
  EXPECT_EQ(status(), Piix4Pm::kTimerOverflow);
  io.write(kPmBase, 2, Piix4Pm::kTimerOverflow);
  EXPECT_EQ(status(), 0);
  advance_to(kSecondOverflowNs - 1);  // bit 23 falls at the wrap too
  EXPECT_EQ(status(), 0);
  advance_to(kSecondOverflowNs);
  EXPECT_EQ(status(), Piix4Pm::kTimerOverflow);
}

TEST_F(Piix4PmTest, TimerOverflowRaisesSciWhenEnabled) {
  io.write(kPmBase + Piix4Pm::PMEN, 2, Piix4Pm::kTimerOverflow);
  EXPECT_TRUE(timers.size() == 0);  // no SCI_EN yet: nothing to wake for
  io.write(kPmBase + Piix4Pm::PMCNTRL, 2, Piix4Pm::kSciEnable);
  ASSERT_TRUE(timers.next_deadline());
  EXPECT_EQ(*timers.next_deadline(), kFirstOverflowNs);
  advance_to(kFirstOverflowNs);
  EXPECT_TRUE(sink.levels[9]);
  EXPECT_TRUE(pm.sci_level());
  io.write(kPmBase, 2, Piix4Pm::kTimerOverflow);  // the handler acknowledges
  EXPECT_FALSE(sink.levels[9]);
  advance_to(kSecondOverflowNs);
  EXPECT_TRUE(sink.levels[9]);
  EXPECT_EQ(sink.rising_edges[9], 2u);
  io.write(kPmBase + Piix4Pm::PMEN, 2, 0);  // disabled: SCI drops, status stays
  EXPECT_FALSE(sink.levels[9]);
  EXPECT_EQ(status(), Piix4Pm::kTimerOverflow);
  EXPECT_EQ(timers.size(), 0u);
}

TEST_F(Piix4PmTest, StatusBitsAreWriteOneToClearByByte) {
  pm.press_power_button();
  advance_to(kFirstOverflowNs);
  EXPECT_EQ(status(), Piix4Pm::kPowerButton | Piix4Pm::kTimerOverflow);
  io.write(kPmBase + 1, 1, 0x01);  // high byte: PWRBTN_STS
  EXPECT_EQ(status(), Piix4Pm::kTimerOverflow);
  io.write(kPmBase, 1, 0xFF);
  EXPECT_EQ(status(), 0);
}

TEST_F(Piix4PmTest, PowerButtonSciNeedsEnableAndSciEn) {
  pm.press_power_button();
  EXPECT_FALSE(sink.levels[9]);
  io.write(kPmBase + Piix4Pm::PMEN, 2, Piix4Pm::kPowerButton);
  EXPECT_FALSE(sink.levels[9]);  // SCI_EN clear
  pm.apm_command(Piix4Pm::kAcpiEnable);
  EXPECT_TRUE(sink.levels[9]);
  io.write(kPmBase, 2, Piix4Pm::kPowerButton);
  EXPECT_FALSE(sink.levels[9]);
}

TEST_F(Piix4PmTest, EnableRegisterKeepsOnlyImplementedBits) {
  io.write(kPmBase + Piix4Pm::PMEN, 2, 0xFFFF);
  EXPECT_EQ(io.read(kPmBase + Piix4Pm::PMEN, 2), 0x0521u);  // TMROF, GBL, PWRBTN, RTC
}

TEST_F(Piix4PmTest, SoftOffCallsPowerOff) {
  int power_offs = 0;
  pm.set_power_off([&] { ++power_offs; });
  io.write(kPmBase + Piix4Pm::PMCNTRL, 2, (1u << 10) | Piix4Pm::kSciEnable);  // SUS_TYP 1, no SUS_EN
  EXPECT_EQ(power_offs, 0);
  io.write(kPmBase + Piix4Pm::PMCNTRL, 2, (1u << 10) | Piix4Pm::kSleepEnable | 1);  // suspend to RAM: not S5
  EXPECT_EQ(power_offs, 0);
  io.write(kPmBase + Piix4Pm::PMCNTRL, 2, Piix4Pm::kSciEnable);  // SUS_TYP 000 first, as ACPI does
  io.write(kPmBase + Piix4Pm::PMCNTRL, 2, Piix4Pm::kSleepEnable | Piix4Pm::kSciEnable);
  EXPECT_EQ(power_offs, 1);
  EXPECT_EQ(io.read(kPmBase + Piix4Pm::PMCNTRL, 2), 0x0001u);  // SUS_EN reads 0
}

TEST_F(Piix4PmTest, GeneralPurposeEvents) {
  pm.apm_command(Piix4Pm::kAcpiEnable);
  pm.raise_gpe(0x0002);
  EXPECT_EQ(io.read(kPmBase + Piix4Pm::GPSTS, 2), 0x0002u);
  EXPECT_FALSE(sink.levels[9]);
  io.write(kPmBase + Piix4Pm::GPEN, 2, 0x0002);
  EXPECT_TRUE(sink.levels[9]);
  io.write(kPmBase + Piix4Pm::GPSTS, 2, 0x0002);
  EXPECT_EQ(io.read(kPmBase + Piix4Pm::GPSTS, 2), 0u);
  EXPECT_FALSE(sink.levels[9]);
}

TEST_F(Piix4PmTest, ApmPortsEnableAndDisableAcpi) {
  ApmControl apm;
  apm.set_command_handler([this](uint8_t command) { pm.apm_command(command); });
  IoBus ports;
  ASSERT_EQ(ports.add(ApmControl::kBasePort, ApmControl::kPortCount, apm, "apm"), BusStatus::Ok);
  ports.write(0xB2, 1, Piix4Pm::kAcpiEnable);
  EXPECT_EQ(pm.pm_control() & Piix4Pm::kSciEnable, Piix4Pm::kSciEnable);
  EXPECT_EQ(ports.read(0xB2, 1), Piix4Pm::kAcpiEnable);
  ports.write(0xB2, 1, Piix4Pm::kAcpiDisable);
  EXPECT_EQ(pm.pm_control() & Piix4Pm::kSciEnable, 0);
  ports.write(0xB3, 1, 0x5A);  // plain status register
  EXPECT_EQ(ports.read(0xB3, 1), 0x5Au);
  EXPECT_EQ(apm.status(), 0x5Au);
}

TEST_F(Piix4PmTest, OtherRegistersAreStorage) {
  io.write(kPmBase + 0x28, 4, 0x0000'0001);  // GLBCTL
  EXPECT_EQ(io.read(kPmBase + 0x28, 4), 1u);
  io.write(kPmBase + 0x18, 2, 0xFFFF);  // GLBSTS: nothing sets it
  EXPECT_EQ(io.read(kPmBase + 0x18, 2), 0u);
}

}  // namespace
}  // namespace vmm86
