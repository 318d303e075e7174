// The local APIC of one CPU, in xAPIC mode (Intel SDM Vol. 3A ch. 10): a 4 KiB register
// page at the physical address in IA32_APIC_BASE (MSR 0x1B; 0xFEE00000 after reset,
// relocatable), taken by the CPU before its accesses reach the bus. Registers (offset):
//   0x020 ID (bits 31:24)          0x030 version (read-only, kVersion)
//   0x080 TPR   0x090 APR   0x0A0 PPR (read-only)   0x0B0 EOI (write-only)
//   0x0D0 LDR (31:24)   0x0E0 DFR (31:28 model, 27:0 read 1)   0x0F0 SVR
//   0x100-0x170 ISR   0x180-0x1F0 TMR   0x200-0x270 IRR (256 bits each, read-only)
//   0x280 ESR (a write latches the errors since the last write)
//   0x300/0x310 ICR low/high (writing the low half sends the IPI)
//   0x320 LVT timer, 0x330 thermal, 0x340 performance counter, 0x350 LINT0, 0x360 LINT1,
//   0x370 error; 0x380 initial count, 0x390 current count, 0x3E0 divide configuration.
// Other offsets are reserved: an access sets ESR bit 7 (illegal register address) and
// reads 0. Registers sit at 16-byte strides; only the first dword of each is decoded, and
// a write narrower than 4 bytes is dropped (the SDM allows only aligned 32-bit accesses).
//
// Version 0x00050014: version 0x14 with 6 LVT entries (max LVT index 5), the xAPIC of
// the Pentium 4 / Pentium M generation - our CPUID is a family 6 model 13 P6 core with
// SSE2 (vmm/machine/cpuid.cpp) - and what QEMU's local APIC reports, so that the guest
// kernel takes the paths it takes on QEMU, where the tests' answers are recorded. (The
// Pentium Pro/II/III report 0x1X with 4-5 entries and P6-bus accept errors.)
//
// Delivery to the CPU (§10.8): an accepted fixed interrupt sets its IRR bit (and its TMR
// bit when level-triggered); the highest IRR vector is handed to the CPU when its
// priority class (vector bits 7:4) is above the PPR's, PPR being TPR when TPR's class is
// at least that of the highest in-service vector, else that vector's class. An EOI clears
// the highest ISR bit and, for a level-triggered vector, tells the IOAPIC (eoi listener).
// Vectors 0-15 are illegal: not accepted, ESR bit 6 (receive) / 5 (send) instead.
// The timer counts at `timer_hz` divided by the divide configuration (2^(1..7) or 1),
// one-shot or periodic, on the machine's virtual clock; TSC-deadline mode is not
// offered (CPUID.1:ECX[24] is clear).
// Software disable (SVR bit 8 clear): every LVT mask bit is set and stays set, pending
// IRR bits are held, nothing is delivered from the IRR.
// One CPU: an IPI reaches only this APIC - when its destination (shorthand, physical ID
// or 0xFF, logical flat or cluster match against LDR/DFR) names it. Fixed and lowest
// priority are accepted as fixed, NMI raises the CPU's NMI, SMI is ignored (no SMM),
// INIT and start-up call the CPU's hooks; the INIT level de-assert only resynchronises
// arbitration IDs (nothing to do). "All excluding self" has no target.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "devices/apic/apic_message.h"
#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"
#include "devices/io_device.h"

