#include <gtest/gtest.h>

#include "devices/display/stdvga_pci.h"

namespace vmm86 {
namespace {

TEST(StdVgaPci, IdentityAndPrefetchableLfbBar) {
  StdVgaPci vga({0x55, 0xAA}, 16u << 20);
  EXPECT_EQ(vga.config_read(0x00, 4), 0x11111234u);
  EXPECT_EQ(vga.config_read(0x08, 4) >> 8, 0x030000u);
  vga.config_write(0x10, 4, 0xFFFFFFFF);
  EXPECT_EQ(vga.config_read(0x10, 4), 0xFF000008u);  // 16 MiB, prefetchable memory
  vga.config_write(0x18, 4, 0xFFFFFFFF);
  EXPECT_EQ(vga.config_read(0x18, 4), 0xFFFFF000u);  // BAR 2: QEMU's 4 KiB register page
}

TEST(StdVgaPci, RomBarSizesAndDecodesWithBothEnables) {
  std::vector<uint8_t> rom(39936, 0);
  rom[0] = 0x55;
  rom[1] = 0xAA;
  StdVgaPci vga(rom, 16u << 20);
  ASSERT_TRUE(vga.has_rom());
  vga.config_write(0x30, 4, 0xFFFFFFFE);             // SeaBIOS's sizing write
  EXPECT_EQ(vga.config_read(0x30, 4), 0xFFFF0000u);  // 64 KiB
  vga.config_write(0x30, 4, 0xFEB00000);
  EXPECT_FALSE(vga.region(vga.rom_region()).base.has_value());  // enable bit clear
  vga.config_write(0x30, 4, 0xFEB00001);
  EXPECT_FALSE(vga.region(vga.rom_region()).base.has_value());  // memory space off
  vga.config_write(0x04, 2, 0x0002);
  EXPECT_EQ(vga.region(vga.rom_region()).base, 0xFEB00000u);
  EXPECT_EQ(vga.rom().read(0, 2), 0xAA55u);
  EXPECT_EQ(vga.rom().read(39936, 1), 0xFFu);
}

}  // namespace
}  // namespace vmm86
