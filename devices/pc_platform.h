// The PC legacy platform in one place: creates the devices of a uniprocessor PC without
// ACPI/MP tables (what the first guest, Debian's 686 Linux kernel, runs on) and
// registers them at their standard ports:
//   0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1  8259A pair + ELCR   (INT -> the vCPU)
//   0x40-0x43, 0x61                     8254 PIT + port B   (IRQ 0)
//   0x60, 0x64                          i8042               (IRQ 1, 12, reset, A20)
//   0x70-0x71                           MC146818 RTC/CMOS   (IRQ 8)
//   0x3F8-0x3FF                         16550A COM1         (IRQ 4)
//   0x2F8-0x2FF                         16550A COM2         (IRQ 3, optional)
//   0x00-0x0F, 0xC0-0xDF, 0x81-0x8F     8237A DMA pair + page registers (0x80 is the POST port)
//   0x80, 0xE9                          POST code, debug console
// With PcPlatformConfig::apic, also the CPU's local APIC (at IA32_APIC_BASE, 0xFEE00000)
// and the IOAPIC (0xFEC00000). Every ISA IRQ then drives the 8259 input and the IOAPIC pin
// of the same number, except IRQ 0 (the PIT), which reaches IOAPIC pin 2 as on QEMU's and
// most PCs' boards (the firmware's interrupt source override says so); pin 0 is not wired.
// The machine (vmm/) drives it from the vCPU thread; see devices/README.md for the
// wiring of interrupts, timers and the terminal.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/apic/io_apic.h"
#include "devices/apic/local_apic.h"
#include "devices/bus.h"
#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"
#include "devices/legacy/debug_ports.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/isa_dma.h"
#include "devices/legacy/pic8259.h"
#include "devices/legacy/pit8254.h"
#include "devices/legacy/rtc_cmos.h"
#include "devices/legacy/system_control_port.h"
#include "devices/legacy/uart16550.h"
#include "devices/log.h"

namespace vmm86 {

// The devices whose port accesses are counted: one row each, the single source for
// PcDevice and PcPlatformStats::PortAccesses.
#define VMM86_PC_DEVICES(X)             \
  X(pic, "8259A PIC pair and ELCR")     \
  X(pit, "8254 PIT and port 0x61")      \
  X(rtc, "MC146818 RTC/CMOS")           \
  X(com1, "16550A COM1")                \
  X(com2, "16550A COM2")                \
  X(i8042, "i8042 keyboard controller") \
  X(port92, "system control port A")    \
  X(dma, "8237A DMA pair and pages")    \
  X(post, "POST code port 0x80")        \
  X(debugcon, "debug console port 0xE9")

// Platform-wide counters (besides per-device port accesses and per-IRQ edges).
#define VMM86_PC_COUNTERS(X)                                            \
  X(unhandled_port_accesses, "port accesses no device claimed")         \
  X(interrupts_acknowledged, "INTA cycles (vectors handed to the CPU)") \
  X(spurious_interrupts, "of which spurious IRQ 7 / 15")                \
  X(timer_callbacks, "device timer callbacks run")                      \
  X(serial_tx_bytes, "bytes the guest sent on COM1/COM2")               \
  X(serial_rx_bytes, "bytes the host pushed into COM1/COM2")            \
  X(reset_requests, "system resets asked for by the guest")

enum class PcDevice : uint8_t {
#define VMM86_X(name, what) name,
  VMM86_PC_DEVICES(VMM86_X)
#undef VMM86_X
};

struct PcPlatformStats {
  struct PortAccesses {
#define VMM86_X(name, what) uint64_t name = 0;
    VMM86_PC_DEVICES(VMM86_X)
#undef VMM86_X
  };
  PortAccesses port_accesses;
#define VMM86_X(name, what) uint64_t name = 0;
  VMM86_PC_COUNTERS(VMM86_X)
#undef VMM86_X
  std::array<uint64_t, 16> irq_raised{};  ///< rising edges at each PIC input
  LocalApicStats apic;                    ///< zero without an APIC
  IoApicStats ioapic;

