// Bus-master DMA as the drives see it. The machine gives the controller a DmaMemory (guest
// physical memory); the bus-master engine turns the guest's PRD table into a DmaStream;
// a drive moves its data through the stream without knowing about PRDs.
#pragma once

#include <cstdint>
#include <span>

namespace vmm86 {

/// Guest-physical memory for device DMA. Returns false when any byte of the range is not
/// RAM (MMIO, a hole, past the end); nothing is promised about the bytes done before.
class DmaMemory {
 public:
  [[nodiscard]] virtual bool read(uint64_t phys, std::span<uint8_t> out) = 0;
  [[nodiscard]] virtual bool write(uint64_t phys, std::span<const uint8_t> data) = 0;

 protected:
  ~DmaMemory() = default;
};

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
