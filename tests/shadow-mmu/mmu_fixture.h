// Shared fixture for the shadow-MMU tests: 16 MiB of guest RAM whose every 4 KiB frame
// starts with a tag naming the frame (so a read through a window tells which frame it
// reached), a ShadowMmu on it, a fault probe, and helpers to write page tables.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "shadow-mmu/shadow_mmu.h"
#include "tests/shadow-mmu/fault_probe.h"

namespace vmm86::test {

/// Page-table entry bits (non-PAE), as the tests write them.
namespace pte {
inline constexpr uint32_t P = 1, W = 2, U = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;
}

/// The value the fixture stores at offset 0 of guest frame `frame_page`.
constexpr uint32_t frame_tag(uint32_t frame_page) { return 0x7A900000u | frame_page; }

class ShadowMmuTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRam = 16u << 20;
  static constexpr uint32_t kDir = 0x1000, kDir2 = 0x2000;  // two page directories (address spaces)
  static constexpr uint32_t kTable = 0x3000, kTable2 = 0x4000, kTable3 = 0x5000;
  static constexpr uint32_t kPagingOn = cr0::PE | cr0::PG;

  void SetUp() override {
    auto m = GuestMemory::create(kRam);
    ASSERT_TRUE(m) << m.error();
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
    for (uint32_t f = 0; f < kRam >> kPageShift; ++f) poke(uint64_t{f} << kPageShift, frame_tag(f));
    // Table pages start empty (all entries not present): tests build what they need.
    std::fill(mem_->ram().begin() + kDir, mem_->ram().begin() + kTable3 + kPageSize, uint8_t{0});
    mmu_ = std::make_unique<ShadowMmu>(*mem_);
    const Status init = mmu_->init();
    ASSERT_TRUE(init) << init.error();
    probe_.emplace(*mmu_);
  }
  void TearDown() override {
    probe_.reset();
    mmu_.reset();
  }

  uint32_t peek(uint64_t phys) const {
    uint32_t v = 0;
    EXPECT_TRUE(mem_->read(GuestPhys{phys}, &v, 4));
    return v;
  }
  void poke(uint64_t phys, uint32_t v) { ASSERT_TRUE(mem_->write(GuestPhys{phys}, &v, 4)); }

  /// The PDE for `linear` in directory `dir`, and the PTE for it in `table`.
  static uint64_t pde_addr(uint32_t dir, uint32_t linear) { return dir + ((linear >> 22) << 2); }
  static uint64_t pte_addr(uint32_t table, uint32_t linear) { return table + (((linear >> 12) & 0x3FF) << 2); }
  void set_pde(uint32_t dir, uint32_t linear, uint32_t v) { poke(pde_addr(dir, linear), v); }
  void set_pte(uint32_t table, uint32_t linear, uint32_t v) { poke(pte_addr(table, linear), v); }
  /// Maps `linear` to frame `frame_page` through `dir` and `table` with `bits` at both levels.
  void map4k(uint32_t dir, uint32_t table, uint32_t linear, uint32_t frame_page, uint32_t bits) {
    set_pde(dir, linear, table | pte::P | pte::W | pte::U);
    set_pte(table, linear, (frame_page << kPageShift) | bits);
  }

  void paging(uint32_t cr3, uint32_t cr4 = cr4::PSE, uint32_t extra_cr0 = cr0::WP) {
    mmu_->set_mode(PagingMode{kPagingOn | extra_cr0, cr3, cr4});
  }

  /// Reads through a window and expects it to complete; returns the frame page it reached.
  uint32_t frame_seen(bool user, uint32_t linear) {
    const ProbeResult r = probe_->read32(user, linear & ~kPageMask);
    EXPECT_TRUE(r.completed) << "linear " << std::hex << linear;
    EXPECT_FALSE(r.stray);
    EXPECT_EQ(r.value & 0xFFF00000u, frame_tag(0)) << "not a frame tag: a mapping the guest never had";
    return r.value & 0xFFFFFu;
  }

  std::unique_ptr<GuestMemory> mem_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::optional<FaultProbe> probe_;
};

}  // namespace vmm86::test