  /// Calls f(name, value) for every counter, e.g. "port_accesses.pit", "irq_raised.0";
  /// `name` converts to std::string_view.
  template <class F>
  void for_each(F&& f) const {
#define VMM86_X(name, what) f("port_accesses." #name, port_accesses.name);
    VMM86_PC_DEVICES(VMM86_X)
#undef VMM86_X
#define VMM86_X(name, what) f(#name, name);
    VMM86_PC_COUNTERS(VMM86_X)
#undef VMM86_X
    for (unsigned i = 0; i < irq_raised.size(); ++i) f("irq_raised." + std::to_string(i), irq_raised[i]);
#define VMM86_X(name, what) f("apic." #name, apic.name);
    VMM86_APIC_COUNTERS(VMM86_X)
#undef VMM86_X
#define VMM86_X(name, what) f("ioapic." #name, ioapic.name);
    VMM86_IOAPIC_COUNTERS(VMM86_X)
#undef VMM86_X
  }
};

struct PcPlatformConfig {
  /// Guest RAM below 4 GiB, for the CMOS memory-size bytes (0 leaves them zero).
  uint64_t ram_below_4g = 0;
  /// Also create COM2 at 0x2F8, IRQ 3.
  bool com2 = false;
  /// The RTC's time at start, ns since the Unix epoch; nullopt: the host's wall clock.
  std::optional<int64_t> rtc_start_unix_ns;
  /// Where device diagnostics go (unhandled ports); empty: stderr.
  LogFn log;
  /// Guest RAM for the ISA DMA controller (outlives the platform); null: DMA moves nothing.
  DmaMemory* dma_memory = nullptr;
  /// A local APIC per CPU (IDs 0..cpu_count-1, 0 the BSP) and an IOAPIC.
  bool apic = false;
  /// CPUs, each with its local APIC (more than one needs `apic`).
  unsigned cpu_count = 1;
  /// The local APIC timer's input clock (LocalApic::kDefaultTimerHz: QEMU's 1 GHz).
  uint64_t apic_timer_hz = LocalApic::kDefaultTimerHz;
};

enum class SerialPort : uint8_t { Com1, Com2 };

class PcPlatform {
 public:
  /// `clock` must outlive the platform.
  PcPlatform(const VirtualClock& clock, PcPlatformConfig config);
  PcPlatform(const PcPlatform&) = delete;
  PcPlatform& operator=(const PcPlatform&) = delete;

  // --- The CPU side -------------------------------------------------------------
  [[nodiscard]] IoBus& io_bus() { return io_bus_; }
  [[nodiscard]] MmioBus& mmio_bus() { return mmio_bus_; }
  /// A physical access CPU `cpu` does outside RAM: its local APIC's page if it claims the
  /// address (it sits in the CPU, before the bus), else the MMIO bus.
  [[nodiscard]] uint32_t mmio_read(GuestPhys addr, unsigned size, unsigned cpu = 0);
  void mmio_write(GuestPhys addr, unsigned size, uint32_t value, unsigned cpu = 0);
  /// CPU `cpu`'s INTR: the 8259's INT output where it reaches the CPU (the BSP only: no
  /// APIC, or its APIC passes it: LocalApic::accepts_pic_interrupts), or a local APIC
  /// vector above its PPR. Deliver when the guest's IF is set.
  [[nodiscard]] bool interrupt_pending(unsigned cpu = 0) const;
  /// The INTA cycle: the vector to deliver (the 8259's first: ExtINT has no priority).
  [[nodiscard]] uint8_t acknowledge_interrupt(unsigned cpu = 0);
  /// Called with the 8259's new INT level whenever it changes.
  void set_interrupt_listener(std::function<void(bool)> listener) { interrupt_listener_ = std::move(listener); }
  /// The ISA interrupt lines: IRQ n drives 8259 input n and its IOAPIC pin.
  [[nodiscard]] IrqSink& isa_irqs() { return isa_irqs_; }

  // --- Time -----------------------------------------------------------------------
  /// Runs the device timers due at the clock's current time; returns how many ran.
  size_t run_timers();
  [[nodiscard]] std::optional<uint64_t> next_timer_deadline() const { return timers_.next_deadline(); }
  /// Called whenever the earliest deadline changes (re-arm the host timer).
  void set_timer_deadline_listener(std::function<void(std::optional<uint64_t>)> listener) {
    timers_.set_earliest_changed(std::move(listener));
  }

  // --- The host side --------------------------------------------------------------
  void set_serial_output(ByteSink sink, SerialPort port = SerialPort::Com1);
  /// Queues terminal input for the guest; returns how many bytes were taken.
  size_t push_serial_input(std::span<const uint8_t> bytes, SerialPort port = SerialPort::Com1);
  /// Bytes push_serial_input() would take now.
  [[nodiscard]] size_t serial_input_space(SerialPort port = SerialPort::Com1) const;
  void set_debug_console_output(ByteSink sink) { debug_console_.set_output(std::move(sink)); }
  /// Called when the guest resets the machine through the keyboard controller.
  /// Called when the guest resets the machine through the i8042 or port 0x92's fast reset.
  void set_reset_request(std::function<void()> callback);
  /// Called with the CPU's A20 line whenever it changes: the i8042's A20 output OR port
  /// 0x92's bit 1 (the i8042's is on at power-on, port 0x92's bit clear).
  void set_a20_listener(std::function<void(bool)> listener);
  [[nodiscard]] bool a20_enabled() const { return i8042_.a20_enabled() || port92_.a20(); }

