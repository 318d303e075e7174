// The host mapping budget: scattered guest pages cost a host VMA each (two with the filler
// between them), and a process may hold only vm.max_map_count. Fills must keep working
// past the budget (by emptying windows) and at the host's own limit, never livelock and
// never leave a stale mapping behind.
#include <sys/mman.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "tests/shadow-mmu/mmu_fixture.h"

namespace vmm86::test {
namespace {

using namespace pte;

constexpr uint32_t kBase = 0x00400000;  // user pages from here, one page table per 4 MiB
constexpr uint32_t kFirstTable = 0x10000;

uint64_t process_vmas() {
  std::ifstream maps("/proc/self/maps");
  uint64_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

uint64_t max_map_count() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  uint64_t n = 65530;
  f >> n;
  return n;
}

class BudgetTest : public ShadowMmuTest {
 protected:
  /// Maps `pages` user pages from kBase, each to a frame that is not next to its
  /// neighbour's (so no two can share a host mapping). Frames 0x400.. hold no tables.
  void map_scattered(uint32_t pages) {
    for (uint32_t i = 0; i < pages; ++i) {
      const uint32_t linear = kBase + (i << kPageShift);
      const uint32_t table = kFirstTable + ((i >> 10) << kPageShift);
      set_pde(kDir, linear, table | P | W | U);
      set_pte(table, linear, (frame_of(i) << kPageShift) | P | W | U | A | D);
    }
    paging(kDir);
  }
  static uint32_t frame_of(uint32_t i) { return 0x400 + ((i * 2) % 0xC00); }
  /// Touches page `i` through window `user` and checks it reached its frame.
  void touch(bool user, uint32_t i) {
    ASSERT_EQ(frame_seen(user, kBase + (i << kPageShift)), frame_of(i)) << "page " << i;
  }
};

TEST_F(BudgetTest, HostMappingsAreCountedAsTheKernelSeesThem) {
  map_scattered(400);
  AddressWindow& w = mmu_->window(true);
  // Neighbouring linear pages on frames that are not neighbours: one VMA each.
  for (uint32_t i = 0; i < 100; ++i) touch(true, i);
  uint64_t bound = w.vma_bound();
  uint64_t exact = w.recount_vmas();
  EXPECT_NEAR(static_cast<double>(exact), 100 + 2, 1);  // + the PROT_NONE filler on each side
  EXPECT_GE(bound, exact);
  // Isolated pages: the page and the PROT_NONE filler after it.
  for (uint32_t i = 200; i < 400; i += 2) touch(true, i);
  bound = w.vma_bound();
  exact = w.recount_vmas();
  EXPECT_NEAR(static_cast<double>(exact), 100 + 2 + 2 * 100, 1);
  EXPECT_GE(bound, exact);
  // Emptying the window brings it back to one.
  mmu_->flush_all();
  EXPECT_EQ(w.recount_vmas(), 1u);
}

TEST_F(BudgetTest, FillsKeepWorkingPastTheBudget) {
  mmu_->set_mapping_budget(256);
  map_scattered(1000);
  for (int round = 0; round < 2; ++round) {
    for (uint32_t i = 0; i < 1000; ++i) {
      touch(i % 2 == 0, i);
      ASSERT_LE(mmu_->host_mappings(), mmu_->mapping_budget() + 2) << "page " << i;
    }
  }
  EXPECT_GT(mmu_->stats().evictions, 0u);
  EXPECT_EQ(mmu_->stats().map_failures, 0u);
  // Eviction is a flush: stale translations must be gone, live ones refetched.
  set_pte(kFirstTable, kBase, (0x3FFu << kPageShift) | P | W | U | A | D);
  mmu_->invlpg(GuestLinear{kBase});
  EXPECT_EQ(frame_seen(true, kBase), 0x3FFu);
}

// The process itself holds nearly vm.max_map_count mappings (another part of the
// monitor, or a small limit): the host refuses maps and splits. The guest must see
// neither a failure it would not get from real hardware nor a stale page.
TEST_F(BudgetTest, AtTheHostLimitFillsEvictAndInvalidationStillWorks) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer needs host mappings of its own, and this test takes them all";
#endif
  const uint64_t limit = max_map_count();
  if (limit > 300000) GTEST_SKIP() << "vm.max_map_count " << limit << " is too large to reach in a test";
  map_scattered(3000);
  // The budget would allow far more: the host limit is what stops us here.
  mmu_->set_mapping_budget(limit * 2);
  // Take all but a few hundred of the process's mappings: alternate protections so the
  // kernel cannot merge neighbours.
  const uint64_t want = limit - process_vmas() - 300;
  const size_t bytes = static_cast<size_t>(want) * kPageSize;
  void* reserved = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(reserved, MAP_FAILED);
  // Released however the test ends: later tests in this process need mappings again.
  const std::unique_ptr<void, std::function<void(void*)>> release(reserved, [bytes](void* p) { munmap(p, bytes); });
  auto* filler = static_cast<uint8_t*>(reserved);
  for (uint64_t i = 1; i < want; i += 2) ASSERT_EQ(mprotect(filler + i * kPageSize, kPageSize, PROT_READ), 0) << i;

  for (uint32_t i = 0; i < 3000; ++i) {
    const ProbeResult r = probe_->read32(true, kBase + (i << kPageShift));
    ASSERT_FALSE(r.stray) << "page " << i << ": fill answered Mapped without a mapping";
    ASSERT_TRUE(r.completed) << "page " << i << ", outcome " << static_cast<int>(r.outcome);
    ASSERT_EQ(r.value, frame_tag(frame_of(i)));
  }
  EXPECT_GT(mmu_->stats().evictions, 0u) << "the host limit was reached";
  // An INVLPG that needs a split must not leave the old page mapped.
  for (uint32_t i = 2000; i < 2010; ++i) {
    const uint32_t linear = kBase + (i << kPageShift);
    (void)frame_seen(true, linear);
    set_pte(kFirstTable + ((i >> 10) << kPageShift), linear, (0x3FFu << kPageShift) | P | W | U | A | D);
    mmu_->invlpg(GuestLinear{linear});
    EXPECT_EQ(frame_seen(true, linear), 0x3FFu);
  }
}

}  // namespace
}  // namespace vmm86::test
