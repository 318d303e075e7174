// Buses that route guest accesses to devices by address range: IoBus for the 64 KiB
// port space, MmioBus for guest-physical MMIO ranges. Both share one routing core
// (RangeBus), so splitting and the unhandled-access policy are written once:
//
// * Unhandled: a read of an address no device claims returns all-ones for its size
//   (an undriven ISA/PCI bus floats high); a write is dropped. The first access to each
//   port (MMIO: each 4 KiB page) is reported through the LogFn, later ones only counted.
// * Splitting: every range is registered with the widest access its device handles
//   (legacy PC devices are byte-wide). An access that is wider than that, or that
//   crosses the end of a range, is split in two halves at addr and addr+size/2, low half
//   first, each routed again; halves that are still too wide split further. This is what
//   the ISA bus controller does for a 16-bit cycle to an 8-bit card (two byte cycles,
//   even port first), so `outw 0x40` loads a PIT count exactly like two `outb`s and
//   `inw 0x4D0` reads both ELCR bytes. Port addresses wrap at 0xFFFF.
// Not thread-safe: the vCPU thread owns the bus (DESIGN.md §7).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "devices/io_device.h"
#include "devices/log.h"
#include "vmm/arch/types.h"

namespace vmm86 {

/// Why a range could not be registered.
enum class BusStatus : uint8_t {
  Ok,
  EmptyRange,  ///< size 0
  OutOfSpace,  ///< the range runs past the end of the address space
  BadWidth,    ///< width not 1, 2 or 4
  Overlap,     ///< intersects a range registered earlier
};

/// Index of a registered range, stable for the life of the bus.
using BusRangeId = uint32_t;

struct PortIoTraits {
  using Device = PortIoDevice;
  using Offset = uint16_t;
  static constexpr uint64_t kSpaceSize = 0x10000;
  static constexpr unsigned kMaxAccess = 4;
  static constexpr unsigned kLogShift = 0;  ///< log once per port
  static constexpr const char* kWhat = "I/O port";
};

struct MmioTraits {
  using Device = MmioDevice;
  using Offset = uint64_t;
  static constexpr uint64_t kSpaceSize = uint64_t{1} << 52;  ///< architectural phys limit
  static constexpr unsigned kMaxAccess = 8;
  static constexpr unsigned kLogShift = kPageShift;  ///< log once per page
  static constexpr const char* kWhat = "MMIO";
};

/// The routing core shared by IoBus and MmioBus; use those instead.
template <class Traits>
class RangeBus {
 public:
  using Device = typename Traits::Device;

  struct Range {
    uint64_t base = 0;
    uint64_t size = 0;
    Device* device = nullptr;
    unsigned width = 1;     ///< widest access the device takes
    std::string name;       ///< for messages and statistics
    uint64_t accesses = 0;  ///< device calls (a split access counts once per piece)
  };

  explicit RangeBus(LogFn log) : log_(log_or_stderr(std::move(log))) {}

  [[nodiscard]] BusStatus add(uint64_t base, uint64_t size, Device& device, std::string name, unsigned width,
                              BusRangeId* id);
  /// `size` is a power of two up to Traits::kMaxAccess. Returns the value zero-extended.
  [[nodiscard]] uint64_t read(uint64_t addr, unsigned size);
  void write(uint64_t addr, unsigned size, uint64_t value);

  /// In registration order; BusRangeId indexes this.
  [[nodiscard]] const std::vector<Range>& ranges() const { return ranges_; }
  [[nodiscard]] uint64_t unhandled_accesses() const { return unhandled_; }

 private:
  [[nodiscard]] Range* find(uint64_t addr);
  [[nodiscard]] bool any_handled(uint64_t addr, unsigned size);
  void note_unhandled(uint64_t addr, unsigned size, bool is_write, uint64_t value);
  [[nodiscard]] static uint64_t wrap(uint64_t addr) { return addr & (Traits::kSpaceSize - 1); }

  LogFn log_;
  std::vector<Range> ranges_;
  std::vector<BusRangeId> by_base_;      ///< indexes of ranges_, sorted by base
  std::unordered_set<uint64_t> logged_;  ///< addr >> kLogShift already reported
  uint64_t unhandled_ = 0;
};

extern template class RangeBus<PortIoTraits>;
extern template class RangeBus<MmioTraits>;

/// The I/O port space.
class IoBus {
 public:
  explicit IoBus(LogFn log = {}) : core_(std::move(log)) {}

  /// Claims ports [base, base+count) for `device`, which must outlive the bus.
  [[nodiscard]] BusStatus add(uint16_t base, uint32_t count, PortIoDevice& device, std::string name, unsigned width = 1,
                              BusRangeId* id = nullptr) {
    return core_.add(base, count, device, std::move(name), width, id);
  }
  /// `size` 1, 2 or 4.
  [[nodiscard]] uint32_t read(uint16_t port, unsigned size) { return static_cast<uint32_t>(core_.read(port, size)); }
  void write(uint16_t port, unsigned size, uint32_t value) { core_.write(port, size, value); }

  [[nodiscard]] const std::vector<RangeBus<PortIoTraits>::Range>& ranges() const { return core_.ranges(); }
  [[nodiscard]] uint64_t accesses(BusRangeId id) const { return core_.ranges()[id].accesses; }
  [[nodiscard]] uint64_t unhandled_accesses() const { return core_.unhandled_accesses(); }

 private:
  RangeBus<PortIoTraits> core_;
};

/// Guest-physical MMIO ranges (the physical map in GuestMemory marks them PhysKind::Mmio).
class MmioBus {
 public:
  explicit MmioBus(LogFn log = {}) : core_(std::move(log)) {}

  [[nodiscard]] BusStatus add(GuestPhys base, uint64_t size, MmioDevice& device, std::string name, unsigned width = 4,
                              BusRangeId* id = nullptr) {
    return core_.add(base.value, size, device, std::move(name), width, id);
  }
  /// `size` 1, 2, 4 or 8.
  [[nodiscard]] uint64_t read(GuestPhys addr, unsigned size) { return core_.read(addr.value, size); }
  void write(GuestPhys addr, unsigned size, uint64_t value) { core_.write(addr.value, size, value); }

  [[nodiscard]] const std::vector<RangeBus<MmioTraits>::Range>& ranges() const { return core_.ranges(); }
  [[nodiscard]] uint64_t accesses(BusRangeId id) const { return core_.ranges()[id].accesses; }
  [[nodiscard]] uint64_t unhandled_accesses() const { return core_.unhandled_accesses(); }

 private:
  RangeBus<MmioTraits> core_;
};

}  // namespace vmm86
