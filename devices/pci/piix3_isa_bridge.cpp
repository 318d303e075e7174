#include "devices/pci/piix3_isa_bridge.h"

#include <cassert>

namespace vmm86 {
namespace {

constexpr uint32_t kIsaBridgeClass = 0x060100;
constexpr uint8_t kMultiFunction = 0x80;
// 82371SB PCICMD: I/O, memory and bus master are always on; PCISTS: medium DEVSEL.
constexpr uint16_t kCommandReset = 0x0007;
constexpr uint16_t kStatusReset = 0x0200;
constexpr uint8_t kPirqDisabled = 0x80;
constexpr uint8_t kPirqWritable = 0x8F;
constexpr uint8_t kPirqIrqMask = 0x0F;
// PIRQRC values 0-2, 8 and 13 are reserved.
constexpr uint16_t kRoutableIrqs = 0xFFFF & ~((1u << 0) | (1u << 1) | (1u << 2) | (1u << 8) | (1u << 13));

// Power-on values of the other registers the 82371SB datasheet lists.
struct ResetValue {
  uint8_t reg;
  uint8_t value;
};
constexpr ResetValue kResetValues[] = {
    {0x4C, 0x4D},                // IORT: ISA I/O recovery timer
    {0x4E, 0x03},                // XBCS: BIOS chip select (0xE0000-0xFFFFF, keyboard controller)
    {0x69, 0x02},                // TOM: top of memory
    {0x70, 0x80},                // MBIRQ0: motherboard IRQ routing, disabled
    {0x76, 0x0C},                // MBDMA0/1: motherboard DMA, disabled
    {0x77, 0x0C}, {0x78, 0x02},  // PCSC: programmable chip select
    {0xA0, 0x08},                // SMICNTL
    {0xA8, 0x0F},                // FTMR: fast off timer
};

}  // namespace

Piix3IsaBridge::Piix3IsaBridge(IrqSink& isa_irqs)
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = 0,
                              .class_code = kIsaBridgeClass,
                              .header_type = kMultiFunction,
                              .subsystem_vendor_id = 0,
                              .subsystem_id = 0,
                              .interrupt_pin = 0}),
      isa_irqs_(isa_irqs) {
  define_register(pci_reg::kCommand, 2, kCommandReset, 0);
  define_register(pci_reg::kStatus, 2, kStatusReset, 0, pci_status::kWriteOneToClear);
  define_register(pci_reg::kInterruptLine, 1, 0, 0);
  for (const ResetValue& r : kResetValues) define_register(r.reg, 1, r.value, 0xFF);
  for (unsigned i = 0; i < kPirqCount; ++i) {
    define_register(static_cast<uint8_t>(kPirqRoute + i), 1, kPirqDisabled, kPirqWritable);
  }
}

void Piix3IsaBridge::set_pci_irq(unsigned device, unsigned pin, bool level) {
  assert(device < 32 && pin >= 1 && pin <= 4);
  const uint64_t bit = uint64_t{1} << (device * 4 + pin - 1);
  uint64_t& pins = pirq_pins_[pirq_of(device, pin)];
  pins = level ? (pins | bit) : (pins & ~bit);
  update_isa_irqs();
}

std::optional<unsigned> Piix3IsaBridge::pirq_route(unsigned pirq) const {
  const uint8_t value = config_byte(static_cast<uint8_t>(kPirqRoute + pirq));
  const unsigned irq = value & kPirqIrqMask;
  if ((value & kPirqDisabled) != 0 || (kRoutableIrqs & (1u << irq)) == 0) return std::nullopt;
  return irq;
}

void Piix3IsaBridge::config_written(uint8_t reg, unsigned size) {
  if (reg < kPirqRoute + kPirqCount && kPirqRoute < reg + size) update_isa_irqs();
}

void Piix3IsaBridge::update_isa_irqs() {
  std::array<bool, kIsaIrqCount> level{};
  for (unsigned pirq = 0; pirq < kPirqCount; ++pirq) {
    const std::optional<unsigned> irq = pirq_route(pirq);
    if (irq && pirq_level(pirq)) level[*irq] = true;
  }
  for (unsigned irq = 0; irq < kIsaIrqCount; ++irq) {
    if (level[irq] == driven_[irq]) continue;
    driven_[irq] = level[irq];
    isa_irqs_.set_irq_level(irq, level[irq]);
  }
}

}  // namespace vmm86
