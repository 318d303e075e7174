#include "devices/storage/qcow2_cache.h"

#include <algorithm>
#include <utility>

namespace vmm86::qcow2 {

ClusterCache::ClusterCache(size_t cluster_size, size_t capacity, Loader load, Writer write)
    : cluster_size_(cluster_size),
      capacity_(std::max<size_t>(capacity, 1)),
      load_(std::move(load)),
      write_(std::move(write)) {
  slots_.reserve(capacity_);
}

void ClusterCache::set_dirty(Slot& slot, bool dirty) {
  if (slot.dirty != dirty) dirty_count_ = dirty ? dirty_count_ + 1 : dirty_count_ - 1;
  slot.dirty = dirty;
}

ClusterCache::Slot* ClusterCache::take_slot(uint64_t offset) {
  size_t chosen = slots_.size();
  if (slots_.size() < capacity_) {
    slots_.push_back(Slot{});
    slots_.back().bytes.resize(cluster_size_);
  } else {
    chosen = 0;
    for (size_t i = 1; i < slots_.size(); ++i) {
      if (slots_[i].last_use < slots_[chosen].last_use) chosen = i;
    }
    Slot& old = slots_[chosen];
    if (old.dirty && !write_(old.offset, old.bytes)) return nullptr;
    set_dirty(old, false);
    index_.erase(old.offset);
  }
  Slot& slot = slots_[chosen];
  slot.offset = offset;
  slot.last_use = ++clock_;
  index_[offset] = chosen;
  return &slot;
}

uint8_t* ClusterCache::get(uint64_t offset) {
  if (const auto found = index_.find(offset); found != index_.end()) {
    Slot& slot = slots_[found->second];
    slot.last_use = ++clock_;
    return slot.bytes.data();
  }
  Slot* slot = take_slot(offset);
  if (slot == nullptr) return nullptr;
  if (!load_(offset, slot->bytes)) {
    index_.erase(offset);
    slot->last_use = 0;  // reused first
    slot->offset = ~uint64_t{0};
    return nullptr;
  }
  return slot->bytes.data();
}

uint8_t* ClusterCache::create(uint64_t offset, std::span<const uint8_t> init) {
  Slot* slot = nullptr;
  if (const auto found = index_.find(offset); found != index_.end()) {
    slot = &slots_[found->second];
    slot->last_use = ++clock_;
  } else {
    slot = take_slot(offset);
    if (slot == nullptr) return nullptr;
  }
  std::fill(slot->bytes.begin(), slot->bytes.end(), uint8_t{0});
  std::copy_n(init.begin(), std::min(init.size(), slot->bytes.size()), slot->bytes.begin());
  set_dirty(*slot, true);
  return slot->bytes.data();
}

void ClusterCache::mark_dirty(uint64_t offset) {
  if (const auto found = index_.find(offset); found != index_.end()) set_dirty(slots_[found->second], true);
}

bool ClusterCache::write_dirty() {
  if (dirty_count_ == 0) return true;
  std::vector<Slot*> dirty;
  for (Slot& slot : slots_) {
    if (slot.dirty) dirty.push_back(&slot);
  }
  std::sort(dirty.begin(), dirty.end(), [](const Slot* a, const Slot* b) { return a->offset < b->offset; });
  for (Slot* slot : dirty) {
    if (!write_(slot->offset, slot->bytes)) return false;
    set_dirty(*slot, false);
  }
  return true;
}

}  // namespace vmm86::qcow2
