#include "devices/apic/local_apic.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmm86 {
namespace {

// Register offsets (Intel SDM Vol. 3A Table 10-1).
constexpr uint64_t kId = 0x20, kVersion = 0x30, kTpr = 0x80, kApr = 0x90, kPpr = 0xA0, kEoi = 0xB0, kLdr = 0xD0,
                   kDfr = 0xE0, kSvr = 0xF0, kIsr = 0x100, kTmr = 0x180, kIrr = 0x200, kEsr = 0x280, kIcrLow = 0x300,
                   kIcrHigh = 0x310, kLvtTimer = 0x320, kLvtLint0 = 0x350, kLvtLint1 = 0x360, kLvtError = 0x370,
                   kInitialCount = 0x380, kCurrentCount = 0x390, kDivide = 0x3E0;
constexpr uint32_t kMasked = 1u << 16;
constexpr uint32_t kPeriodic = 1u << 17;
constexpr uint32_t kDivideBy1 = 0xB, kDivideBy16 = 0x3;

class LocalApicTest : public ::testing::Test {
 protected:
  explicit LocalApicTest(uint64_t timer_hz = LocalApic::kDefaultTimerHz) : apic(clock, timers, 0, timer_hz) {
    ApicCpuSignals signals;
    signals.nmi = [this] { ++nmis; };
    signals.init = [this] { ++inits; };
    signals.startup = [this](uint8_t v) { startups.push_back(v); };
    apic.set_cpu_signals(std::move(signals));
    apic.set_eoi_listener([this](uint8_t v) { eois.push_back(v); });
  }

  uint32_t rd(uint64_t offset) { return apic.read(offset, 4); }
  void wr(uint64_t offset, uint32_t value) { apic.write(offset, 4, value); }
  void enable() { wr(kSvr, 0x1FF); }  // software enable, spurious vector 0xFF
  /// A fixed, edge-triggered self-IPI (shorthand "self").
  void self_ipi(uint8_t vector) { wr(kIcrLow, (1u << 18) | vector); }
  void advance_to(uint64_t ns) {
    clock.set(ns);
    timers.run_expired(clock.now_ns());
  }
  /// ESR as software reads it: write to latch, then read.
  uint32_t latched_esr() {
    wr(kEsr, 0);
    return rd(kEsr);
  }