namespace vmm86 {

// The local APIC's counters: one row each (statistics, PcPlatformStats).
#define VMM86_APIC_COUNTERS(X)                                            \
  X(timer_interrupts, "APIC timer interrupts accepted into the IRR")      \
  X(ipi_interrupts, "self-IPIs accepted (fixed, lowest priority)")        \
  X(ioapic_interrupts, "IOAPIC messages accepted")                        \
  X(lint_interrupts, "LINT0/LINT1 fixed-mode interrupts accepted")        \
  X(error_interrupts, "APIC error interrupts accepted")                   \
  X(acknowledged, "vectors handed from the IRR to the CPU")               \
  X(spurious, "spurious vectors handed to the CPU")                       \
  X(eois, "EOI writes")                                                   \
  X(eoi_broadcasts, "EOIs of level-triggered vectors sent to the IOAPIC") \
  X(timer_fires, "timer expirations, masked or not")                      \
  X(nmis, "NMIs raised (LVT, IPI)")                                       \
  X(init_ipis, "INIT IPIs received")                                      \
  X(startup_ipis, "start-up IPIs received")                               \
  X(dropped_messages, "IPIs and messages with no target here, SMIs")

struct LocalApicStats {
#define VMM86_X(name, what) uint64_t name = 0;
  VMM86_APIC_COUNTERS(VMM86_X)
#undef VMM86_X
};

/// The ICR's destination shorthand (bits 19:18).
enum class IpiShorthand : uint8_t { None, Self, AllIncludingSelf, AllExcludingSelf };

class LocalApic;
/// Where an IPI for other CPUs goes (the machine's APIC bus, with every CPU's APIC on it).
/// Without one, this APIC is the only one: IPIs reach it or no one.
using IpiRoute = std::function<void(const LocalApic& from, const ApicMessage& message, IpiShorthand shorthand)>;

/// What the local APIC raises in its CPU besides maskable interrupts.
struct ApicCpuSignals {
  std::function<void()> nmi;
  /// An INIT was accepted (the APIC has already reset itself, SDM §10.4.7.3).
  std::function<void()> init;
  /// A start-up IPI with its vector (the CPU starts at vector << 12).
  std::function<void(uint8_t vector)> startup;
};

class LocalApic final : public MmioDevice, public ApicMessageSink {
 public:
  static constexpr uint32_t kMsrApicBase = 0x1B;
  static constexpr uint64_t kDefaultBase = 0xFEE00000;
  static constexpr uint64_t kBaseBsp = 1u << 8;
  static constexpr uint64_t kBaseEnable = 1u << 11;
  static constexpr uint64_t kPageSize = 0x1000;
  static constexpr uint32_t kVersion = 0x00050014;
  /// The bus clock of QEMU's local APIC; the machine passes the CPU's crystal instead
  /// when CPUID leaf 0x15 reports one (SDM §10.5.4: the timer then counts at that rate).
  static constexpr uint64_t kDefaultTimerHz = 1'000'000'000;

  /// LVT entries, in register order from 0x320.
  enum class Lvt : uint8_t { Timer, Thermal, Performance, Lint0, Lint1, Error };
  static constexpr unsigned kLvtCount = 6;

  /// ESR bits (SDM Figure 10-9, xAPIC).
  static constexpr uint32_t kEsrSendIllegalVector = 1u << 5;
  static constexpr uint32_t kEsrReceiveIllegalVector = 1u << 6;
  static constexpr uint32_t kEsrIllegalRegister = 1u << 7;

  /// `clock` and `timers` must outlive the APIC. Starts in the reset state.
  LocalApic(const VirtualClock& clock, TimerQueue& timers, uint8_t id, uint64_t timer_hz = kDefaultTimerHz);
  LocalApic(const LocalApic&) = delete;
  LocalApic& operator=(const LocalApic&) = delete;

  /// Power-up or RESET: IA32_APIC_BASE back to 0xFEE00000 | BSP | enable, registers as
  /// after INIT, the ID the one given at construction, and LINT0 in ExtINT mode unmasked:
  /// the virtual wire that firmware sets up on the BSP (QEMU's reset does the same), so the
  /// 8259 reaches the CPU through LINT0 once software enables the APIC.
  void reset();

