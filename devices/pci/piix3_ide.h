// Intel 82371SB PIIX3 function 1, the IDE controller's PCI personality at 00:01.1
// (8086:7010, class 0x010180: mass storage, IDE, programming interface 0x80 = bus-master
// capable with both channels fixed in legacy mode at 0x1F0/0x3F6 IRQ 14 and 0x170/0x376
// IRQ 15, which is why BAR0-3 and the interrupt pin read 0). Only the configuration
// space lives here; the ATA channels and the bus-master registers are the storage
// model's. BAR4 (BMIBA, 0x20) is the 16-byte bus-master I/O block: the machine attaches
// the storage model's bus-master device to region kBusMasterBar. IDETIM (0x40 primary,
// 0x42 secondary; bit 15 enables the channel's legacy decode) and SIDETIM (0x44) are
// stored; Linux's ata_piix probes a channel only with bit 15 set, which SeaBIOS does.
#pragma once

#include <cstdint>
#include <optional>

#include "devices/pci/pci_function.h"

namespace vmm86 {

class Piix3Ide final : public PciFunction {
 public:
  static constexpr uint16_t kVendorId = 0x8086;
  static constexpr uint16_t kDeviceId = 0x7010;
  static constexpr unsigned kBusMasterBar = 4;
  static constexpr uint32_t kBusMasterSize = 16;
  static constexpr uint8_t kIdeTiming = 0x40;  ///< IDETIM, 16 bits per channel

  Piix3Ide();

  /// BMIBA's base while I/O decode is on.
  [[nodiscard]] std::optional<uint32_t> bus_master_base() const { return region(kBusMasterBar).base; }
  /// IDETIM bit 15 (IDE decode enable) of `channel` (0 primary, 1 secondary).
  [[nodiscard]] bool channel_decode_enabled(unsigned channel) const;
};

}  // namespace vmm86
