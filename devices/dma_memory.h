// Guest-physical memory as DMA-capable devices see it (fw_cfg's DMA interface, the IDE bus
// master): the machine implements it over guest RAM and tells the engines what changed.
#pragma once

#include <cstdint>
#include <span>

namespace vmm86 {

/// Returns false when any byte of the range is not RAM (MMIO, a hole, past the end), so a
/// bad guest address becomes the device's error status, never a host fault; nothing is
/// promised about the bytes before the bad one.
class DmaMemory {
 public:
  [[nodiscard]] virtual bool read(uint64_t phys, std::span<uint8_t> out) = 0;
  [[nodiscard]] virtual bool write(uint64_t phys, std::span<const uint8_t> data) = 0;

 protected:
  ~DmaMemory() = default;
};

}  // namespace vmm86
