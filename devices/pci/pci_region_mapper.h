// Keeps the devices behind PCI regions (BARs, PMBA) mapped where the guest put them.
// The owner attaches a device to (function, region) once; from then on, whenever the
// function reports that the region's decode changed (a BAR write, the command register's
// enables), the mapper unmaps the old range and maps the new one through
// PciAddressSpaces. A mapping that fails (the guest placed a BAR over another device) is
// reported through the LogFn and left unmapped, as real hardware would leave the
// conflict to whichever device wins; the next BAR write retries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/io_device.h"
#include "devices/log.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

/// Where PCI ranges get placed. PciWindows implements it with today's bus.h; an adapter
/// straight onto IoBus/MmioBus needs them to remove a range (see the PCI report).
class PciAddressSpaces {
 public:
  [[nodiscard]] virtual BusStatus map_io(uint16_t base, uint32_t size, PortIoDevice& device, const std::string& name,
                                         unsigned width) = 0;
  /// Removes the range that map_io placed at `base`.
  virtual void unmap_io(uint16_t base) = 0;
  [[nodiscard]] virtual BusStatus map_mmio(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                                           unsigned width) = 0;
  virtual void unmap_mmio(uint32_t base) = 0;

 protected:
  ~PciAddressSpaces() = default;
};

class PciRegionMapper {
 public:
  explicit PciRegionMapper(PciAddressSpaces& spaces, LogFn log = {});
  PciRegionMapper(const PciRegionMapper&) = delete;
  PciRegionMapper& operator=(const PciRegionMapper&) = delete;

  /// `device` answers I/O region `region` of `function`; both must outlive the mapper.
  /// `width` is the widest access the device takes. Maps at once if the region decodes.
  void attach_io(PciFunction& function, unsigned region, PortIoDevice& device, std::string name, unsigned width = 4);
  void attach_mmio(PciFunction& function, unsigned region, MmioDevice& device, std::string name, unsigned width = 4);

  /// Where the attached region is mapped now (nullopt: unmapped or not attached).
  [[nodiscard]] std::optional<uint32_t> mapped_base(const PciFunction& function, unsigned region) const;
  [[nodiscard]] uint64_t failed_mappings() const { return failed_; }

 private:
  struct Attachment {
    PciFunction* function;
    unsigned region;
    PortIoDevice* io_device;  ///< one of these two is set
    MmioDevice* mmio_device;
    std::string name;
    unsigned width;
    std::optional<uint32_t> mapped;
  };

  void attach(Attachment attachment);
  void on_region_changed(const PciFunction& function, unsigned region, const PciRegion& now);
  void move(Attachment& a, const PciRegion& now);

  PciAddressSpaces& spaces_;
  LogFn log_;
  std::vector<Attachment> attachments_;
  std::vector<const PciFunction*> listened_;  ///< functions that already have our listener
  uint64_t failed_ = 0;
};

}  // namespace vmm86
