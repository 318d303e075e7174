// The firmware loader against Debian's SeaBIOS image: the ROM sits just below 4 GiB and the
// vCPU starts at the reset vector (SDM vol. 3A 9.1.4: the first fetch is at FFFFFFF0).
#include "vmm/loader/firmware.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace vmm86 {
namespace {

constexpr const char* kSeaBios = "/usr/share/seabios/bios.bin";

std::vector<uint8_t> file_bytes(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(FirmwareLoader, SeaBiosSitsBelowFourGiBAndTheCpuAtTheResetVector) {
  const std::vector<uint8_t> image = file_bytes(kSeaBios);
  if (image.empty()) GTEST_SKIP() << kSeaBios << " is not installed (Debian package seabios)";
  auto loaded = firmware::load_bios(64ull << 20, kSeaBios);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->bios_bytes, image.size());
  const GuestPhys start{(1ull << 32) - image.size()};
  EXPECT_EQ(loaded->memory.kind_at(start), PhysKind::Rom);
  const uint8_t* rom = loaded->memory.host_ptr(start, image.size());
  ASSERT_NE(rom, nullptr);
  EXPECT_EQ(std::memcmp(rom, image.data(), image.size()), 0);
  // The reset vector: a far jump in every PC BIOS (EA ptr16:16).
  const uint8_t* reset = loaded->memory.host_ptr(GuestPhys{0xFFFFFFF0}, 16);
  ASSERT_NE(reset, nullptr);
  EXPECT_EQ(reset[0], 0xEA);
  const CpuState& cpu = loaded->cpu;
  EXPECT_EQ(cpu.sreg(SegReg::Cs).selector, 0xF000);
  EXPECT_EQ(cpu.sreg(SegReg::Cs).base, 0xFFFF0000u);
  EXPECT_EQ(cpu.eip, 0xFFF0u);
  EXPECT_FALSE(cpu.protected_mode());
  // Nothing past the image: the byte after 4 GiB - 1 is not ROM, and RAM is untouched.
  EXPECT_EQ(loaded->memory.host_ptr(GuestPhys{0xFFFFFFFF}, 2), nullptr);
  EXPECT_EQ(loaded->memory.kind_at(GuestPhys{start.value - 1}), PhysKind::Unbacked);
}

}  // namespace
}  // namespace vmm86
