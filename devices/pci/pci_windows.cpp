#include "devices/pci/pci_windows.h"

namespace vmm86 {

PciIoWindow::PciIoWindow(uint16_t base, uint32_t size, LogFn log)
    : base_(base), size_(size), log_(std::move(log)), inner_(std::make_unique<IoBus>(log_)) {}

uint32_t PciIoWindow::read(uint16_t offset, unsigned size) {
  return inner_->read(static_cast<uint16_t>(base_ + offset), size);
}

void PciIoWindow::write(uint16_t offset, unsigned size, uint32_t value) {
  inner_->write(static_cast<uint16_t>(base_ + offset), size, value);
}

BusStatus PciIoWindow::map(uint16_t base, uint32_t size, PortIoDevice& device, const std::string& name,
                           unsigned width) {
  if (!contains(base, size)) return BusStatus::OutOfSpace;
  const BusStatus status = inner_->add(base, size, device, name, width);
  if (status == BusStatus::Ok) mappings_.push_back(Mapping{base, size, &device, name, width});
  return status;
}

bool PciIoWindow::unmap(uint16_t base) {
  bool found = false;
  for (auto it = mappings_.begin(); it != mappings_.end(); ++it) {
    if (it->base != base) continue;
    mappings_.erase(it);
    found = true;
    break;
  }
  if (!found) return false;
  inner_ = std::make_unique<IoBus>(log_);
  for (const Mapping& m : mappings_) (void)inner_->add(m.base, m.size, *m.device, m.name, m.width);
  return true;
}

PciMmioWindow::PciMmioWindow(uint32_t base, uint32_t size, LogFn log)
    : base_(base), size_(size), log_(std::move(log)), inner_(std::make_unique<MmioBus>(log_)) {}

uint32_t PciMmioWindow::read(uint64_t offset, unsigned size) {
  return static_cast<uint32_t>(inner_->read(GuestPhys{base_ + offset}, size));
}

void PciMmioWindow::write(uint64_t offset, unsigned size, uint32_t value) {
  inner_->write(GuestPhys{base_ + offset}, size, value);
}

BusStatus PciMmioWindow::map(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                             unsigned width) {
  if (!contains(base, size)) return BusStatus::OutOfSpace;
  const BusStatus status = inner_->add(GuestPhys{base}, size, device, name, width);
  if (status == BusStatus::Ok) mappings_.push_back(Mapping{base, size, &device, name, width});
  return status;
}

bool PciMmioWindow::unmap(uint32_t base) {
  bool found = false;
  for (auto it = mappings_.begin(); it != mappings_.end(); ++it) {
    if (it->base != base) continue;
    mappings_.erase(it);
    found = true;
    break;
  }
  if (!found) return false;
  inner_ = std::make_unique<MmioBus>(log_);
  for (const Mapping& m : mappings_) (void)inner_->add(GuestPhys{m.base}, m.size, *m.device, m.name, m.width);
  return true;
}

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
    if (w->contains(base, size)) return w->map(base, size, device, name, width);
  }
  return BusStatus::OutOfSpace;
}

void PciWindows::unmap_io(uint16_t base) {
  for (const auto& w : io_windows_) {
    if (w->unmap(base)) return;
  }
}

BusStatus PciWindows::map_mmio(uint32_t base, uint32_t size, MmioDevice& device, const std::string& name,
                               unsigned width) {
  for (const auto& w : mmio_windows_) {
    if (w->contains(base, size)) return w->map(base, size, device, name, width);
  }
  return BusStatus::OutOfSpace;
}

void PciWindows::unmap_mmio(uint32_t base) {
  for (const auto& w : mmio_windows_) {
    if (w->unmap(base)) return;
  }
}

}  // namespace vmm86
