#include "devices/pci/pci_windows.h"

#include <algorithm>

namespace vmm86 {

template <class Traits>
BusStatus WindowRanges<Traits>::map(uint64_t base, uint64_t size, Device& device, const std::string& name,
                                    unsigned width) {
  if (!contains(base, size)) return BusStatus::OutOfSpace;
  BusRangeId id = 0;
  const BusStatus status = inner_->add(base, size, device, name, width, &id);
  if (status == BusStatus::Ok) mappings_.push_back(Mapping{base, size, &device, name, width});
  return status;
}

template <class Traits>
bool WindowRanges<Traits>::unmap(uint64_t base) {
  const auto it = std::find_if(mappings_.begin(), mappings_.end(), [&](const Mapping& m) { return m.base == base; });
  if (it == mappings_.end()) return false;
  mappings_.erase(it);
  inner_ = std::make_unique<RangeBus<Traits>>(log_);
  BusRangeId id = 0;
  for (const Mapping& m : mappings_) (void)inner_->add(m.base, m.size, *m.device, m.name, m.width, &id);
  return true;
}

template class WindowRanges<PortIoTraits>;
template class WindowRanges<MmioTraits>;

PciIoWindow& PciWindows::add_io_window(uint16_t base, uint32_t size) {
  io_windows_.push_back(std::make_unique<PciIoWindow>(base, size, log_));
  return *io_windows_.back();
}

PciMmioWindow& PciWindows::add_mmio_window(uint32_t base, uint32_t size) {
  mmio_windows_.push_back(std::make_unique<PciMmioWindow>(base, size, log_));
  return *mmio_windows_.back();
}

BusStatus PciWindows::map_io(uint16_t base, uint32_t size, PortIoDevice& device, const std::string& name,
                             unsigned width) {
  for (const auto& w : io_windows_) {
    if (w->ranges().contains(base, size)) return w->ranges().map(base, size, device, name, width);
  }
  return BusStatus::OutOfSpace;
}

void PciWindows::unmap_io(uint16_t base) {
  for (const auto& w : io_windows_) {
    if (w->ranges().unmap(base)) return;
  }
}

BusStatus PciWindows::map_mmio(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                               unsigned width) {
  for (const auto& w : mmio_windows_) {
    if (w->ranges().contains(base, size)) return w->ranges().map(base, size, device, name, width);
  }
  return BusStatus::OutOfSpace;
}

void PciWindows::unmap_mmio(uint32_t base) {
  for (const auto& w : mmio_windows_) {
    if (w->ranges().unmap(base)) return;
  }
}

}  // namespace vmm86
