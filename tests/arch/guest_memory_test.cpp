#include "vmm/arch/guest_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

namespace vmm86 {
namespace {

TEST(GuestMemory, RejectsBadSizes) {
  const Result<GuestMemory> none = GuestMemory::create(0);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("multiple of 4 KiB"), std::string::npos);
  EXPECT_FALSE(GuestMemory::create(4097));
  EXPECT_FALSE(GuestMemory::create((3ull << 30) + 4096));
}

TEST(GuestMemory, CheckedAccessStaysInsideRam) {
  auto mem = GuestMemory::create(1 << 20);
  ASSERT_TRUE(mem);
  uint32_t v = 0xDEADBEEF;
  EXPECT_TRUE(mem->write(GuestPhys{0xFFFFC}, &v, 4));
  EXPECT_FALSE(mem->write(GuestPhys{0xFFFFD}, &v, 4));  // straddles the end
  EXPECT_FALSE(mem->write(GuestPhys{~0ull}, &v, 1));    // no wrap-around
  uint32_t back = 0;
  EXPECT_TRUE(mem->read(GuestPhys{0xFFFFC}, &back, 4));
  EXPECT_EQ(back, 0xDEADBEEF);
  EXPECT_EQ(mem->host_ptr(GuestPhys{1 << 20}), nullptr);
}

TEST(GuestMemory, MemfdSharesTheSameBytes) {
  // The shadow MMU maps frames from the fd: a second mapping must see the monitor's writes.
  auto mem = GuestMemory::create(64 << 10);
  ASSERT_TRUE(mem);
  uint8_t marker = 0x5A;
  ASSERT_TRUE(mem->write(GuestPhys{0x2003}, &marker, 1));
  void* alias = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, mem->fd(), 0x2000);
  ASSERT_NE(alias, MAP_FAILED);
  EXPECT_EQ(static_cast<uint8_t*>(alias)[3], 0x5A);
  munmap(alias, 4096);
}

TEST(GuestMemory, PhysicalMapLaterRegionsWin) {
  auto mem = GuestMemory::create(2 << 20);
  ASSERT_TRUE(mem);
  mem->add_region({GuestPhys{0xA0000}, 0x20000, PhysKind::Mmio, "vga"});
  mem->add_region({GuestPhys{0xF0000}, 0x10000, PhysKind::Rom, "bios"});
  EXPECT_EQ(mem->kind_at(GuestPhys{0x9FFFF}), PhysKind::Ram);
  EXPECT_EQ(mem->kind_at(GuestPhys{0xA0000}), PhysKind::Mmio);
  EXPECT_EQ(mem->kind_at(GuestPhys{0xF8000}), PhysKind::Rom);
  EXPECT_EQ(mem->kind_at(GuestPhys{0x100000}), PhysKind::Ram);
  EXPECT_EQ(mem->kind_at(GuestPhys{4ull << 30}), PhysKind::Unbacked);
}

}  // namespace
}  // namespace vmm86
