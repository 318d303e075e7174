#include "devices/pc_platform.h"

#include <algorithm>

#include "common/check.h"

namespace vmm86 {
namespace {

// PC/AT IRQ assignments.
constexpr unsigned kIrqPit = 0;
constexpr unsigned kIrqKeyboard = 1;
constexpr unsigned kIrqCom2 = 3;
constexpr unsigned kIrqCom1 = 4;
constexpr unsigned kIrqRtc = 8;
constexpr unsigned kIrqAux = 12;
constexpr unsigned kIrqCascade = 2;
constexpr unsigned kIoApicPinPit = 2;  // ISA IRQ 0, through the usual interrupt source override

constexpr uint16_t kPicMaster = 0x20;
constexpr uint16_t kPicSlave = 0xA0;
constexpr uint16_t kElcr = 0x4D0;
constexpr uint16_t kPit = 0x40;
constexpr uint16_t kPortB = 0x61;
constexpr uint16_t kKbdData = 0x60;
constexpr uint16_t kKbdCommand = 0x64;
constexpr uint16_t kRtc = 0x70;
constexpr uint16_t kCom1 = 0x3F8;
constexpr uint16_t kCom2 = 0x2F8;
constexpr uint16_t kPost = 0x80;
constexpr uint16_t kDebugCon = DebugConsolePort::kStandardPort;

constexpr const char* kDeviceNames[] = {
#define VMM86_X(name, what) #name,
    VMM86_PC_DEVICES(VMM86_X)
#undef VMM86_X
};

}  // namespace

PcPlatform::PcPlatform(const VirtualClock& clock, PcPlatformConfig config)
    : clock_(clock),
      log_(log_or_stderr(std::move(config.log))),
      io_bus_(log_),
      mmio_bus_(log_),
      cpu_count_(std::max(config.cpu_count, 1u)),
      ioapic_(config.apic ? std::make_unique<IoApic>(ioapic_messages_) : nullptr),
      pit_(clock, timers_, IrqLine(&isa_irqs_, kIrqPit)),
      rtc_(clock, timers_, IrqLine(&isa_irqs_, kIrqRtc), config.rtc_start_unix_ns.value_or(host_unix_time_ns())),
      com1_(IrqLine(&isa_irqs_, kIrqCom1)),
      i8042_(IrqLine(&isa_irqs_, kIrqKeyboard), IrqLine(&isa_irqs_, kIrqAux)),
      isa_dma_(config.dma_memory) {
  pic_.set_output_listener([this](bool level) { pic_output_changed(level); });
  if (ioapic_) {
    for (unsigned cpu = 0; cpu < cpu_count_; ++cpu) {
      auto& lapic = lapics_.emplace_back(
          std::make_unique<LocalApic>(clock, timers_, static_cast<uint8_t>(cpu), config.apic_timer_hz));
      lapic->set_eoi_listener([this](uint8_t vector) { ioapic_->end_of_interrupt(vector); });
      if (cpu_count_ > 1) {
        lapic->set_ipi_route([this](const LocalApic& from, const ApicMessage& message, IpiShorthand shorthand) {
          route_ipi(from, message, shorthand);
        });
      }
    }
    BusRangeId id = 0;
    VMM86_CHECK(mmio_bus_.add(GuestPhys{IoApic::kDefaultBase}, IoApic::kMmioSize, *ioapic_, "ioapic", 4, &id) ==
                BusStatus::Ok);
  }
  attach(PcDevice::pic, kPicMaster, 2, pic_.master_ports());
  attach(PcDevice::pic, kPicSlave, 2, pic_.slave_ports());
  attach(PcDevice::pic, kElcr, 2, pic_.elcr_ports());
  attach(PcDevice::pit, kPit, 4, pit_.ports());
  attach(PcDevice::pit, kPortB, 1, pit_.port61());
  attach(PcDevice::i8042, kKbdData, 1, i8042_.data_port());
  attach(PcDevice::i8042, kKbdCommand, 1, i8042_.command_port());
  attach(PcDevice::port92, SystemControlPortA::kPort, 1, port92_);
  attach(PcDevice::rtc, kRtc, 2, rtc_);
  attach(PcDevice::com1, kCom1, 8, com1_);
  if (config.com2) {
    com2_.emplace(IrqLine(&isa_irqs_, kIrqCom2));
    attach(PcDevice::com2, kCom2, 8, *com2_);
  }
  attach(PcDevice::dma, IsaDma::kController1Base, IsaDma::kController1Ports, isa_dma_.controller_ports(0));
  attach(PcDevice::dma, IsaDma::kController2Base, IsaDma::kController2Ports, isa_dma_.controller_ports(1));
  // The page registers around 0x80, which stays the POST port (it reads back as a page
  // register does).
  attach(PcDevice::dma, IsaDma::kPageBase, IsaDma::kPagePorts, isa_dma_.page_ports());
  attach(PcDevice::post, kPost, 1, post_);
  attach(PcDevice::debugcon, kDebugCon, 1, debug_console_);
  if (config.ram_below_4g != 0) rtc_.set_memory_size(config.ram_below_4g);
}

void PcPlatform::IsaIrqs::set_irq_level(unsigned irq, bool level) {
  pc_.pic_.set_irq_level(irq, level);
  if (pc_.ioapic_ && irq != kIrqCascade) pc_.ioapic_->set_irq_level(irq == kIrqPit ? kIoApicPinPit : irq, level);
}

void PcPlatform::pic_output_changed(bool level) {
  // The 8259's INT is wired to the BSP's LINT0 (the MP specification's virtual wire).
  if (!lapics_.empty()) lapics_[0]->set_lint(0, level);
  if (interrupt_listener_) interrupt_listener_(level);
}

void PcPlatform::IoApicMessages::deliver(const ApicMessage& message) {
  if (message.mode == ApicDeliveryMode::LowestPriority) {
    if (LocalApic* target = pc_.lowest_priority_target(message)) target->deliver(message);
    return;
  }
  for (auto& lapic : pc_.lapics_) lapic->deliver(message);
}

LocalApic* PcPlatform::lowest_priority_target(const ApicMessage& message) {
  LocalApic* best = nullptr;
  for (auto& lapic : lapics_) {
    if (!lapic->globally_enabled() || !lapic->matches(message)) continue;
    if (!best || lapic->tpr() < best->tpr()) best = lapic.get();
  }
  return best;
}

void PcPlatform::route_ipi(const LocalApic& from, const ApicMessage& message, IpiShorthand shorthand) {
  if (shorthand == IpiShorthand::None && message.mode == ApicDeliveryMode::LowestPriority) {
    if (LocalApic* target = lowest_priority_target(message)) target->receive_ipi(message);
    return;
  }
  for (auto& lapic : lapics_) {
    const bool named = shorthand == IpiShorthand::AllIncludingSelf ||
                       (shorthand == IpiShorthand::AllExcludingSelf && lapic.get() != &from) ||
                       (shorthand == IpiShorthand::None && lapic->matches(message));
    if (named) lapic->receive_ipi(message);
  }
}

bool PcPlatform::interrupt_pending(unsigned cpu) const {
  return pic_reaches_cpu(cpu) || (cpu < lapics_.size() && lapics_[cpu]->interrupt_pending());
}

uint8_t PcPlatform::acknowledge_interrupt(unsigned cpu) {
  if (pic_reaches_cpu(cpu) || cpu >= lapics_.size()) return pic_.acknowledge();
  LocalApic& lapic = *lapics_[cpu];
  // Nothing pending any more: the spurious vector of whichever source the CPU listens to.
  if (cpu == 0 && !lapic.interrupt_pending() && lapic.accepts_pic_interrupts()) return pic_.acknowledge();
  return lapic.acknowledge();
}

uint32_t PcPlatform::mmio_read(GuestPhys addr, unsigned size, unsigned cpu) {
  if (LocalApic* lapic = local_apic(cpu); lapic && lapic->claims(addr.value)) {
    return lapic->read(addr.value - lapic->base_address(), size);
  }
  return static_cast<uint32_t>(mmio_bus_.read(addr, size));
}

void PcPlatform::mmio_write(GuestPhys addr, unsigned size, uint32_t value, unsigned cpu) {
  if (LocalApic* lapic = local_apic(cpu); lapic && lapic->claims(addr.value)) {
    lapic->write(addr.value - lapic->base_address(), size, value);
  } else {
    mmio_bus_.write(addr, size, value);
  }
}

void PcPlatform::set_reset_request(std::function<void()> callback) {
  port92_.set_reset_request(callback);
  i8042_.set_reset_request(std::move(callback));
}

void PcPlatform::set_a20_listener(std::function<void(bool)> listener) {
  a20_listener_ = std::move(listener);
  a20_line_ = a20_enabled();
  i8042_.set_a20_listener([this](bool) { a20_inputs_changed(); });
  port92_.set_a20_listener([this] { a20_inputs_changed(); });
}

void PcPlatform::a20_inputs_changed() {
  if (a20_enabled() == a20_line_) return;  // the other source still holds the line
  a20_line_ = a20_enabled();
  if (a20_listener_) a20_listener_(a20_line_);
}

void PcPlatform::attach(PcDevice device, uint16_t base, uint32_t count, PortIoDevice& window) {
  BusRangeId id = 0;
  const char* name = kDeviceNames[static_cast<unsigned>(device)];
  const BusStatus added = io_bus_.add(base, count, window, name, 1, &id);
  // The layout above is fixed: a conflict is a bug in this file, never a guest error.
  VMM86_CHECK(added == BusStatus::Ok, "PC platform port range {:#x} ({}) conflicts", base, name);
  ranges_.emplace_back(device, id);
}

size_t PcPlatform::run_timers() {
  const size_t ran = timers_.run_expired(clock_.now_ns());
  timer_callbacks_ += ran;
  return ran;
}

Uart16550* PcPlatform::uart(SerialPort port) {
  if (port == SerialPort::Com1) return &com1_;
  return com2_ ? &*com2_ : nullptr;
}

const Uart16550* PcPlatform::uart(SerialPort port) const {
  if (port == SerialPort::Com1) return &com1_;
  return com2_ ? &*com2_ : nullptr;
}

void PcPlatform::set_serial_output(ByteSink sink, SerialPort port) {
  if (Uart16550* u = uart(port)) u->set_output(std::move(sink));
}

size_t PcPlatform::push_serial_input(std::span<const uint8_t> bytes, SerialPort port) {
  Uart16550* u = uart(port);
  return u != nullptr ? u->push_input(bytes) : 0;
}

size_t PcPlatform::serial_input_space(SerialPort port) const {
  const Uart16550* u = uart(port);
  return u != nullptr ? u->rx_free() : 0;
}

void PcPlatform::reset() {
  pit_.reset();
  rtc_.reset();
  com1_.reset();
  if (com2_) com2_->reset();
  i8042_.reset();
  port92_.reset();
  isa_dma_.reset();
  for (auto& lapic : lapics_) lapic->reset();
  if (ioapic_) ioapic_->reset();
  pic_.reset();  // last: the devices above have set their lines
}

PcPlatformStats PcPlatform::stats() const {
  PcPlatformStats s;
  for (const auto& [device, id] : ranges_) {
    const uint64_t n = io_bus_.accesses(id);
    switch (device) {
#define VMM86_X(name, what) \
  case PcDevice::name: s.port_accesses.name += n; break;
      VMM86_PC_DEVICES(VMM86_X)
#undef VMM86_X
    }
  }
  s.unhandled_port_accesses = io_bus_.unhandled_accesses();
  const Pic8259::Stats& pic = pic_.stats();
  s.irq_raised = pic.raised;
  s.interrupts_acknowledged = pic.acknowledged;
  s.spurious_interrupts = pic.spurious;
  s.timer_callbacks = timer_callbacks_;
  for (const SerialPort port : {SerialPort::Com1, SerialPort::Com2}) {
    if (const Uart16550* u = uart(port)) {
      s.serial_tx_bytes += u->stats().tx_bytes;
      s.serial_rx_bytes += u->stats().rx_bytes;
    }
  }
  s.reset_requests = i8042_.reset_requests();
  for (const auto& lapic : lapics_) {
    const LocalApicStats& a = lapic->stats();
#define VMM86_X(name, what) s.apic.name += a.name;
    VMM86_APIC_COUNTERS(VMM86_X)
#undef VMM86_X
  }
  if (ioapic_) s.ioapic = ioapic_->stats();
  return s;
}

}  // namespace vmm86
