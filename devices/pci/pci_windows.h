// PCI address windows: a stretch of the port space or of guest-physical memory that the
// machine hands to PCI once (as the i440FX forwards everything that is not DRAM to PCI),
// inside which BARs come and go. IoBus and MmioBus cannot remove a range, so the window
// is registered on the bus once and routes, through an inner bus of its own, to whatever
// is mapped inside it now; the inner bus is rebuilt when a range goes away (rare: BAR
// programming at boot). The inner bus splits and reports unhandled accesses exactly as
// the outer one would. Once bus.h can remove a range, an adapter that maps straight onto
// the buses replaces this.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/io_device.h"
#include "devices/log.h"
#include "devices/pci/pci_region_mapper.h"

namespace vmm86 {

/// Ports [base, base+size) for PCI I/O ranges. Register it on the IoBus at `base`, width 4.
class PciIoWindow final : public PortIoDevice {
 public:
  PciIoWindow(uint16_t base, uint32_t size, LogFn log);

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  [[nodiscard]] bool contains(uint32_t base, uint32_t size) const {
    return base >= base_ && base - base_ + uint64_t{size} <= size_;
  }
  [[nodiscard]] BusStatus map(uint16_t base, uint32_t size, PortIoDevice& device, const std::string& name,
                              unsigned width);
  /// False if nothing was mapped at `base`.
  bool unmap(uint16_t base);
  [[nodiscard]] uint16_t base() const { return base_; }
  [[nodiscard]] uint32_t size() const { return size_; }

 private:
  struct Mapping {
    uint16_t base;
    uint32_t size;
    PortIoDevice* device;
    std::string name;
    unsigned width;
  };

  uint16_t base_;
  uint32_t size_;
  LogFn log_;
  std::vector<Mapping> mappings_;
  std::unique_ptr<IoBus> inner_;
};

/// Guest-physical [base, base+size) for PCI memory ranges. Register it on the MmioBus at
/// `base`, width 4.
class PciMmioWindow final : public MmioDevice {
 public:
  PciMmioWindow(uint32_t base, uint32_t size, LogFn log);

  uint32_t read(uint64_t offset, unsigned size) override;
  void write(uint64_t offset, unsigned size, uint32_t value) override;

  [[nodiscard]] bool contains(uint32_t base, uint32_t size) const {
    return base >= base_ && uint64_t{base} - base_ + size <= size_;
  }
  [[nodiscard]] BusStatus map(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                              unsigned width);
  bool unmap(uint32_t base);
  [[nodiscard]] uint32_t base() const { return base_; }
  [[nodiscard]] uint32_t size() const { return size_; }

 private:
  struct Mapping {
    uint32_t base;
    uint32_t size;
    MmioDevice* device;
    std::string name;
    unsigned width;
  };

  uint32_t base_;
  uint32_t size_;
  LogFn log_;
  std::vector<Mapping> mappings_;
  std::unique_ptr<MmioBus> inner_;
};

/// PciAddressSpaces over a set of windows: a range must lie inside one window.
class PciWindows final : public PciAddressSpaces {
 public:
  explicit PciWindows(LogFn log = {}) : log_(log_or_stderr(std::move(log))) {}

  /// The windows stay at fixed addresses for the life of this object.
  PciIoWindow& add_io_window(uint16_t base, uint32_t size);
  PciMmioWindow& add_mmio_window(uint32_t base, uint32_t size);

  BusStatus map_io(uint16_t base, uint32_t size, PortIoDevice& device, const std::string& name,
                   unsigned width) override;
  void unmap_io(uint16_t base) override;
  BusStatus map_mmio(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                     unsigned width) override;
  void unmap_mmio(uint32_t base) override;

 private:
  LogFn log_;
  std::vector<std::unique_ptr<PciIoWindow>> io_windows_;
  std::vector<std::unique_ptr<PciMmioWindow>> mmio_windows_;
};

}  // namespace vmm86
