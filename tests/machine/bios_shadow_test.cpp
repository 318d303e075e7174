// Shadow RAM under the PAM registers (Intel 82441FX datasheet, PAM0-PAM6): what the guest
// reads and whether its writes stick, in each mode, and that RAM written while shadowed
// comes back when the segment reads RAM again.
#include "vmm/machine/bios_shadow.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vmm86 {
namespace {

constexpr uint64_t kRom = 128 << 10;

GuestMemory memory_with_rom() {
  auto mem = GuestMemory::create(4 << 20, kRom);
  EXPECT_TRUE(mem) << mem.error();
  std::span<uint8_t> rom = mem->rom_area();
  for (size_t i = 0; i < rom.size(); ++i) rom[i] = static_cast<uint8_t>(0xA0 + (i >> 14));  // one value per 16 KiB
  return std::move(*mem);
}

uint8_t ram_byte(const GuestMemory& mem, uint32_t addr) { return *mem.host_ptr(GuestPhys{addr}); }

TEST(BiosShadow, ResetShowsTheRomTailWithWritesDropped) {
  GuestMemory mem = memory_with_rom();
  BiosShadow shadow(mem);
  // The image's last 128 KiB at E0000-FFFFF; C0000-DFFFF read zeros.
  EXPECT_EQ(ram_byte(mem, 0xE0000), 0xA0);
  EXPECT_EQ(ram_byte(mem, 0xFC000), 0xA7);
  EXPECT_EQ(ram_byte(mem, 0xC0000), 0x00);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xF0000}), PhysKind::Rom);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xC4000}), PhysKind::Rom);
  EXPECT_EQ(mem.kind_at(GuestPhys{0x100000}), PhysKind::Ram);
  EXPECT_FALSE(shadow.reads_ram(0xF0000));
  EXPECT_FALSE(shadow.writes_ram(0xF0000));
}

TEST(BiosShadow, ReadWriteThenReadOnlyAsSeaBiosDoes) {
  GuestMemory mem = memory_with_rom();
  BiosShadow shadow(mem);
  // 0x30 into PAM0: F0000-FFFFF reads and writes RAM, which is empty until copied.
  EXPECT_TRUE(shadow.set(0xF0000, 0x10000, true, true));
  EXPECT_EQ(ram_byte(mem, 0xF0000), 0x00);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xF0000}), PhysKind::Ram);
  // The firmware copies itself in, then write-protects it (0x10).
  std::memset(mem.host_ptr(GuestPhys{0xF0000}, 0x10000), 0x5A, 0x10000);
  EXPECT_TRUE(shadow.set(0xF0000, 0x10000, true, false));
  EXPECT_EQ(ram_byte(mem, 0xF0000), 0x5A);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xF0000}), PhysKind::Rom);
  // Back to ROM: the ROM's bytes; then RAM again: the copy made before is still there.
  EXPECT_TRUE(shadow.set(0xF0000, 0x10000, false, false));
  EXPECT_EQ(ram_byte(mem, 0xF0000), 0xA4);
  EXPECT_TRUE(shadow.set(0xF0000, 0x10000, true, true));
  EXPECT_EQ(ram_byte(mem, 0xFFFFF), 0x5A);
  // Setting the mode a segment already has changes nothing.
  EXPECT_FALSE(shadow.set(0xF0000, 0x10000, true, true));
}

TEST(BiosShadow, SegmentsAreIndependent) {
  GuestMemory mem = memory_with_rom();
  BiosShadow shadow(mem);
  EXPECT_TRUE(shadow.set(0xE4000, 0x4000, true, true));
  EXPECT_EQ(mem.kind_at(GuestPhys{0xE4000}), PhysKind::Ram);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xE0000}), PhysKind::Rom);
  EXPECT_EQ(mem.kind_at(GuestPhys{0xE8000}), PhysKind::Rom);
  EXPECT_EQ(ram_byte(mem, 0xE0000), 0xA0);
  EXPECT_EQ(ram_byte(mem, 0xE8000), 0xA2);
}

TEST(BiosShadow, A64KiBImageFillsOnlyTheTopSegment) {
  auto mem = GuestMemory::create(4 << 20, 64 << 10);
  ASSERT_TRUE(mem) << mem.error();
  std::memset(mem->rom_area().data(), 0xC3, mem->rom_area().size());
  BiosShadow shadow(*mem);
  EXPECT_EQ(ram_byte(*mem, 0xF0000), 0xC3);
  EXPECT_EQ(ram_byte(*mem, 0xEFFFF), 0x00);
}

}  // namespace
}  // namespace vmm86
