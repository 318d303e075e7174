// A write-back cache of cluster-sized qcow2 metadata (L2 tables, refcount blocks), keyed by
// host offset, least recently used out. The owner says how a cluster is read and written:
// its writer is where the ordering rules live (an L2 table goes to disk only after the
// refcounts of the clusters it names), so the cache itself never decides an order.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

namespace vmm86::qcow2 {

class ClusterCache {
 public:
  using Loader = std::function<bool(uint64_t offset, std::span<uint8_t> out)>;
  using Writer = std::function<bool(uint64_t offset, std::span<const uint8_t> bytes)>;

  /// `capacity` clusters of `cluster_size` bytes at most.
  ClusterCache(size_t cluster_size, size_t capacity, Loader load, Writer write);

  /// The cluster at `offset`, read with the loader when it is not cached (after writing back
  /// the least recently used slot if it is dirty). Null when that I/O failed. The pointer
  /// stays valid until the next get() or create().
  [[nodiscard]] uint8_t* get(uint64_t offset);
  /// A cluster that is new on disk (its old bytes do not matter): `init` fills it (zeros
  /// when empty), and it is dirty. Null when the eviction it needed failed.
  [[nodiscard]] uint8_t* create(uint64_t offset, std::span<const uint8_t> init = {});
  /// Marks the cached cluster at `offset` as changed (it must be cached).
  void mark_dirty(uint64_t offset);
  [[nodiscard]] bool has_dirty() const { return dirty_count_ != 0; }
  /// Writes every dirty cluster, in offset order. False on the first failure.
  [[nodiscard]] bool write_dirty();

 private:
  struct Slot {
    uint64_t offset = 0;
    uint64_t last_use = 0;
    bool dirty = false;
    std::vector<uint8_t> bytes;
  };
  /// A slot for `offset`, evicting the least recently used one. Null when its write failed.
  Slot* take_slot(uint64_t offset);
  void set_dirty(Slot& slot, bool dirty);

  size_t cluster_size_;
  size_t capacity_;
  Loader load_;
  Writer write_;
  std::vector<Slot> slots_;
  std::unordered_map<uint64_t, size_t> index_;  ///< offset -> slot
  uint64_t clock_ = 0;
  size_t dirty_count_ = 0;
};

}  // namespace vmm86::qcow2