  /// System reset (a guest reboot): every device to its reset state; CMOS RAM, the RTC's
  /// time and the host-side wiring stay.
  void reset();

  [[nodiscard]] PcPlatformStats stats() const;

  // --- The devices (for the machine's inspection and tests) ----------------------
  [[nodiscard]] Pic8259& pic() { return pic_; }
  /// CPU `cpu`'s local APIC; nullptr without PcPlatformConfig::apic.
  [[nodiscard]] LocalApic* local_apic(unsigned cpu = 0) { return cpu < lapics_.size() ? lapics_[cpu].get() : nullptr; }
  [[nodiscard]] unsigned cpu_count() const { return cpu_count_; }
  [[nodiscard]] IoApic* io_apic() { return ioapic_.get(); }
  [[nodiscard]] Pit8254& pit() { return pit_; }
  [[nodiscard]] RtcCmos& rtc() { return rtc_; }
  [[nodiscard]] I8042& i8042() { return i8042_; }
  [[nodiscard]] IsaDma& isa_dma() { return isa_dma_; }
  /// nullptr for an absent COM2.
  [[nodiscard]] Uart16550* uart(SerialPort port);
  [[nodiscard]] const Uart16550* uart(SerialPort port) const;
  [[nodiscard]] PostCodePort& post_port() { return post_; }
  [[nodiscard]] DebugConsolePort& debug_console() { return debug_console_; }
  [[nodiscard]] TimerQueue& timers() { return timers_; }

 private:
  /// Fans each ISA IRQ out to the 8259 and the IOAPIC.
  class IsaIrqs final : public IrqSink {
   public:
    explicit IsaIrqs(PcPlatform& pc) : pc_(pc) {}
    void set_irq_level(unsigned irq, bool level) override;

   private:
    PcPlatform& pc_;
  };

  /// The APIC bus as the IOAPIC sees it: each message to the local APICs it names.
  class IoApicMessages final : public ApicMessageSink {
   public:
    explicit IoApicMessages(PcPlatform& pc) : pc_(pc) {}
    void deliver(const ApicMessage& message) override;

   private:
    PcPlatform& pc_;
  };

  void attach(PcDevice device, uint16_t base, uint32_t count, PortIoDevice& window);
  /// An IPI from `from` to the APICs its destination or shorthand names.
  void route_ipi(const LocalApic& from, const ApicMessage& message, IpiShorthand shorthand);
  /// Of the APICs that `message` names, the one lowest-priority delivery picks: the lowest
  /// TPR, the lowest ID on ties (SDM §10.6.2.4 leaves the tie to the chipset).
  [[nodiscard]] LocalApic* lowest_priority_target(const ApicMessage& message);
  void a20_inputs_changed();
  /// The 8259's INT output changed: LINT0, and whoever listens.
  void pic_output_changed(bool level);
  [[nodiscard]] bool pic_reaches_cpu(unsigned cpu) const {
    return cpu == 0 && pic_.interrupt_pending() && (lapics_.empty() || lapics_[0]->accepts_pic_interrupts());
  }

  const VirtualClock& clock_;
  LogFn log_;
  IoBus io_bus_;
  MmioBus mmio_bus_;
  // Declared before the devices: their timers and IRQ lines point here.
  TimerQueue timers_;
  Pic8259 pic_;
  unsigned cpu_count_ = 1;
  std::vector<std::unique_ptr<LocalApic>> lapics_;  ///< one per CPU, with an APIC
  IoApicMessages ioapic_messages_{*this};
  std::unique_ptr<IoApic> ioapic_;
  IsaIrqs isa_irqs_{*this};
  Pit8254 pit_;
  RtcCmos rtc_;
  Uart16550 com1_;
  std::optional<Uart16550> com2_;
  I8042 i8042_;
  SystemControlPortA port92_;
  IsaDma isa_dma_;
  PostCodePort post_;
  DebugConsolePort debug_console_;
  std::vector<std::pair<PcDevice, BusRangeId>> ranges_;
  std::function<void(bool)> a20_listener_;
  std::function<void(bool)> interrupt_listener_;
  bool a20_line_ = true;
  uint64_t timer_callbacks_ = 0;
};

}  // namespace vmm86
