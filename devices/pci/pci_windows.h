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

/// What both kinds of window keep: the ranges mapped inside [base, base+size) and the inner
/// bus that routes to them, rebuilt without a range when it goes away.
template <class Traits>
class WindowRanges {
 public:
  using Device = typename Traits::Device;
  WindowRanges(uint64_t base, uint64_t size, LogFn log)
      : base_(base), size_(size), log_(std::move(log)), inner_(std::make_unique<RangeBus<Traits>>(log_)) {}

  [[nodiscard]] bool contains(uint64_t base, uint64_t size) const {
    return base >= base_ && base - base_ + size <= size_;
  }
  [[nodiscard]] BusStatus map(uint64_t base, uint64_t size, Device& device, const std::string& name, unsigned width);
  /// False if nothing was mapped at `base`.
  bool unmap(uint64_t base);
  /// An access at `offset` from the window's base.
  [[nodiscard]] uint64_t read(uint64_t offset, unsigned size) { return inner_->read(base_ + offset, size); }
  void write(uint64_t offset, unsigned size, uint64_t value) { inner_->write(base_ + offset, size, value); }
  [[nodiscard]] uint64_t base() const { return base_; }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  struct Mapping {
    uint64_t base;
    uint64_t size;
    Device* device;
    std::string name;
    unsigned width;
  };

  uint64_t base_;
  uint64_t size_;
  LogFn log_;
  std::vector<Mapping> mappings_;
  std::unique_ptr<RangeBus<Traits>> inner_;
};

/// Ports [base, base+size) for PCI I/O ranges. Register it on the IoBus at `base`, width 4.
class PciIoWindow final : public PortIoDevice {
 public:
  PciIoWindow(uint16_t base, uint32_t size, LogFn log) : ranges_(base, size, std::move(log)) {}

  uint32_t read(uint16_t offset, unsigned size) override { return static_cast<uint32_t>(ranges_.read(offset, size)); }
  void write(uint16_t offset, unsigned size, uint32_t value) override { ranges_.write(offset, size, value); }
  [[nodiscard]] WindowRanges<PortIoTraits>& ranges() { return ranges_; }

 private:
  WindowRanges<PortIoTraits> ranges_;
};

/// Guest-physical [base, base+size) for PCI memory ranges. Register it on the MmioBus at
/// `base`, width 4.
class PciMmioWindow final : public MmioDevice {
 public:
  PciMmioWindow(uint32_t base, uint32_t size, LogFn log) : ranges_(base, size, std::move(log)) {}

  uint32_t read(uint64_t offset, unsigned size) override { return static_cast<uint32_t>(ranges_.read(offset, size)); }
  void write(uint64_t offset, unsigned size, uint32_t value) override { ranges_.write(offset, size, value); }
  [[nodiscard]] WindowRanges<MmioTraits>& ranges() { return ranges_; }

 private:
  WindowRanges<MmioTraits> ranges_;
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
