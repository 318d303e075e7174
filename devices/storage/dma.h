// Bus-master DMA as the drives see it. The machine gives the controller a DmaMemory (guest
// physical memory); the bus-master engine turns the guest's PRD table into a DmaStream;
// a drive moves its data through the stream without knowing about PRDs.
#pragma once

#include <cstdint>
#include <span>

#include "devices/dma_memory.h"

namespace vmm86 {

enum class DmaStatus : uint8_t {
  Ok,
  TableTooShort,  ///< the scatter list ended before the data did
  MemoryError,    ///< a descriptor or a buffer is not in guest RAM
};

/// A transfer's scatter list, consumed front to back.
class DmaStream {
 public:
  /// Device to memory (a read command).
  [[nodiscard]] virtual DmaStatus to_guest(std::span<const uint8_t> data) = 0;
  /// Memory to device (a write command).
  [[nodiscard]] virtual DmaStatus from_guest(std::span<uint8_t> out) = 0;

 protected:
  ~DmaStream() = default;
};

}  // namespace vmm86
