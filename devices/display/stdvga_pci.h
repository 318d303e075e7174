// The PCI personality of QEMU's `-vga std` (1234:1111, class 0x030000 VGA): BAR 0 is the
// 16 MiB linear framebuffer (prefetchable memory; the machine attaches Vga::lfb() to it),
// BAR 2 QEMU's 4 KiB register page (Vga::mmio_registers(), what Linux's bochs-drm prefers
// to the ports) and the expansion ROM BAR (0x30) holds the VGA BIOS, which SeaBIOS finds there, copies
// to C0000 and runs (its map_pcirom: the ROM's PCI data structure must name this vendor
// and device, as Debian's vgabios-stdvga.bin does). The legacy ports and the A0000 window
// are decoded regardless of the command register, as a VGA's are.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/io_device.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

class StdVgaPci final : public PciFunction {
 public:
  static constexpr uint16_t kVendorId = 0x1234;
  static constexpr uint16_t kDeviceId = 0x1111;
  static constexpr unsigned kLfbBar = 0;
  static constexpr unsigned kMmioBar = 2;
  static constexpr uint32_t kMmioBarSize = 4096;

  /// `rom` is the option ROM image (may be empty: no ROM BAR); `lfb_size` a power of two.
  StdVgaPci(std::vector<uint8_t> rom, uint32_t lfb_size);

  /// The region index of the expansion ROM (attach rom() there); only with a ROM.
  [[nodiscard]] unsigned rom_region() const { return rom_region_; }
  [[nodiscard]] bool has_rom() const { return !rom_.bytes.empty(); }
  [[nodiscard]] MmioDevice& rom() { return rom_; }

 private:
  class Rom final : public MmioDevice {
   public:
    uint32_t read(uint64_t offset, unsigned size) override;
    void write(uint64_t /*offset*/, unsigned /*size*/, uint32_t /*value*/) override {}
    std::vector<uint8_t> bytes;
  };

  [[nodiscard]] std::optional<uint32_t> custom_region_base(unsigned region) const override;

  Rom rom_;
  unsigned rom_region_ = 0;
};

}  // namespace vmm86
