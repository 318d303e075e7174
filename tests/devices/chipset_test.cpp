// The BIOS machine's chipset as firmware and Linux see it through the I/O ports: PCI
// configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2), the i440FX's identity and PAM
// (82441FX datasheet), and the fixed ports of QEMU's ACPI tables that SeaBIOS installs.
#include "devices/pc_chipset.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmm86 {
namespace {

class ChipsetTest : public ::testing::Test {
 protected:
  ChipsetTest()
      : clock(VirtualClock::manual()),
        pc(clock, PcPlatformConfig{.ram_below_4g = 64ull << 20, .com2 = false, .rtc_start_unix_ns = 0, .log = {}}),
        chipset(pc, clock) {}

  uint32_t config_read(unsigned device, unsigned function, uint8_t reg) {
    pc.io_bus().write(0xCF8, 4, 0x80000000u | device << 11 | function << 8 | reg);
    return pc.io_bus().read(0xCFC, 4);
  }
  void config_write8(unsigned device, unsigned function, uint8_t reg, uint8_t value) {
    pc.io_bus().write(0xCF8, 4, 0x80000000u | device << 11 | function << 8 | (reg & ~3u));
    pc.io_bus().write(static_cast<uint16_t>(0xCFC + (reg & 3)), 1, value);
  }

  VirtualClock clock;
  PcPlatform pc;
  PcChipset chipset;
};

TEST_F(ChipsetTest, QemusPcFunctionsAnswerConfigurationCycles) {
  EXPECT_EQ(config_read(0, 0, 0x00), 0x12378086u);  // i440FX
  EXPECT_EQ(config_read(0, 0, 0x2C), 0x11001AF4u);  // QEMU's subsystem: SeaBIOS trusts fw_cfg
  EXPECT_EQ(config_read(1, 0, 0x00), 0x70008086u);  // PIIX3 ISA
  EXPECT_EQ(config_read(1, 1, 0x00), 0x70108086u);  // PIIX3 IDE
  EXPECT_EQ(config_read(1, 3, 0x00), 0x71138086u);  // PIIX4 ACPI
  EXPECT_EQ(config_read(1, 2, 0x00), 0xFFFFFFFFu);  // no USB function
  EXPECT_EQ(config_read(2, 0, 0x00), 0xFFFFFFFFu);  // empty slot
}

TEST_F(ChipsetTest, PamWritesReachTheListener) {
  std::vector<std::pair<uint32_t, PamMode>> changes;
  chipset.set_pam_listener([&](uint32_t base, uint32_t, PamMode mode) { changes.emplace_back(base, mode); });
  config_write8(0, 0, 0x59, 0x30);  // PAM0 high nibble: F0000-FFFFF read/write
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].first, 0xF0000u);
  EXPECT_EQ(changes[0].second, PamMode::ReadWrite);
}

// QEMU's DSDT reads these on every GPE; all-ones would mean "every PCI slot emptied" and
// "256 CPUs present", and Linux's acpiphp would remove the PIIX functions.
TEST_F(ChipsetTest, AcpiHotplugPortsReportNoChange) {
  EXPECT_EQ(pc.io_bus().read(0xAE00, 4), 0u);  // PCIU
  EXPECT_EQ(pc.io_bus().read(0xAE04, 4), 0u);  // PCID
  EXPECT_EQ(pc.io_bus().read(0xAF00, 4), 1u);  // CPU 0 present
  EXPECT_EQ(pc.io_bus().read(0xAF04, 4), 0u);
}

TEST_F(ChipsetTest, QemusGpeBlockIsThePmGpeRegisters) {
  pc.io_bus().write(0xAFE2, 2, 0x0002);  // GPEN bit 1
  chipset.power_management().raise_gpe(0x0002);
  EXPECT_EQ(pc.io_bus().read(0xAFE0, 2), 0x0002u);
  pc.io_bus().write(0xAFE0, 2, 0x0002);  // write 1 to clear
  EXPECT_EQ(pc.io_bus().read(0xAFE0, 2), 0u);
  EXPECT_EQ(pc.io_bus().read(0xAFE2, 2), 0x0002u);
}

}  // namespace
}  // namespace vmm86
