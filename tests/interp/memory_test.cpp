// The physical map as the interpreter sees it: MMIO through the hooks (split accesses
// included), unbacked space, accesses that straddle pages.
#include <gtest/gtest.h>

#include <functional>

#include "tests/interp/machine.h"

namespace vmm86::test {
namespace {

using namespace asmjit::x86;

TEST(Memory, MmioReadWriteGoThroughHooks) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(eax, dword_ptr(static_cast<uint32_t>(kMmioBase) + 0x10));
    a.mov(dword_ptr(static_cast<uint32_t>(kMmioBase) + 0x20), 0xABCD);
    a.mov(bl, byte_ptr(static_cast<uint32_t>(kMmioBase)));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x12345678u);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx) & 0xFF, 0x78u);
  ASSERT_EQ(m.mmio_writes.size(), 1u);
  EXPECT_EQ(m.mmio_writes[0].first, kMmioBase + 0x20);
  EXPECT_EQ(m.mmio_writes[0].second, 0xABCDu);
}

TEST(Memory, UnbackedReadsAllOnesAndDropsWrites) {
  Machine m;
  m.code([](Asm& a) {
    a.mov(dword_ptr(0xC0000000), 5);
    a.mov(eax, dword_ptr(0xC0000000));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xFFFFFFFFu);
}

TEST(Memory, AccessStraddlingPagesWithPaging) {
  Machine m;
  m.enable_paging();
  m.code([](Asm& a) {
    a.mov(dword_ptr(kData + 0xFFE), 0x11223344);
    a.mov(eax, dword_ptr(kData + 0xFFE));
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0x11223344u);
  EXPECT_EQ(m.peek8(kData + 0x1000), 0x22);
}

// Found by the wide differential test: clflush was a no-op, without the load-like checks.
TEST(Memory, ClflushIsCheckedLikeALoad) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData, 0x7);           // present, accessed clear
  m.set_pte_flags(kData + 0x1000, 0x0);  // not present
  m.code([](Asm& a) {
    a.clflush(byte_ptr(kData + 0x10));
    a.clflush(byte_ptr(kData + 0x1010));  // #PF
  });
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_NE(m.pte(kData) & 0x20, 0u) << "accessed bit";
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.cpu.cr2, kData + 0x1010);
}

TEST(Memory, StraddlingWriteIntoReadOnlyPageWritesNothing) {
  Machine m;
  m.enable_paging();
  m.set_pte_flags(kData + 0x1000, 0x5);
  m.poke32(kData + 0xFFC, 0);
  m.code([](Asm& a) { a.mov(dword_ptr(kData + 0xFFE), 0x11223344); });
  m.enter_ring3();
  ASSERT_EQ(m.run().status, StepStatus::Halted);
  EXPECT_EQ(m.vector(), 14);
  EXPECT_EQ(m.cpu.cr2, kData + 0x1000);
  EXPECT_EQ(m.peek32(kData + 0xFFC), 0u) << "both pages are checked before any byte is written";
}

/// Reads kData, points its PTE at the next frame, runs `between`, reloads CR3 (a TLB
/// flush) and reads kData again: the second read must see the next frame.
void expect_cr3_reload_flushes(const std::function<void(Asm&)>& between) {
  Machine m;
  m.enable_paging();
  m.poke32(kData, 0xAAAA);
  m.poke32(kData + 0x1000, 0xBBBB);
  const uint32_t pte_addr = kPageTables + (kData >> 12) * 4;
  m.code([&](Asm& a) {
    a.mov(eax, dword_ptr(kData));  // cached now
    a.mov(dword_ptr(pte_addr), (kData + 0x1000) | 7);
    between(a);
    a.mov(ecx, cr3);
    a.mov(cr3, ecx);
    a.mov(ebx, dword_ptr(kData));
  });
  ASSERT_EQ(m.run(100000).status, StepStatus::Halted);
  EXPECT_EQ(m.cpu.reg(Gpr::Eax), 0xAAAAu);
  EXPECT_EQ(m.cpu.reg(Gpr::Ebx), 0xBBBBu) << "the CR3 reload must drop the cached translation";
}

TEST(Memory, Cr3ReloadDropsCachedTranslations) {
  expect_cr3_reload_flushes([](Asm&) {});
}

// flush_tlb clears the entries filled since the last flush; INVLPG empties entries that
// then fill again, and past a bound that list gives up: the flush must still clear all.
TEST(Memory, Cr3ReloadAfterManyInvlpgRefills) {
  expect_cr3_reload_flushes([](Asm& a) {
    const asmjit::Label top = a.newLabel();
    a.mov(esi, 3000);
    a.bind(top);
    a.invlpg(dword_ptr(kData + 0x2000));
    a.mov(edx, dword_ptr(kData + 0x2000));
    a.dec(esi);
    a.jnz(top);
  });
}

}  // namespace
}  // namespace vmm86::test
