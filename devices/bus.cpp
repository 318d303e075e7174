#include "devices/bus.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>

namespace vmm86 {
namespace {

constexpr uint64_t all_ones(unsigned size) { return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1; }

constexpr bool is_access_size(unsigned size, unsigned max) {
  return size != 0 && size <= max && (size & (size - 1)) == 0;
}

}  // namespace

template <class Traits>
BusStatus RangeBus<Traits>::add(uint64_t base, uint64_t size, Device& device, std::string name, unsigned width,
                                BusRangeId* id) {
  if (size == 0) return BusStatus::EmptyRange;
  if (base >= Traits::kSpaceSize || size > Traits::kSpaceSize - base) return BusStatus::OutOfSpace;
  if (!is_access_size(width, 4)) return BusStatus::BadWidth;
  for (const Range& r : ranges_) {
    if (base < r.base + r.size && r.base < base + size) return BusStatus::Overlap;
  }
  const auto new_id = static_cast<BusRangeId>(ranges_.size());
  ranges_.push_back(Range{base, size, &device, width, std::move(name), 0});
  const auto pos = std::lower_bound(by_base_.begin(), by_base_.end(), base,
                                    [this](BusRangeId i, uint64_t b) { return ranges_[i].base < b; });
  by_base_.insert(pos, new_id);
  if (id != nullptr) *id = new_id;
  return BusStatus::Ok;
}

template <class Traits>
typename RangeBus<Traits>::Range* RangeBus<Traits>::find(uint64_t addr) {
  // The last range whose base is <= addr is the only candidate.
  auto it = std::upper_bound(by_base_.begin(), by_base_.end(), addr,
                             [this](uint64_t a, BusRangeId i) { return a < ranges_[i].base; });
  if (it == by_base_.begin()) return nullptr;
  Range& r = ranges_[*(it - 1)];
  return addr - r.base < r.size ? &r : nullptr;
}

template <class Traits>
bool RangeBus<Traits>::any_handled(uint64_t addr, unsigned size) {
  for (unsigned i = 0; i < size; ++i) {
    if (find(wrap(addr + i)) != nullptr) return true;
  }
  return false;
}

template <class Traits>
void RangeBus<Traits>::note_unhandled(uint64_t addr, unsigned size, bool is_write, uint64_t value) {
  ++unhandled_;
  if (!logged_.insert(addr >> Traits::kLogShift).second) return;
  char text[160];
  if (is_write) {
    std::snprintf(text, sizeof text, "unhandled %s write at 0x%" PRIx64 " (%u bytes, value 0x%" PRIx64 "): dropped",
                  Traits::kWhat, addr, size, value);
  } else {
    std::snprintf(text, sizeof text, "unhandled %s read at 0x%" PRIx64 " (%u bytes): all-ones", Traits::kWhat, addr,
                  size);
  }
  log_(text);
}

template <class Traits>
uint64_t RangeBus<Traits>::read(uint64_t addr, unsigned size) {
  assert(is_access_size(size, Traits::kMaxAccess));
  Range* r = find(addr);
  if (r != nullptr && size <= r->width && addr - r->base + size <= r->size) {
    ++r->accesses;
    return r->device->read(static_cast<typename Traits::Offset>(addr - r->base), size);
  }
  if (size == 1 || !any_handled(addr, size)) {
    note_unhandled(addr, size, false, 0);
    return all_ones(size);
  }
  const unsigned half = size / 2;
  const uint64_t low = read(addr, half);
  const uint64_t high = read(wrap(addr + half), half);
  return low | (high << (8 * half));
}

template <class Traits>
void RangeBus<Traits>::write(uint64_t addr, unsigned size, uint64_t value) {
  assert(is_access_size(size, Traits::kMaxAccess));
  value &= all_ones(size);
  Range* r = find(addr);
  if (r != nullptr && size <= r->width && addr - r->base + size <= r->size) {
    ++r->accesses;
    r->device->write(static_cast<typename Traits::Offset>(addr - r->base), size, static_cast<uint32_t>(value));
    return;
  }
  if (size == 1 || !any_handled(addr, size)) {
    note_unhandled(addr, size, true, value);
    return;
  }
  const unsigned half = size / 2;
  write(addr, half, value & all_ones(half));
  write(wrap(addr + half), half, value >> (8 * half));
}

template class RangeBus<PortIoTraits>;
template class RangeBus<MmioTraits>;

}  // namespace vmm86
