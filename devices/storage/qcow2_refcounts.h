// A qcow2 image's reference counts and its cluster allocator. New clusters are taken at
// the end of the file (freed ones are not reused); the refcount blocks that describe them,
// and a larger refcount table when the old one is full, are appended there too.
//
// Ordering (what keeps a killed process from leaving a corrupt image; at worst it leaks):
//   - a refcount goes up in the cache when a cluster is allocated, and the owner writes the
//     refcounts (write_back) and syncs before any L2 or L1 entry naming that cluster;
//   - a reference dropped (copy-on-write of a cluster shared with a snapshot, of a compressed
//     one, or of a moved refcount table) is only queued (release_later); the owner applies
//     the queue after the tables that no longer name those clusters are on disk;
//   - write_back writes new refcount blocks before the table entries naming them, and a
//     moved table before the header that points to it (with a sync between each).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/result.h"
#include "devices/storage/image_file.h"
#include "devices/storage/qcow2_cache.h"

namespace vmm86::qcow2 {

struct RefcountLayout {
  uint32_t cluster_bits = 16;
  uint32_t refcount_order = 4;
  uint64_t table_offset = 0;
  uint32_t table_clusters = 0;
};

class Refcounts {
 public:
  /// Reads and checks the refcount table (every block inside the file and aligned).
  /// `file` must outlive the result.
  [[nodiscard]] static Result<std::unique_ptr<Refcounts>> load(const ImageFile& file, const RefcountLayout& layout);

  /// The refcount of the host cluster with index `cluster`. False on an I/O error or a
  /// block that is not where a block can be.
  [[nodiscard]] bool get(uint64_t cluster, uint64_t* refcount);
  /// `count` contiguous new clusters at the end of the file, each with refcount 1: their
  /// byte offset, or 0 on failure (I/O error, corrupt block, refcount table at its limit).
  [[nodiscard]] uint64_t allocate(uint64_t count);
  /// Queues dropping one reference to every cluster that [offset, offset + bytes) touches.
  void release_later(uint64_t offset, uint64_t bytes) { releases_.emplace_back(offset, bytes); }
  [[nodiscard]] size_t pending_releases() const { return releases_.size(); }
  /// Applies the queued releases to the (cached) refcounts. False on an I/O error or a
  /// refcount already 0 (a corrupt image).
  [[nodiscard]] bool apply_releases();

  /// Refcount blocks or the table changed since the last write_back.
  [[nodiscard]] bool dirty() const { return cache_.has_dirty() || table_dirty_; }
  /// Something was written since the owner last called synced().
  [[nodiscard]] bool unsynced() const { return unsynced_; }
  void synced() { unsynced_ = false; }
  /// Writes dirty blocks, then the table, then (when the table moved) the header.
  [[nodiscard]] bool write_back();

  /// The first byte past every cluster in use or allocated: an offset at or past it names
  /// nothing an image can hold.
  [[nodiscard]] uint64_t end_offset() const { return next_free_ << layout_.cluster_bits; }

  Refcounts(const Refcounts&) = delete;
  Refcounts& operator=(const Refcounts&) = delete;

 private:
  Refcounts(const ImageFile& file, const RefcountLayout& layout, std::vector<uint64_t> table, uint64_t next_free);
  [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << layout_.cluster_bits; }
  /// The cached block covering `cluster` and its offset; null with offset 0 when there is
  /// no block, null with the offset when reading it failed.
  [[nodiscard]] uint8_t* block_for(uint64_t cluster, uint64_t* block_offset);
  [[nodiscard]] bool set(uint64_t cluster, uint64_t refcount);
  /// Gives every cluster in [from, next_free_) a refcount block, appending blocks (and a
  /// larger table) at the end; the clusters it takes get refcount 1.
  [[nodiscard]] bool cover(uint64_t from);
  [[nodiscard]] bool grow_table(uint64_t needed_entries, std::vector<uint64_t>* taken);
  [[nodiscard]] uint64_t entry(const uint8_t* block, uint64_t index) const;
  void set_entry(uint8_t* block, uint64_t index, uint64_t value) const;

  const ImageFile* file_;
  RefcountLayout layout_;
  uint32_t block_bits_;          ///< log2(refcounts per block)
  std::vector<uint64_t> table_;  ///< block offsets (host order), 0: no block
  uint64_t next_free_;           ///< first cluster index never used
  ClusterCache cache_;
  std::vector<std::pair<uint64_t, uint64_t>> releases_;
  bool table_dirty_ = false;
  bool table_moved_ = false;
  bool unsynced_ = false;
};

}  // namespace vmm86::qcow2
