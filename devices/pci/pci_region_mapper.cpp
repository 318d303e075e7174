#include "devices/pci/pci_region_mapper.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace vmm86 {

PciRegionMapper::PciRegionMapper(PciAddressSpaces& spaces, LogFn log)
    : spaces_(spaces), log_(log_or_stderr(std::move(log))) {}

void PciRegionMapper::attach_io(PciFunction& function, unsigned region, PortIoDevice& device, std::string name,
                                unsigned width) {
  attach(Attachment{&function, region, &device, nullptr, std::move(name), width, std::nullopt});
}

void PciRegionMapper::attach_mmio(PciFunction& function, unsigned region, MmioDevice& device, std::string name,
                                  unsigned width) {
  attach(Attachment{&function, region, nullptr, &device, std::move(name), width, std::nullopt});
}

void PciRegionMapper::attach(Attachment attachment) {
  PciFunction& function = *attachment.function;
  const unsigned region = attachment.region;
  attachments_.push_back(std::move(attachment));
  if (std::find(listened_.begin(), listened_.end(), &function) == listened_.end()) {
    listened_.push_back(&function);
    function.add_region_listener(
        [this, &function](unsigned changed, const PciRegion& now, std::optional<uint32_t> /*previous*/) {
          on_region_changed(function, changed, now);
        });
  }
  move(attachments_.back(), function.region(region));
}

std::optional<uint32_t> PciRegionMapper::mapped_base(const PciFunction& function, unsigned region) const {
  for (const Attachment& a : attachments_) {
    if (a.function == &function && a.region == region) return a.mapped;
  }
  return std::nullopt;
}

void PciRegionMapper::on_region_changed(const PciFunction& function, unsigned region, const PciRegion& now) {
  for (Attachment& a : attachments_) {
    if (a.function == &function && a.region == region) move(a, now);
  }
}

void PciRegionMapper::move(Attachment& a, const PciRegion& now) {
  if (a.mapped == now.base) return;
  if (a.mapped) {
    if (a.io_device != nullptr) {
      spaces_.unmap_io(static_cast<uint16_t>(*a.mapped));
    } else {
      spaces_.unmap_mmio(*a.mapped);
    }
    a.mapped.reset();
  }
  if (!now.base) return;
  const BusStatus status = a.io_device != nullptr
                               ? spaces_.map_io(static_cast<uint16_t>(*now.base), now.size, *a.io_device, a.name,
                                                a.width)
                               : spaces_.map_mmio(*now.base, now.size, *a.mmio_device, a.name, a.width);
  if (status == BusStatus::Ok) {
    a.mapped = now.base;
    return;
  }
  ++failed_;
  char text[160];
  std::snprintf(text, sizeof text, "PCI: %s at 0x%" PRIx32 " (%" PRIu32 " bytes) not mapped: status %u", a.name.c_str(),
                *now.base, now.size, static_cast<unsigned>(status));
  log_(text);
}

}  // namespace vmm86