  // --- IA32_APIC_BASE ---------------------------------------------------------------
  [[nodiscard]] uint64_t base_msr() const { return base_msr_; }
  /// False for a value the CPU refuses with #GP (reserved bits, x2APIC enable).
  /// Clearing the global enable returns the APIC to its reset state (SDM §10.4.3);
  /// setting it again works (front-side-bus APICs can be re-enabled).
  [[nodiscard]] bool write_base_msr(uint64_t value);
  [[nodiscard]] bool globally_enabled() const { return (base_msr_ & kBaseEnable) != 0; }
  [[nodiscard]] bool software_enabled() const { return (svr_ & kSvrEnable) != 0; }
  /// The register page's physical address.
  [[nodiscard]] uint64_t base_address() const { return base_msr_ & kBaseAddressMask; }
  /// True when a physical access at `addr` is taken by this APIC.
  [[nodiscard]] bool claims(uint64_t addr) const { return globally_enabled() && addr - base_address() < kPageSize; }
  /// Called after the base address or the global enable changed.
  void set_base_listener(std::function<void()> listener) { base_listener_ = std::move(listener); }

  // --- Registers (MmioDevice: offsets in the page) -------------------------------------
  uint32_t read(uint64_t offset, unsigned size) override;
  void write(uint64_t offset, unsigned size, uint32_t value) override;

  // --- Interrupt inputs ----------------------------------------------------------------
  /// A message from the IOAPIC, taken when its destination names this APIC.
  void deliver(const ApicMessage& message) override;
  /// An IPI the bus routed here (the bus has matched the destination or shorthand).
  void receive_ipi(const ApicMessage& message);
  /// The message's destination names this APIC (physical ID or logical LDR/DFR match).
  [[nodiscard]] bool matches(const ApicMessage& message) const;
  /// IPIs with a destination other than self go to `route` (SMP machines).
  void set_ipi_route(IpiRoute route) { ipi_route_ = std::move(route); }
  /// Called when the CPU has something new to take: an interrupt above the PPR, an NMI,
  /// INIT or start-up. An SMP machine kicks the vCPU that owns this APIC out of guest code
  /// or out of its sleep; the callee may run on any vCPU's thread.
  void set_wake_listener(std::function<void()> listener) { wake_listener_ = std::move(listener); }
  /// The LINT0 (pin 0, the 8259's INTR) and LINT1 (pin 1) input levels.
  void set_lint(unsigned pin, bool level);

  // --- The CPU side ----------------------------------------------------------------------
  /// An IRR vector beats the PPR (the CPU takes it when IF allows). Kept up to date by
  /// every change of IRR, ISR, TPR and the enables: the interpreter asks before each
  /// instruction.
  [[nodiscard]] bool interrupt_pending() const { return pending_; }
  /// The interrupt acknowledge: the highest IRR vector moves to the ISR; with none above
  /// the PPR, the spurious vector (nothing in service).
  [[nodiscard]] uint8_t acknowledge();
  /// The 8259's INTR reaches the CPU: directly while this APIC is globally or software
  /// disabled (the virtual wire of a CPU whose APIC is off), or through LINT0 unmasked in
  /// ExtINT mode, where its vector comes from the 8259's INTA cycle, ahead of IRR
  /// vectors (ExtINT has no priority class).
  [[nodiscard]] bool accepts_pic_interrupts() const;
  /// Called with the vector of every EOI of a level-triggered interrupt (the broadcast
  /// that clears the IOAPIC's remote IRR).
  void set_eoi_listener(std::function<void(uint8_t)> listener) { eoi_listener_ = std::move(listener); }
  void set_cpu_signals(ApicCpuSignals signals) { signals_ = std::move(signals); }

  // --- Inspection (tests, statistics) ----------------------------------------------------
  [[nodiscard]] uint8_t id() const { return id_; }
  [[nodiscard]] uint8_t tpr() const { return tpr_; }
  [[nodiscard]] uint8_t ppr() const;
  [[nodiscard]] uint32_t lvt(Lvt entry) const { return lvt_[static_cast<unsigned>(entry)]; }
  [[nodiscard]] bool irr_bit(uint8_t vector) const { return test(irr_, vector); }
  [[nodiscard]] bool isr_bit(uint8_t vector) const { return test(isr_, vector); }
  [[nodiscard]] bool tmr_bit(uint8_t vector) const { return test(tmr_, vector); }
  [[nodiscard]] uint32_t current_count() const;
  [[nodiscard]] const LocalApicStats& stats() const { return stats_; }

