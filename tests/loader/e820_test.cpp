// The e820 map builder and the placement helpers: pure functions, no files.
#include <gtest/gtest.h>

#include <vector>

#include "vmm/loader/e820.h"
#include "vmm/loader/linux_boot.h"

namespace vmm86::linux_boot {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<E820Range> map_of(uint64_t ram, std::vector<E820Range> holes = {}) {
  auto map = build_e820_map(ram, holes);
  EXPECT_TRUE(map.ok()) << (map.ok() ? "" : map.error());
  return map.ok() ? map.value() : std::vector<E820Range>{};
}

TEST(E820, StandardPcLayout) {
  const std::vector<E820Range> expected{
      {0, 0x9FC00, E820Type::Ram},
      {0x9FC00, 0x400, E820Type::Reserved},
      {0xF0000, 0x10000, E820Type::Reserved},
      {0x100000, 255 * kMiB, E820Type::Ram},
  };
  EXPECT_EQ(map_of(256 * kMiB), expected);
}

TEST(E820, RamBelowOneMegabyteHasNoHighRange) {
  const std::vector<E820Range> expected{
      {0, 512 * 1024, E820Type::Ram},
      {0x9FC00, 0x400, E820Type::Reserved},
      {0xF0000, 0x10000, E820Type::Reserved},
  };
  EXPECT_EQ(map_of(512 * 1024), expected);
}

TEST(E820, HoleSplitsRam) {
  const auto map = map_of(256 * kMiB, {{64 * kMiB, kMiB, E820Type::Reserved}});
  ASSERT_EQ(map.size(), 6u);
  EXPECT_EQ(map[3], (E820Range{kHighMemStart, 63 * kMiB, E820Type::Ram}));
  EXPECT_EQ(map[4], (E820Range{64 * kMiB, kMiB, E820Type::Reserved}));
  EXPECT_EQ(map[5], (E820Range{65 * kMiB, 191 * kMiB, E820Type::Ram}));
}

TEST(E820, HoleAboveRamIsListed) {
  const E820Range ioapic{0xFEC00000, 0x1000, E820Type::Reserved};
  const auto map = map_of(256 * kMiB, {ioapic});
  ASSERT_EQ(map.size(), 5u);
  EXPECT_EQ(map.back(), ioapic);
}

TEST(E820, TouchingRangesOfOneTypeMerge) {
  // A reserved hole right after the BIOS ROM joins it; the ACPI one next to it does not.
  const auto map = map_of(256 * kMiB, {{0x100000, 0x1000, E820Type::Reserved}, {0x101000, 0x1000, E820Type::Acpi}});
  ASSERT_EQ(map.size(), 5u);
  EXPECT_EQ(map[2], (E820Range{0xF0000, 0x11000, E820Type::Reserved}));
  EXPECT_EQ(map[3], (E820Range{0x101000, 0x1000, E820Type::Acpi}));
  EXPECT_EQ(map[4].start, 0x102000u);
}

TEST(E820, RejectsBadHoles) {
  for (const E820Range& bad : {E820Range{kMiB, 0, E820Type::Reserved}, E820Range{~0ull - 5, 100, E820Type::Reserved},
                               E820Range{kMiB, kMiB, E820Type::Ram}}) {
    auto map = build_e820_map(256 * kMiB, std::vector<E820Range>{bad});
    ASSERT_FALSE(map.ok());
    EXPECT_NE(map.error().find("bad reserved range"), std::string::npos) << map.error();
  }
}

TEST(E820, RejectsMoreEntriesThanTheZeroPageHolds) {
  std::vector<E820Range> holes;
  for (uint64_t i = 0; i < 130; ++i) holes.push_back({(2 + 2 * i) * kMiB, kMiB / 2, E820Type::Reserved});
  auto map = build_e820_map(512 * kMiB, holes);
  ASSERT_FALSE(map.ok());
  EXPECT_NE(map.error().find("at most 128"), std::string::npos) << map.error();
}

TEST(E820, ExtendedMemoryStopsAtTheFirstHole) {
  EXPECT_EQ(extended_memory_kib(map_of(256 * kMiB)), 255u * 1024);
  EXPECT_EQ(extended_memory_kib(map_of(256 * kMiB, {{16 * kMiB, kMiB, E820Type::Reserved}})), 15u * 1024);
  EXPECT_EQ(extended_memory_kib(map_of(512 * 1024)), 0u);
}

TEST(PlaceInitrd, GoesToTheTopOfRam) {
  const auto map = map_of(256 * kMiB);
  EXPECT_EQ(place_initrd(map, 0x1800, 0x7FFFFFFF, 16 * kMiB, 32 * kMiB), 256 * kMiB - 0x2000);
  EXPECT_EQ(place_initrd(map, 0x2000, 0x7FFFFFFF, 16 * kMiB, 32 * kMiB), 256 * kMiB - 0x2000);
}

TEST(PlaceInitrd, HonoursInitrdAddrMax) {
  const auto map = map_of(256 * kMiB);
  EXPECT_EQ(place_initrd(map, kMiB, 128 * kMiB - 1, 16 * kMiB, 32 * kMiB), 127 * kMiB);
}

TEST(PlaceInitrd, SkipsTheKernelAndHoles) {
  // RAM above the kernel is taken by a hole: the initrd goes below the kernel.
  const auto map = map_of(64 * kMiB, {{32 * kMiB, 32 * kMiB, E820Type::Reserved}});
  EXPECT_EQ(place_initrd(map, kMiB, 0x7FFFFFFF, 16 * kMiB, 32 * kMiB), 15 * kMiB);
  // Never below 1 MiB.
  EXPECT_EQ(place_initrd(map, 15 * kMiB + 1, 0x7FFFFFFF, 16 * kMiB, 32 * kMiB), 0u);
}

TEST(PlaceInitrd, NoRoomGivesZero) {
  const auto map = map_of(33 * kMiB);
  EXPECT_EQ(place_initrd(map, 2 * kMiB, 0x7FFFFFFF, kMiB, 32 * kMiB), 0u);
}

TEST(BootGdt, FlatCodeAndDataDescriptors) {
  const auto gdt = boot_gdt();
  EXPECT_EQ(gdt[0], 0u);
  EXPECT_EQ(gdt[1], 0u);
  EXPECT_EQ(gdt[kBootCs / 8], 0x00CF9B000000FFFFull);
  EXPECT_EQ(gdt[kBootDs / 8], 0x00CF93000000FFFFull);
}

TEST(BootCpuState, IsTheProtocolsEntryState) {
  const CpuState cpu = boot_cpu_state(kBootParamsAddr, 0x1000000);
  EXPECT_TRUE(cpu.protected_mode());
  EXPECT_FALSE(cpu.paging());
  EXPECT_FALSE(cpu.v86_mode());
  EXPECT_EQ(cpu.cpl(), 0);
  EXPECT_EQ(cpu.eip, 0x1000000u);
  EXPECT_EQ(cpu.eflags & flags::IF, 0u);
  EXPECT_EQ(cpu.eflags, flags::Reserved1);
  EXPECT_EQ(cpu.reg(Gpr::Esi), kBootParamsAddr.value);
  EXPECT_EQ(cpu.reg(Gpr::Ebx), 0u);
  EXPECT_EQ(cpu.reg(Gpr::Ebp), 0u);
  EXPECT_EQ(cpu.reg(Gpr::Edi), 0u);
  const SegmentCache& cs = cpu.sreg(SegReg::Cs);
  EXPECT_EQ(cs.selector, kBootCs);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xFFFFFFFFu);
  EXPECT_TRUE(cs.is_code());
  EXPECT_TRUE(cs.default_big());
  EXPECT_TRUE(cs.present());
  for (SegReg s : {SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs}) {
    const SegmentCache& seg = cpu.sreg(s);
    EXPECT_EQ(seg.selector, kBootDs);
    EXPECT_EQ(seg.base, 0u);
    EXPECT_EQ(seg.limit, 0xFFFFFFFFu);
    EXPECT_FALSE(seg.is_code());
    EXPECT_TRUE(seg.default_big());
    EXPECT_EQ(seg.type() & 2, 2) << "writable";
  }
  EXPECT_EQ(cpu.gdtr.base, kGdtAddr.value);
  EXPECT_EQ(cpu.gdtr.limit, kBootGdtEntries * 8 - 1);
  EXPECT_EQ(cpu.idtr.limit, 0);
}

}  // namespace
}  // namespace vmm86::linux_boot
