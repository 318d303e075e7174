// Device DMA into guest memory (fw_cfg's DMA interface; later the IDE bus master): reads and
// writes of guest-physical RAM, and every write reported so that translated code made from
// the bytes it replaced is dropped, as for any other write that bypasses the windows.
#pragma once

#include <cstdint>
#include <functional>

#include "devices/dma_memory.h"
#include "vmm/arch/guest_memory.h"

namespace vmm86 {

class GuestDma final : public DmaMemory {
 public:
  using WriteListener = std::function<void(GuestPhys addr, uint64_t size)>;
  GuestDma(GuestMemory& mem, WriteListener written) : mem_(mem), written_(std::move(written)) {}

  [[nodiscard]] bool read(uint64_t phys, std::span<uint8_t> out) override {
    return mem_.read(GuestPhys{phys}, out.data(), out.size());
  }
  [[nodiscard]] bool write(uint64_t phys, std::span<const uint8_t> data) override {
    if (!mem_.write(GuestPhys{phys}, data.data(), data.size())) return false;
    if (written_) written_(GuestPhys{phys}, data.size());
    return true;
  }

 private:
  GuestMemory& mem_;
  WriteListener written_;
};

}  // namespace vmm86