 private:
  using Bits256 = std::array<uint32_t, 8>;
  static constexpr uint64_t kBaseAddressMask = 0xFFFFF000;
  static constexpr uint32_t kSvrEnable = 1u << 8;
  static constexpr uint32_t kLvtMask = 1u << 16;

  static bool test(const Bits256& bits, uint8_t v) { return (bits[v >> 5] >> (v & 31)) & 1u; }
  static void set(Bits256& bits, uint8_t v) { bits[v >> 5] |= 1u << (v & 31); }
  static void clear(Bits256& bits, uint8_t v) { bits[v >> 5] &= ~(1u << (v & 31)); }
  /// The highest set bit's vector, or -1.
  static int highest(const Bits256& bits);

  /// INIT: every register to its power-up value except the ID (SDM §10.4.7.1/3).
  void init_registers();
  [[nodiscard]] uint32_t read_register(unsigned index);
  void write_register(unsigned index, uint32_t value);
  void write_lvt(Lvt entry, uint32_t value);
  void write_svr(uint32_t value);
  /// Takes a fixed interrupt into the IRR; false (and an ESR error) for vectors 0-15.
  bool accept(uint8_t vector, bool level_triggered);
  /// An LVT entry fires (timer, LINT pins, error): delivered by its delivery mode.
  void local_interrupt(Lvt entry);
  void end_of_interrupt();
  void send_ipi();
  /// This APIC's part of a message: its delivery mode's effect.
  void receive(const ApicMessage& message, uint64_t LocalApicStats::*source);
  void update_pending();
  void signal_error(uint32_t esr_bits);

  // Timer. Time is counted in ticks of the APIC's input clock since the clock's zero.
  [[nodiscard]] uint64_t tick_of_ns(uint64_t ns) const;
  [[nodiscard]] uint64_t now_tick() const { return tick_of_ns(clock_.now_ns()); }
  [[nodiscard]] uint64_t ns_of_tick(uint64_t tick) const;
  [[nodiscard]] unsigned divide_shift() const;
  /// Counts elapsed since the count was loaded (for one period in periodic mode).
  [[nodiscard]] uint64_t elapsed_counts(uint64_t tick) const;
  [[nodiscard]] bool periodic() const { return (lvt(Lvt::Timer) & kTimerPeriodic) != 0; }
  /// Arms the deadline of the next expiry after `tick` that must interrupt, or disarms it.
  void rearm_timer(uint64_t tick);
  void timer_expired(uint64_t now_ns);
  static constexpr uint32_t kTimerPeriodic = 1u << 17;

  const VirtualClock& clock_;
  const uint8_t initial_id_;
  const uint64_t timer_hz_;
  uint64_t base_msr_ = 0;
  uint8_t id_ = 0;
  uint8_t tpr_ = 0;
  uint8_t ldr_ = 0;
  uint8_t dfr_model_ = 0xF;
  uint32_t svr_ = 0xFF;
  Bits256 isr_{}, tmr_{}, irr_{};
  uint32_t esr_ = 0;          ///< what the last ESR write latched
  uint32_t esr_pending_ = 0;  ///< errors since then
  uint32_t icr_low_ = 0, icr_high_ = 0;
  std::array<uint32_t, kLvtCount> lvt_{};
  std::array<bool, 2> lint_level_{};
  uint32_t initial_count_ = 0;
  uint32_t divide_config_ = 0;
  uint64_t count_start_tick_ = 0;  ///< input-clock tick at which the count (re)started
  bool in_error_interrupt_ = false;
  bool pending_ = false;  ///< interrupt_pending()
  DeviceTimer timer_;
  std::function<void()> base_listener_;
  std::function<void(uint8_t)> eoi_listener_;
  ApicCpuSignals signals_;
  IpiRoute ipi_route_;
  std::function<void()> wake_listener_;
  LocalApicStats stats_;
};

}  // namespace vmm86
