// The ACPI PM hardware of a direct kernel boot at the ports the FADT names (0x600 PM1a
// event, 0x604 PM1a control, 0x608 PM timer, 0xAFE0 GPE0, 0xB2 SMI_CMD), driven the way
// Linux's ACPI core drives it: enable ACPI mode through SMI_CMD, read the timer, enter S5.
// Also: the BIOS chipset with and without ACPI (QEMU's acpi=off has no PIIX4 PM function),
// and its PM block decoded at 0x600 once SeaBIOS moves PMBA there.
#include "devices/fixed_acpi_pm.h"

#include <gtest/gtest.h>

#include "devices/pc_chipset.h"

namespace vmm86 {
namespace {

PcPlatformConfig small_pc() {
  return PcPlatformConfig{.ram_below_4g = 64ull << 20, .com2 = false, .rtc_start_unix_ns = 0, .log = {}};
}

class FixedAcpiPmTest : public ::testing::Test {
 protected:
  FixedAcpiPmTest() : clock(VirtualClock::manual()), pc(clock, small_pc()), pm(pc, clock) {}

  VirtualClock clock;
  PcPlatform pc;
  FixedAcpiPm pm;
};

TEST_F(FixedAcpiPmTest, AcpiEnableThroughSmiCommandSetsSciEn) {
  EXPECT_EQ(pc.io_bus().read(0x604, 2) & Piix4Pm::kSciEnable, 0u);
  pc.io_bus().write(0xB2, 1, Piix4Pm::kAcpiEnable);
  EXPECT_EQ(pc.io_bus().read(0x604, 2) & Piix4Pm::kSciEnable, Piix4Pm::kSciEnable);
  pc.io_bus().write(0xB2, 1, Piix4Pm::kAcpiDisable);
  EXPECT_EQ(pc.io_bus().read(0x604, 2) & Piix4Pm::kSciEnable, 0u);
}

TEST_F(FixedAcpiPmTest, PmTimerAt0x608CountsAt3579545Hz) {
  const uint32_t before = pc.io_bus().read(0x608, 4);
  clock.advance(1'000'000'000);
  EXPECT_EQ((pc.io_bus().read(0x608, 4) - before) & Piix4Pm::kTimerMask, Piix4Pm::kTimerHz & Piix4Pm::kTimerMask);
}

TEST_F(FixedAcpiPmTest, SoftOffThroughPm1aControlPowersOff) {
  bool off = false;
  pm.set_power_off([&] { off = true; });
  pc.io_bus().write(0x604, 2, Piix4Pm::kSleepEnable | 0u << Piix4Pm::kSleepTypeShift);
  EXPECT_TRUE(off);
}

TEST_F(FixedAcpiPmTest, PowerButtonRaisesTheSciOnIrq9) {
  pc.io_bus().write(0xB2, 1, Piix4Pm::kAcpiEnable);
  pc.io_bus().write(0x602, 2, Piix4Pm::kPowerButton);  // PM1a enable
  pm.pm().press_power_button();
  EXPECT_TRUE(pm.pm().sci_level());
  EXPECT_EQ(pc.io_bus().read(0x600, 2) & Piix4Pm::kPowerButton, Piix4Pm::kPowerButton);
  pc.io_bus().write(0x600, 2, Piix4Pm::kPowerButton);  // write 1 to clear
  EXPECT_FALSE(pm.pm().sci_level());
}

TEST_F(FixedAcpiPmTest, Gpe0BlockAt0xAfe0) {
  pm.pm().raise_gpe(0x2);
  EXPECT_EQ(pc.io_bus().read(0xAFE0, 2), 0x2u);
  pc.io_bus().write(0xAFE0, 2, 0x2);
  EXPECT_EQ(pc.io_bus().read(0xAFE0, 2), 0u);
}

uint32_t config_read(PcPlatform& pc, unsigned device, unsigned function, uint8_t reg) {
  pc.io_bus().write(0xCF8, 4, 0x80000000u | device << 11 | function << 8 | reg);
  return pc.io_bus().read(0xCFC, 4);
}

void config_write(PcPlatform& pc, unsigned device, unsigned function, uint8_t reg, unsigned size, uint32_t value) {
  pc.io_bus().write(0xCF8, 4, 0x80000000u | device << 11 | function << 8 | (reg & ~3u));
  pc.io_bus().write(static_cast<uint16_t>(0xCFC + (reg & 3)), size, value);
}

TEST(ChipsetAcpi, WithoutAcpiThereIsNoPiix4PmFunction) {
  VirtualClock clock = VirtualClock::manual();
  PcPlatform pc(clock, small_pc());
  PcChipset chipset(pc, clock, {}, /*acpi=*/false);
  EXPECT_EQ(config_read(pc, 1, 0, 0x00), 0x70008086u);  // the PIIX3 ISA bridge is there
  EXPECT_EQ(config_read(pc, 1, 3, 0x00), 0xFFFFFFFFu);
}

TEST(ChipsetAcpi, PmBlockDecodesAt0x600WhereSeaBiosMovesIt) {
  VirtualClock clock = VirtualClock::manual();
  PcPlatform pc(clock, small_pc());
  PcChipset chipset(pc, clock);
  config_write(pc, 1, 3, Piix4Pm::kPmBase, 4, 0x600 | 1);  // what SeaBIOS's piix4_pm_setup writes
  config_write(pc, 1, 3, Piix4Pm::kPmRegMisc, 1, 0x01);
  bool off = false;
  chipset.set_power_off([&] { off = true; });
  const uint32_t before = pc.io_bus().read(0x608, 4);
  clock.advance(1'000'000);
  EXPECT_NE(pc.io_bus().read(0x608, 4), before);
  pc.io_bus().write(0x604, 2, Piix4Pm::kSleepEnable);
  EXPECT_TRUE(off);
}

}  // namespace
}  // namespace vmm86