  VirtualClock clock = VirtualClock::manual();
  TimerQueue timers;
  LocalApic apic;
  int nmis = 0;
  int inits = 0;
  std::vector<uint8_t> startups;
  std::vector<uint8_t> eois;
};

TEST_F(LocalApicTest, ResetState) {
  EXPECT_EQ(apic.base_msr(), 0xFEE00900u);  // base, BSP, global enable
  EXPECT_EQ(rd(kId), 0u);
  EXPECT_EQ(rd(kVersion), 0x00050014u);
  EXPECT_EQ(rd(kSvr), 0xFFu);
  EXPECT_FALSE(apic.software_enabled());
  EXPECT_EQ(rd(kDfr), 0xFFFFFFFFu);
  EXPECT_EQ(rd(kLdr), 0u);
  EXPECT_EQ(rd(kTpr), 0u);
  EXPECT_EQ(rd(kLvtTimer), kMasked);
  EXPECT_EQ(rd(kLvtLint0), 0x700u);  // virtual wire: ExtINT, unmasked
  EXPECT_EQ(rd(kLvtLint1), kMasked);
  EXPECT_EQ(rd(kLvtError), kMasked);
  EXPECT_EQ(rd(kDivide), 0u);
  EXPECT_TRUE(apic.accepts_pic_interrupts());
  EXPECT_FALSE(apic.interrupt_pending());
}

TEST_F(LocalApicTest, BaseMsrRelocatesDisablesAndRefusesReservedBits) {
  int changes = 0;
  apic.set_base_listener([&] { ++changes; });
  EXPECT_TRUE(apic.claims(0xFEE00000));
  EXPECT_TRUE(apic.claims(0xFEE00FFF));
  EXPECT_FALSE(apic.claims(0xFEE01000));
  // Reserved bits, x2APIC enable, addresses beyond 32 bits: #GP, nothing changes.
  for (const uint64_t bad : {0xFEE00901ull, 0xFEE00D00ull, 0x1FEE00900ull, 0xFEE00B00ull}) {
    EXPECT_FALSE(apic.write_base_msr(bad)) << std::hex << bad;
  }
  EXPECT_EQ(changes, 0);
  ASSERT_TRUE(apic.write_base_msr(0x12345800));  // relocate; the BSP flag is not software's
  EXPECT_EQ(apic.base_msr(), 0x12345900u);
  EXPECT_EQ(changes, 1);
  EXPECT_TRUE(apic.claims(0x12345020));
  EXPECT_FALSE(apic.claims(0xFEE00020));
  enable();
  wr(kTpr, 0x30);
  ASSERT_TRUE(apic.write_base_msr(0x12345000));  // global disable: back to the reset state
  EXPECT_FALSE(apic.globally_enabled());
  EXPECT_FALSE(apic.claims(0x12345020));
  EXPECT_TRUE(apic.accepts_pic_interrupts());
  EXPECT_EQ(apic.tpr(), 0);
  EXPECT_FALSE(apic.software_enabled());
  ASSERT_TRUE(apic.write_base_msr(0xFEE00800));  // and enabled again
  EXPECT_TRUE(apic.claims(0xFEE00000));
  EXPECT_EQ(changes, 3);
}

TEST_F(LocalApicTest, WritableBitsOfTheRegisters) {
  enable();
  struct Case {
    uint64_t offset;
    uint32_t written;
    uint32_t read;
  };
  for (const Case& c : {
           Case{kId, 0xFFFFFFFF, 0xFF000000},
           Case{kTpr, 0xFFFFFFFF, 0xFF},
           Case{kLdr, 0xFFFFFFFF, 0xFF000000},
           Case{kDfr, 0x0, 0x0FFFFFFF},
           Case{kSvr, 0xFFFFFFFF, 0x1FF},
           Case{kDivide, 0xFFFFFFFF, 0xB},
           Case{kLvtTimer, 0xFFFFFFFF, 0x000300FF},  // no TSC-deadline mode
           Case{kLvtLint0, 0xFFFFFFFF, 0x0001A7FF},  // remote IRR and delivery status read-only
           Case{kLvtError, 0xFFFFFFFF, 0x000100FF},
           Case{kIcrHigh, 0xFFFFFFFF, 0xFF000000},
           Case{kVersion, 0, 0x00050014},  // read-only registers ignore writes
           Case{kIrr, 0xFFFFFFFF, 0},
       }) {
    wr(c.offset, c.written);
    EXPECT_EQ(rd(c.offset), c.read) << std::hex << c.offset;
  }
}

TEST_F(LocalApicTest, PprFollowsTprAndTheInServiceClass) {
  enable();
  wr(kTpr, 0x20);
  EXPECT_EQ(rd(kPpr), 0x20u);
  self_ipi(0x51);
  ASSERT_TRUE(apic.interrupt_pending());
  EXPECT_EQ(apic.acknowledge(), 0x51);
  EXPECT_EQ(rd(kPpr), 0x50u);  // the in-service class outranks TPR
  wr(kTpr, 0x5A);
  EXPECT_EQ(rd(kPpr), 0x5Au);  // same class: TPR, with its low bits
  wr(kTpr, 0x61);
  EXPECT_EQ(rd(kPpr), 0x61u);
  wr(kTpr, 0);
  wr(kEoi, 0);
  EXPECT_EQ(rd(kPpr), 0u);
}

TEST_F(LocalApicTest, DeliversOnlyAbovePprClass) {
  enable();
  wr(kTpr, 0x40);
  self_ipi(0x45);
  EXPECT_TRUE(apic.irr_bit(0x45));
  EXPECT_FALSE(apic.interrupt_pending());  // class 4 is not above TPR's class 4
  wr(kTpr, 0x3F);
  ASSERT_TRUE(apic.interrupt_pending());
  EXPECT_EQ(apic.acknowledge(), 0x45);
  EXPECT_TRUE(apic.isr_bit(0x45));
  EXPECT_FALSE(apic.irr_bit(0x45));
  self_ipi(0x41);  // same class as the one in service: waits
  EXPECT_FALSE(apic.interrupt_pending());
  self_ipi(0x61);  // a higher class nests
  ASSERT_TRUE(apic.interrupt_pending());
  EXPECT_EQ(apic.acknowledge(), 0x61);
  EXPECT_EQ(rd(kIsr + 0x30), 1u << (0x61 - 0x60));  // 256 bits, 32 per register
  EXPECT_EQ(rd(kIsr + 0x20), 1u << (0x45 - 0x40));
  wr(kEoi, 0);  // retires 0x61, the highest in service
  EXPECT_FALSE(apic.isr_bit(0x61));
  EXPECT_FALSE(apic.interrupt_pending());  // 0x41 still below 0x45's class
  wr(kEoi, 0);
  ASSERT_TRUE(apic.interrupt_pending());
  EXPECT_EQ(apic.acknowledge(), 0x41);
  wr(kEoi, 0);
  EXPECT_TRUE(eois.empty());  // edge-triggered: no broadcast
  EXPECT_EQ(apic.stats().eois, 3u);
  EXPECT_EQ(apic.stats().ipi_interrupts, 3u);
}

TEST_F(LocalApicTest, SpuriousVectorWhenNothingBeatsThePpr) {
  wr(kSvr, 0x1EF);
  EXPECT_EQ(apic.acknowledge(), 0xEF);
  EXPECT_EQ(apic.stats().spurious, 1u);
  EXPECT_EQ(rd(kIsr + 0xE0), 0u);  // nothing put in service
}

TEST_F(LocalApicTest, LevelTriggeredVectorsBroadcastTheirEoi) {
  enable();
  ApicMessage level;
  level.vector = 0x39;
  level.level_triggered = true;
  apic.deliver(level);
  ApicMessage edge;
  edge.vector = 0x31;
  apic.deliver(edge);
  EXPECT_TRUE(apic.tmr_bit(0x39));
  EXPECT_FALSE(apic.tmr_bit(0x31));
  EXPECT_EQ(rd(kTmr + 0x10), 1u << (0x39 - 0x20));
  EXPECT_EQ(apic.acknowledge(), 0x39);
  wr(kEoi, 0);
  EXPECT_EQ(apic.acknowledge(), 0x31);
  wr(kEoi, 0);
  EXPECT_EQ(eois, std::vector<uint8_t>{0x39});
  EXPECT_EQ(apic.stats().ioapic_interrupts, 2u);
  EXPECT_EQ(apic.stats().eoi_broadcasts, 1u);
}

TEST_F(LocalApicTest, IllegalVectorsAndRegistersSetEsrBits) {
  enable();
  wr(kLvtError, 0xFE);
  self_ipi(5);  // vectors 0-15 are illegal
  EXPECT_FALSE(apic.irr_bit(5));
  EXPECT_EQ(latched_esr(), LocalApic::kEsrSendIllegalVector);
  EXPECT_EQ(latched_esr(), 0u);  // a second write latches the (no) errors since
  ASSERT_TRUE(apic.interrupt_pending());
  EXPECT_EQ(apic.acknowledge(), 0xFE);  // the error LVT fired
  wr(kEoi, 0);
  // A reserved register, read or written.
  EXPECT_EQ(rd(0x2F0), 0u);  // no CMCI LVT in this version
  wr(0x400, 1);
  EXPECT_EQ(latched_esr(), LocalApic::kEsrIllegalRegister);
  // An LVT entry with an illegal vector: the interrupt is refused on receipt.
  wr(kInitialCount, 0);
  wr(kLvtLint1, 0x0003);
  apic.set_lint(1, true);
  EXPECT_EQ(latched_esr(), LocalApic::kEsrReceiveIllegalVector);
  EXPECT_EQ(apic.stats().error_interrupts, 4u);  // one per error detected
}

TEST_F(LocalApicTest, ErrorLvtWithAnIllegalVectorDoesNotRecurse) {
  enable();
  wr(kLvtError, 0x02);
  self_ipi(1);
  EXPECT_EQ(latched_esr(), LocalApic::kEsrSendIllegalVector | LocalApic::kEsrReceiveIllegalVector);
  EXPECT_FALSE(apic.interrupt_pending());
}

TEST_F(LocalApicTest, NarrowAndOutOfRangeAccessesAreHarmless) {
  enable();
  wr(kTpr, 0xA5);
  EXPECT_EQ(apic.read(kTpr, 1), 0xA5u);
  EXPECT_EQ(apic.read(kVersion + 2, 1), 0x05u);  // the bytes of the register
  EXPECT_EQ(apic.read(kVersion + 2, 2), 0x0005u);
  EXPECT_EQ(apic.read(kVersion + 4, 4), 0u);  // beyond the first dword of the slot
  apic.write(kTpr, 1, 0x11);                  // narrower than 32 bits: dropped
  apic.write(kTpr + 4, 4, 0x22);              // not at the register: dropped
  EXPECT_EQ(rd(kTpr), 0xA5u);
  EXPECT_EQ(apic.read(0x1000, 4), 0u);
  EXPECT_EQ(apic.read(~uint64_t{0}, 4), 0u);
  apic.write(0xFFFFFFFFFFull, 4, 0xFFFFFFFF);
  // Every register, hostile values: nothing breaks, and the timer stays bounded.
  for (uint64_t offset = 0; offset < 0x1000; offset += 4) {
    if (offset == kSvr) continue;
    wr(offset, 0xFFFFFFFF);
    (void)rd(offset);
  }
  advance_to(1'000'000'000'000);
  EXPECT_LE(timers.size(), 1u);
}

TEST_F(LocalApicTest, SoftwareDisableMasksTheLvtAndHoldsRequests) {
  enable();
  wr(kLvtTimer, 0x30);
  wr(kLvtLint0, 0x700);
  self_ipi(0x40);
  wr(kSvr, 0xFF);  // software disable
  EXPECT_EQ(rd(kLvtTimer), 0x30u | kMasked);
  EXPECT_EQ(rd(kLvtLint0), 0x700u | kMasked);
  wr(kLvtTimer, 0x31);  // the mask stays while disabled
  EXPECT_EQ(rd(kLvtTimer), 0x31u | kMasked);
  EXPECT_TRUE(apic.irr_bit(0x40));
  EXPECT_FALSE(apic.interrupt_pending());
  EXPECT_TRUE(apic.accepts_pic_interrupts());  // the 8259 reaches the CPU directly
  self_ipi(0x50);                              // fixed messages are not accepted now
  EXPECT_FALSE(apic.irr_bit(0x50));
  enable();
  EXPECT_TRUE(apic.interrupt_pending());
  EXPECT_FALSE(apic.accepts_pic_interrupts());  // LINT0 is still masked
  wr(kLvtLint0, 0x700);
  EXPECT_TRUE(apic.accepts_pic_interrupts());
}

TEST_F(LocalApicTest, Lint0AndLint1DeliveryModes) {
  enable();
  wr(kLvtLint0, 0x10000 | 0x700);  // masked ExtINT: the 8259 is cut off
  EXPECT_FALSE(apic.accepts_pic_interrupts());
  wr(kLvtLint0, 0x0000 | 0x42);  // fixed, edge
  EXPECT_FALSE(apic.accepts_pic_interrupts());
  apic.set_lint(0, true);
  EXPECT_TRUE(apic.irr_bit(0x42));
  apic.set_lint(0, true);  // no new edge
  EXPECT_EQ(apic.acknowledge(), 0x42);
  wr(kEoi, 0);
  EXPECT_FALSE(apic.interrupt_pending());
  apic.set_lint(0, false);
  wr(kLvtLint1, 0x400);  // NMI
  apic.set_lint(1, true);
  EXPECT_EQ(nmis, 1);
  // Level-triggered fixed: remote IRR until the EOI; a pin still high requests again.
  wr(kLvtLint0, 0x8000 | 0x43);
  apic.set_lint(0, true);
  EXPECT_EQ(rd(kLvtLint0) & (1u << 14), 1u << 14);
  EXPECT_EQ(apic.acknowledge(), 0x43);
  wr(kEoi, 0);
  EXPECT_EQ(eois, std::vector<uint8_t>{0x43});
  EXPECT_TRUE(apic.irr_bit(0x43));
  EXPECT_EQ(apic.acknowledge(), 0x43);
  apic.set_lint(0, false);
  wr(kEoi, 0);
  EXPECT_FALSE(apic.irr_bit(0x43));
  EXPECT_EQ(rd(kLvtLint0) & (1u << 14), 0u);
  EXPECT_EQ(apic.stats().lint_interrupts, 3u);
}

TEST_F(LocalApicTest, IpiDestinationsOnAUniprocessor) {
  enable();
  wr(kId, 0x03000000);
  const auto ipi = [&](uint32_t low, uint8_t dest) {
    wr(kIcrHigh, uint32_t{dest} << 24);
    wr(kIcrLow, low);
  };
  ipi(0x50, 3);  // physical, our ID
  EXPECT_TRUE(apic.irr_bit(0x50));
  ipi(0x51, 4);  // another CPU's ID: nobody here
  EXPECT_FALSE(apic.irr_bit(0x51));
  ipi(0x52, 0xFF);  // physical broadcast
  EXPECT_TRUE(apic.irr_bit(0x52));
  ipi((3u << 18) | 0x53, 3);  // all excluding self
  EXPECT_FALSE(apic.irr_bit(0x53));
  ipi((2u << 18) | 0x54, 0);  // all including self
  EXPECT_TRUE(apic.irr_bit(0x54));
  ipi((1u << 18) | 0x55, 7);  // self, whatever the destination
  EXPECT_TRUE(apic.irr_bit(0x55));
  // Logical, flat model: a bit of the LDR.
  wr(kLdr, 0x04000000);
  ipi((1u << 11) | 0x56, 0x04);
  EXPECT_TRUE(apic.irr_bit(0x56));
  ipi((1u << 11) | 0x57, 0x0B);
  EXPECT_FALSE(apic.irr_bit(0x57));
  // Logical, cluster model: cluster 2, member bit 1.
  wr(kDfr, 0x0FFFFFFF);
  wr(kLdr, 0x22000000);
  ipi((1u << 11) | 0x58, 0x23);
  EXPECT_TRUE(apic.irr_bit(0x58));
  ipi((1u << 11) | 0x59, 0x32);  // cluster 3
  EXPECT_FALSE(apic.irr_bit(0x59));
  ipi((1u << 11) | 0x5A, 0xF2);  // every cluster, member bit 1
  EXPECT_TRUE(apic.irr_bit(0x5A));
  // Lowest priority with one CPU: this one.
  ipi((1u << 8) | 0x5B, 3);
  EXPECT_TRUE(apic.irr_bit(0x5B));
  EXPECT_EQ(rd(kIcrLow) & (1u << 12), 0u);  // delivery status: idle at once
}

TEST_F(LocalApicTest, NmiSmiInitAndStartUpIpis) {
  enable();
  wr(kIcrLow, (1u << 18) | 0x400);  // NMI to self: only fixed is valid with "self"
  EXPECT_EQ(nmis, 0);
  wr(kIcrLow, (2u << 18) | 0x400);  // NMI to all including self
  EXPECT_EQ(nmis, 1);
  wr(kIcrLow, (2u << 18) | 0x200);  // SMI: no SMM, ignored
  EXPECT_EQ(apic.stats().dropped_messages, 2u);
  wr(kTpr, 0x20);
  wr(kIcrLow, (2u << 18) | 0x8000 | 0x500);  // INIT level de-assert: no effect
  EXPECT_EQ(inits, 0);
  EXPECT_EQ(apic.tpr(), 0x20);
  wr(kIcrLow, (2u << 18) | 0x8000 | 0x4000 | 0x500);  // INIT assert
  EXPECT_EQ(inits, 1);
  EXPECT_EQ(apic.tpr(), 0);  // INIT resets the APIC
  EXPECT_FALSE(apic.software_enabled());
  wr(kIcrLow, (2u << 18) | 0x600 | 0x9A);  // start-up, vector 0x9A
  EXPECT_EQ(startups, std::vector<uint8_t>{0x9A});
  EXPECT_EQ(apic.stats().init_ipis, 1u);
  EXPECT_EQ(apic.stats().startup_ipis, 1u);
}

TEST_F(LocalApicTest, OneShotTimerCountsDownAndFiresOnce) {
  enable();
  wr(kDivide, kDivideBy1);
  wr(kLvtTimer, 0x30);
  clock.set(1000);
  wr(kInitialCount, 1000);
  EXPECT_EQ(rd(kCurrentCount), 1000u);
  advance_to(1400);
  EXPECT_EQ(rd(kCurrentCount), 600u);
  EXPECT_FALSE(apic.irr_bit(0x30));
  advance_to(1999);
  EXPECT_FALSE(apic.irr_bit(0x30));
  advance_to(2000);
  EXPECT_TRUE(apic.irr_bit(0x30));
  EXPECT_EQ(rd(kCurrentCount), 0u);
  EXPECT_EQ(apic.acknowledge(), 0x30);
  wr(kEoi, 0);
  advance_to(10'000);
  EXPECT_FALSE(apic.irr_bit(0x30));
  EXPECT_EQ(apic.stats().timer_fires, 1u);
  EXPECT_EQ(apic.stats().timer_interrupts, 1u);
  EXPECT_FALSE(timers.next_deadline());
}

TEST_F(LocalApicTest, PeriodicTimerWithDivider) {
  enable();
  wr(kDivide, kDivideBy16);
  wr(kLvtTimer, kPeriodic | 0x31);
  wr(kInitialCount, 100);  // 100 counts of 16 ns: 1600 ns
  EXPECT_EQ(timers.next_deadline(), 1600u);
  advance_to(800);
  EXPECT_EQ(rd(kCurrentCount), 50u);
  advance_to(1600);
  EXPECT_TRUE(apic.irr_bit(0x31));
  EXPECT_EQ(rd(kCurrentCount), 100u);  // reloaded
  EXPECT_EQ(apic.acknowledge(), 0x31);
  wr(kEoi, 0);
  advance_to(3200);
  EXPECT_TRUE(apic.irr_bit(0x31));
  // Late by several periods: one interrupt (the IRR holds one), then back in phase.
  EXPECT_EQ(apic.acknowledge(), 0x31);
  wr(kEoi, 0);
  advance_to(10'000);
  EXPECT_EQ(timers.next_deadline(), 11'200u);
  EXPECT_EQ(apic.stats().timer_fires, 3u);
  // Initial count 0 stops it.
  wr(kInitialCount, 0);
  EXPECT_FALSE(timers.next_deadline());
  EXPECT_EQ(rd(kCurrentCount), 0u);
}

TEST_F(LocalApicTest, DividerChangeKeepsTheCount) {
  enable();
  wr(kDivide, kDivideBy1);
  wr(kLvtTimer, 0x32);
  wr(kInitialCount, 1000);
  advance_to(300);
  EXPECT_EQ(rd(kCurrentCount), 700u);
  wr(kDivide, 0x0);  // divide by 2
  EXPECT_EQ(rd(kCurrentCount), 700u);
  advance_to(500);
  EXPECT_EQ(rd(kCurrentCount), 600u);
  EXPECT_EQ(timers.next_deadline(), 300u + 1400u);
  for (const auto& [config, shift] :
       {std::pair{0x1u, 2u}, {0x2u, 3u}, {0x3u, 4u}, {0x8u, 5u}, {0x9u, 6u}, {0xAu, 7u}, {0xBu, 0u}}) {
    wr(kDivide, config);
    wr(kInitialCount, 10);
    EXPECT_EQ(timers.next_deadline(), clock.now_ns() + (10u << shift)) << config;
  }
}

TEST_F(LocalApicTest, MaskedTimerCountsButDoesNotInterrupt) {
  enable();
  wr(kDivide, kDivideBy1);
  wr(kLvtTimer, kMasked | kPeriodic | 0x33);
  wr(kInitialCount, 100);
  EXPECT_FALSE(timers.next_deadline());
  advance_to(250);
  EXPECT_EQ(rd(kCurrentCount), 50u);
  wr(kLvtTimer, kPeriodic | 0x33);  // unmasked: the next period end interrupts
  EXPECT_EQ(timers.next_deadline(), 300u);
  advance_to(300);
  EXPECT_TRUE(apic.irr_bit(0x33));
}

class LocalApicCrystalTest : public LocalApicTest {
 protected:
  LocalApicCrystalTest() : LocalApicTest(25'000'000) {}  // a 25 MHz crystal: 40 ns a count
};

TEST_F(LocalApicCrystalTest, TimerCountsAtTheGivenRate) {
  enable();
  wr(kDivide, kDivideBy1);
  wr(kLvtTimer, 0x34);
  wr(kInitialCount, 25'000);  // 1 ms
  advance_to(500'000);
  EXPECT_EQ(rd(kCurrentCount), 12'500u);
  EXPECT_EQ(timers.next_deadline(), 1'000'000u);
  advance_to(1'000'000);
  EXPECT_TRUE(apic.irr_bit(0x34));
}

TEST_F(LocalApicTest, ResetRestoresThePowerOnState) {
  enable();
  ASSERT_TRUE(apic.write_base_msr(0x10000800));
  wr(kLvtTimer, 0x35);
  wr(kInitialCount, 5);
  self_ipi(0x60);
  int changes = 0;
  apic.set_base_listener([&] { ++changes; });
  apic.reset();
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(apic.base_msr(), 0xFEE00900u);
  EXPECT_FALSE(apic.irr_bit(0x60));
  EXPECT_FALSE(timers.next_deadline());
  EXPECT_EQ(rd(kLvtLint0), 0x700u);
  EXPECT_EQ(rd(kApr), 0u);
}

}  // namespace
}  // namespace vmm86
