// A qcow2 disk image (versions 2 and 3), read and written by vmm86's own code from QEMU's
// published format specification (qcow2_format.h has the layout):
//   - guest clusters map through the L1 table (in memory) and L2 tables (a write-back LRU
//     cache, 4 MiB); unallocated clusters read from the backing file or as zeros, zero
//     clusters (v3) as zeros, zlib-compressed clusters are inflated (read; a write to one
//     moves it to a new cluster);
//   - a write to a cluster that is not yet this image's own (unallocated, zero, compressed,
//     or shared with an internal snapshot) takes a new cluster at the end of the file and
//     copies the rest of the cluster from what the guest saw there (copy-on-write); L2
//     tables shared with a snapshot are copied the same way, so snapshots stay intact;
//   - metadata is written back in an order that leaves a killed process's image consistent
//     (at worst leaking clusters): refcounts, then L2 tables, then L1 (qcow2_refcounts.h);
//     flush() writes all of it and fdatasyncs.
// Backing files: the header's name, relative to the image's directory; raw or qcow2 (from
// the header's format extension, else probed), opened read-only with a shared lock, chains
// up to 16 deep, loops refused. Refused at open, in one line: encryption, external data
// files, extended L2 entries, zstd, unknown incompatible features, malformed tables; a
// writable open of an image marked dirty or corrupt. A corrupt table met during I/O makes
// read or write return false (the drive reports an error).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/storage/block_backend.h"
#include "devices/storage/image_file.h"
#include "devices/storage/qcow2_cache.h"
#include "devices/storage/qcow2_format.h"
#include "devices/storage/qcow2_refcounts.h"

namespace vmm86 {

struct Qcow2Options {
  bool read_only = false;
};

class Qcow2Image final : public BlockBackend {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> open(const std::string& path, Qcow2Options options);
  /// The same over a file already opened (and locked) by ImageFile::open.
  [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> from_file(ImageFile file, Qcow2Options options);

  /// Writes back the cached metadata (flush()).
  ~Qcow2Image() override;
  Qcow2Image(const Qcow2Image&) = delete;
  Qcow2Image& operator=(const Qcow2Image&) = delete;

  [[nodiscard]] uint64_t size_bytes() const override { return header_.size; }
  [[nodiscard]] bool read_only() const override { return read_only_; }
  [[nodiscard]] bool read(uint64_t offset, std::span<uint8_t> out) override;
  [[nodiscard]] bool write(uint64_t offset, std::span<const uint8_t> data) override;
  /// Writes back dirty metadata (refcounts, L2, L1, in that order), then fdatasync.
  [[nodiscard]] bool flush() override;
  [[nodiscard]] const std::string& name() const override { return file_.path(); }

  [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << header_.cluster_bits; }
  /// The backing image, or null.
  [[nodiscard]] const BlockBackend* backing() const { return backing_.get(); }

 private:
  /// The (device, inode) of every image opened so far in one chain.
  using Chain = std::vector<std::pair<uint64_t, uint64_t>>;
  enum class Kind : uint8_t { Unallocated, Zero, Data, Compressed };
  /// Where one guest cluster lives.
  struct Mapping {
    Kind kind = Kind::Unallocated;
    bool copied = false;  ///< Data: refcount 1, writable in place
    uint64_t host = 0;    ///< Data and Zero: cluster offset (0: none); Compressed: byte offset
    uint64_t entry = 0;   ///< the L2 entry
  };

  Qcow2Image(ImageFile file, qcow2::Header header, bool read_only);
  [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> open_layer(ImageFile file, bool read_only, Chain* chain);
  [[nodiscard]] Status load_tables();
  [[nodiscard]] Status open_backing(Chain* chain);

  [[nodiscard]] bool lookup(uint64_t guest_cluster, Mapping* mapping);
  [[nodiscard]] bool decode(uint64_t entry, Mapping* mapping) const;
  /// The guest bytes [offset, offset + out.size()), all inside the cluster `mapping` maps.
  [[nodiscard]] bool read_part(const Mapping& mapping, uint64_t offset, std::span<uint8_t> out);
  [[nodiscard]] bool read_backing(uint64_t offset, std::span<uint8_t> out);
  [[nodiscard]] bool read_compressed(uint64_t entry, uint64_t in_cluster, std::span<uint8_t> out);
  /// How many bytes from `offset` (at most `limit`) the run starting with `first` covers:
  /// following clusters of the same kind, and for data contiguous in the file.
  [[nodiscard]] size_t run_length(const Mapping& first, uint64_t offset, size_t limit);

  /// Each returns the bytes of `data` it wrote from guest `offset`, 0 on failure.
  [[nodiscard]] size_t write_in_place(const Mapping& first, uint64_t offset, std::span<const uint8_t> data);
  [[nodiscard]] size_t write_new_clusters(const Mapping& first, uint64_t offset, std::span<const uint8_t> data);
  /// The L2 table of L1 entry `index`, made this image's own (allocated or copied).
  [[nodiscard]] uint8_t* writable_l2(uint64_t index, uint64_t* table_offset);
  void release(const Mapping& old);
  [[nodiscard]] bool overlaps_fixed_metadata(uint64_t host, uint64_t bytes) const;

  [[nodiscard]] bool clear_autoclear_features();
  [[nodiscard]] bool write_l2(uint64_t offset, std::span<const uint8_t> bytes);
  [[nodiscard]] bool refcounts_durable();
  [[nodiscard]] bool sync_file();
  [[nodiscard]] bool write_metadata();

  ImageFile file_;
  qcow2::Header header_;
  bool read_only_;
  uint32_t l2_bits_;              ///< log2(entries per L2 table)
  uint64_t capacity_;             ///< writable bytes: the size rounded up to a sector
  bool clear_autoclear_ = false;  ///< the header's auto-clear bits go before the first write
  std::vector<uint64_t> l1_;
  uint64_t l1_dirty_first_ = UINT64_MAX;
  uint64_t l1_dirty_last_ = 0;
  std::unique_ptr<qcow2::Refcounts> refcounts_;
  std::unique_ptr<qcow2::ClusterCache> l2_cache_;
  std::unique_ptr<BlockBackend> backing_;
  uint64_t compressed_entry_ = 0;  ///< the L2 entry of compressed_cluster_ (0: none)
  std::vector<uint8_t> compressed_cluster_;
};

}  // namespace vmm86
