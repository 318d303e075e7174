// Straight-line code whose instructions each touch memory no window can map (unbacked
// physical memory here; a device's registers or a frame buffer in a machine) runs in the
// interpreter as a run after the first exit, not as one host fault, one exit and one new
// block per instruction (a hostile-fuzzer find: 0xF022000000+28854 spent ~0.3 ms per
// instruction translating the rest of its block anew and timed out).
#include <gtest/gtest.h>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

constexpr uint32_t kUnbacked = 0x40000000;  // far above the machine's RAM
constexpr int kStores = 200;

TEST(UnmappableRuns, StoresToUnbackedMemoryRunInTheInterpreterAfterOneExit) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    a.mov(x86::eax, kUnbacked);
    a.xor_(x86::ecx, x86::ecx);
    for (int i = 0; i < kStores; ++i) a.mov(x86::dword_ptr(x86::eax, 4 * i), x86::ecx);
    a.mov(x86::ecx, 7);  // then ordinary code again
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false, false);
  });
  ASSERT_NO_FATAL_FAILURE(runs.run_and_compare());
  const BtEngineStats& s = runs.bt.engine().stats();
  EXPECT_GE(s.interpreted_after_mmio, static_cast<uint64_t>(kStores) - kStores / kUnmappableRun - 2);
  // One block per run of kUnmappableRun stores, not one per store.
  EXPECT_LE(runs.bt.tstats().blocks_translated, static_cast<uint64_t>(kStores / kUnmappableRun + 3));
  EXPECT_EQ(runs.bt.cpu().reg(Gpr::Ecx), 7u);
}

}  // namespace
}  // namespace vmm86::bttest
