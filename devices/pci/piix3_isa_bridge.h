// Intel 82371SB PIIX3 function 0, the PCI-to-ISA bridge at 00:01.0 (8086:7000, class
// 0x060100, multi-function). Its part in a PC that runs Linux is interrupt routing: the
// four PCI interrupt lines PIRQA#-PIRQD# are steered to ISA IRQs by PIRQRC[A:D]
// (0x60-0x63; 82371SB datasheet, PIRQRC register): bit 7 set disables the routing,
// bits 3:0 name the IRQ (0-2, 8 and 13 are reserved: routed nowhere). Reset 0x80 each.
// PCI INTx lines are level-triggered and shared (open drain, wired-OR), so an ISA IRQ is
// high while any PIRQ routed to it is high, and a PIRQ while any pin wired to it is.
// Wiring on the board: INTx pin P (1-4 = INTA-INTD) of device D reaches PIRQ
// (D + P - 2) mod 4, so the PIIX3 itself (device 1) starts at PIRQA: QEMU's piix3
// (pci_slot_get_pirq), the interrupt line SeaBIOS computes (pci_slot_get_irq) and the
// _PRT of QEMU's DSDT all assume it. Other registers (IORT, XBCS, TOM, MBIRQ, SMI
// control) keep their power-on values as storage.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "devices/irq_line.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

class Piix3IsaBridge final : public PciFunction {
 public:
  static constexpr uint16_t kVendorId = 0x8086;
  static constexpr uint16_t kDeviceId = 0x7000;
  static constexpr uint8_t kPirqRoute = 0x60;  ///< PIRQRC[A], then B, C, D
  static constexpr unsigned kPirqCount = 4;
  static constexpr unsigned kIsaIrqCount = 16;

  /// `isa_irqs` is the 8259 pair's inputs; it must outlive the bridge.
  explicit Piix3IsaBridge(IrqSink& isa_irqs);

  /// The PIRQ (0 = A) that INTx pin `pin` (1-4) of bus-0 device `device` is wired to.
  [[nodiscard]] static constexpr unsigned pirq_of(unsigned device, unsigned pin) { return (device + pin + 2) & 3; }
  /// Drives INTx pin `pin` (1-4) of `device` (0-31) to `level`.
  void set_pci_irq(unsigned device, unsigned pin, bool level);
  /// The ISA IRQ PIRQ `pirq` is routed to, or nullopt if routing is off.
  [[nodiscard]] std::optional<unsigned> pirq_route(unsigned pirq) const;
  [[nodiscard]] bool pirq_level(unsigned pirq) const { return pirq_pins_[pirq] != 0; }
  /// What the bridge drives on ISA IRQ `irq`.
  [[nodiscard]] bool isa_irq_level(unsigned irq) const { return driven_[irq]; }

 private:
  void config_written(uint8_t reg, unsigned size) override;
  void reset_done() override { update_isa_irqs(); }
  void update_isa_irqs();

  IrqSink& isa_irqs_;
  /// Per PIRQ, bit (device * 4 + pin - 1) set while that pin is asserted.
  std::array<uint64_t, kPirqCount> pirq_pins_{};
  std::array<bool, kIsaIrqCount> driven_{};
};

}  // namespace vmm86
