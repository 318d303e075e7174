// Block chaining: a hot loop runs chained (it does not come back to the dispatcher), and a
// write to its guest-physical page (BtEngine::physical_write, as a device or the monitor
// makes) drops and unchains its blocks so that the new code runs.
#include <gtest/gtest.h>

#include "tests/support/bt_machine.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

TEST(Chaining, LoopRunsChainedWithFewDispatches) {
  BtMachine m;
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel();
  a.mov(x86::ecx, 100000);
  a.xor_(x86::eax, x86::eax);
  a.bind(top);
  a.add(x86::eax, x86::ecx);
  a.dec(x86::ecx);
  a.jnz(top);
  a.hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);

  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.cpu().reg(Gpr::Eax), static_cast<uint32_t>(100000ull * 100001ull / 2));
  EXPECT_EQ(m.cpu().reg(Gpr::Ecx), 0u);
  EXPECT_GE(m.tstats().chains, 1u);
  // 300,000 guest instructions; the dispatcher saw a handful of block entries.
  EXPECT_LE(m.engine().stats().dispatches, 8u);
  EXPECT_GE(m.ctx().retired, 300000u) << "the loop did not run translated";
}

TEST(Chaining, PhysicalWriteUnchainsARunningLoop) {
  BtMachine m;
  GuestCode c(kCode);
  auto& a = c.a();
  Label top = a.newLabel(), back = a.newLabel();
  a.xor_(x86::eax, x86::eax);
  a.bind(top);
  a.inc(x86::eax);
  a.bind(back);
  a.short_().jmp(top);  // 2 bytes: later patched into hlt; nop
  m.load(c);
  const uint32_t back_addr = c.addr(back);
  m.start(kCode, kStackTop, false);

  // The loop never ends by itself: the watchdog makes it leave through the poll page.
  ASSERT_EQ(m.run_bt(std::chrono::milliseconds(100)), RunEnd::Timeout);
  const uint32_t before = m.cpu().reg(Gpr::Eax);
  EXPECT_GT(before, 1000u);
  EXPECT_GE(m.tstats().chains, 1u);
  EXPECT_LE(m.engine().stats().dispatches, 8u) << "the loop kept coming back to the dispatcher";
  EXPECT_EQ(m.engine().stats().exits_poll, 1u);

  // A DMA-like write replaces `jmp top` by `hlt; nop` while the loop is chained to itself.
  const uint8_t hlt_nop[] = {0xF4, 0x90};
  m.poke(back_addr, hlt_nop, sizeof hlt_nop);
  const uint64_t invalidated = m.tstats().invalidated_blocks;
  m.engine().physical_write(GuestPhys{back_addr}, sizeof hlt_nop);
  EXPECT_GT(m.tstats().invalidated_blocks, invalidated);

  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.cpu().eip, back_addr + 1);
  EXPECT_GT(m.cpu().reg(Gpr::Eax), before);
}

TEST(Chaining, PhysicalWriteBetweenRunsRetranslates) {
  BtMachine m;
  GuestCode c(kCode);
  auto& a = c.a();
  Label outer = a.newLabel(), top = a.newLabel(), add = a.newLabel();
  a.xor_(x86::eax, x86::eax);
  a.bind(outer);
  a.mov(x86::ecx, 1000);
  a.bind(top);
  a.bind(add);
  a.add(x86::eax, 3);  // 83 C0 03: the immediate is the last byte
  a.loop(top);
  a.hlt();
  a.jmp(outer);
  m.load(c);
  const uint32_t imm_addr = c.addr(add) + 2;
  ASSERT_EQ(m.peek8(imm_addr), 3u);
  m.start(kCode, kStackTop, false);

  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.cpu().reg(Gpr::Eax), 3000u);

  // A write to a page without code changes nothing in the cache.
  const uint64_t invalidated = m.tstats().invalidated_blocks;
  m.engine().physical_write(GuestPhys{kData}, 4);
  EXPECT_EQ(m.tstats().invalidated_blocks, invalidated);

  const uint8_t five = 5;
  m.poke(imm_addr, &five, 1);
  m.engine().physical_write(GuestPhys{imm_addr}, 1);
  EXPECT_GT(m.tstats().invalidated_blocks, invalidated);
  m.wake();
  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.cpu().reg(Gpr::Eax), 3000u + 5000u);
  EXPECT_LE(m.engine().stats().dispatches, 16u);
}

/// Many more blocks than a small code cache holds: the engine flushes (dropping chains and
/// the inline table) again and again, and the program's result stays right.
TEST(Chaining, CacheFlushesKeepResultsRight) {
  BtMachine m(48u << 10);
  constexpr uint32_t kFunctions = 600, kFirst = kCode + 0x1000;
  GuestCode f(kFirst);  // function i at kFirst + 8*i: add eax, i; ret (over several pages)
  for (uint32_t i = 0; i < kFunctions; ++i) {
    f.a().align(AlignMode::kCode, 8);
    f.a().add(x86::eax, i);
    f.a().ret();
  }
  m.load(f);

  GuestCode c(kCode);
  auto& a = c.a();
  Label outer = a.newLabel(), inner = a.newLabel();
  a.xor_(x86::eax, x86::eax);
  a.mov(x86::ebx, 3);
  a.bind(outer);
  a.mov(x86::esi, kFirst);
  a.mov(x86::ecx, kFunctions);
  a.bind(inner);
  a.call(x86::esi);
  a.add(x86::esi, 8);
  a.loop(inner);
  a.dec(x86::ebx);
  a.jnz(outer);
  a.hlt();
  m.load(c);
  m.start(kCode, kStackTop, false);

  ASSERT_EQ(m.run_bt(), RunEnd::Halted) << m.detail();
  EXPECT_EQ(m.cpu().reg(Gpr::Eax), 3u * (kFunctions * (kFunctions - 1) / 2));
  EXPECT_GE(m.engine().stats().cache_flushes, 2u) << "the cache was not small enough to flush";
}

}  // namespace
}  // namespace vmm86::bttest
