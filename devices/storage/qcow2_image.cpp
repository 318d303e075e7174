// Qcow2Image: the guest-visible reads and writes and the write-back order. Opening (the
// header, the tables and the backing chain) is in qcow2_open.cpp.
#include "devices/storage/qcow2_image.h"

#include <zlib.h>

#include <algorithm>
#include <array>

namespace vmm86 {

using qcow2::load_be64;
using qcow2::store_be64;

namespace {

/// Largest run of new clusters one allocation takes (bounds the copy-on-write buffer).
constexpr uint64_t kMaxAllocationRun = 1 << 20;
/// Queued refcount releases that make a write also write back the metadata.
constexpr size_t kMaxPendingReleases = 1024;

}  // namespace

Qcow2Image::~Qcow2Image() {
  if (!read_only_ && refcounts_ != nullptr && l2_cache_ != nullptr) (void)flush();
}

// ---- lookups --------------------------------------------------------------------------

bool Qcow2Image::decode(uint64_t entry, Mapping* mapping) const {
  *mapping = Mapping{.entry = entry};
  if (entry & qcow2::kCompressed) {
    const uint32_t offset_bits = 62 - (header_.cluster_bits - 8);
    mapping->kind = Kind::Compressed;
    mapping->host = entry & ((uint64_t{1} << offset_bits) - 1);
    return (entry & qcow2::kCopied) == 0 && mapping->host < refcounts_->end_offset();
  }
  if ((entry & qcow2::kL2Reserved) != 0) return false;
  mapping->host = entry & qcow2::kOffsetMask;
  mapping->copied = (entry & qcow2::kCopied) != 0;
  if ((mapping->host & (cluster_size() - 1)) != 0 || mapping->host >= refcounts_->end_offset()) return false;
  if (entry & qcow2::kZeroFlag) {
    mapping->kind = Kind::Zero;
    return header_.version >= 3;  // no zero clusters before v3
  }
  mapping->kind = mapping->host == 0 ? Kind::Unallocated : Kind::Data;
  return true;
}

bool Qcow2Image::lookup(uint64_t guest_cluster, Mapping* mapping) {
  *mapping = Mapping{};
  const uint64_t index = guest_cluster >> l2_bits_;
  if (index >= l1_.size()) return true;
  const uint64_t table_offset = l1_[index] & qcow2::kOffsetMask;
  if (table_offset == 0) return true;
  const uint8_t* table = l2_cache_->get(table_offset);
  if (table == nullptr) return false;
  const uint64_t slot = guest_cluster & ((uint64_t{1} << l2_bits_) - 1);
  return decode(load_be64(table + slot * 8), mapping);
}

size_t Qcow2Image::run_length(const Mapping& first, uint64_t offset, size_t limit) {
  size_t length = std::min<uint64_t>(limit, cluster_size() - (offset & (cluster_size() - 1)));
  while (length < limit && first.kind != Kind::Compressed) {
    Mapping next;
    if (!lookup((offset + length) >> header_.cluster_bits, &next) || next.kind != first.kind) break;
    const uint64_t expected_host = first.host + (offset & (cluster_size() - 1)) + length;
    if (first.kind == Kind::Data && (next.copied != first.copied || next.host != expected_host)) break;
    length += std::min<uint64_t>(limit - length, cluster_size());
  }
  return length;
}

// ---- reads ------------------------------------------------------------------------------

bool Qcow2Image::read_backing(uint64_t offset, std::span<uint8_t> out) {
  std::fill(out.begin(), out.end(), uint8_t{0});
  if (backing_ == nullptr || offset >= backing_->size_bytes()) return true;
  const auto inside = static_cast<size_t>(std::min<uint64_t>(out.size(), backing_->size_bytes() - offset));
  return backing_->read(offset, out.first(inside));
}

bool Qcow2Image::read_compressed(uint64_t entry, uint64_t in_cluster, std::span<uint8_t> out) {
  if (entry != compressed_entry_ || compressed_cluster_.empty()) {
    const uint32_t offset_bits = 62 - (header_.cluster_bits - 8);
    const uint64_t host = entry & ((uint64_t{1} << offset_bits) - 1);
    const uint64_t sectors = ((entry >> offset_bits) & ((uint64_t{1} << (header_.cluster_bits - 8)) - 1)) + 1;
    std::vector<uint8_t> packed(sectors * 512 - (host & 511));
    if (!file_.read_zero_filled(host, packed)) return false;
    compressed_cluster_.assign(cluster_size(), 0);
    compressed_entry_ = 0;
    z_stream stream{};
    if (inflateInit2(&stream, -15) != Z_OK) return false;  // raw deflate, any window
    stream.next_in = packed.data();
    stream.avail_in = static_cast<uInt>(packed.size());
    stream.next_out = compressed_cluster_.data();
    stream.avail_out = static_cast<uInt>(compressed_cluster_.size());
    const int status = inflate(&stream, Z_FINISH);
    const bool whole = stream.avail_out == 0 && (status == Z_STREAM_END || status == Z_OK || status == Z_BUF_ERROR);
    inflateEnd(&stream);
    if (!whole) return false;  // a cluster that does not inflate to a whole cluster is corrupt
    compressed_entry_ = entry;
  }
  std::copy_n(compressed_cluster_.begin() + static_cast<std::ptrdiff_t>(in_cluster), out.size(), out.begin());
  return true;
}

// A run of clusters from run_length() reads the same way as one cluster.
bool Qcow2Image::read_part(const Mapping& mapping, uint64_t offset, std::span<uint8_t> out) {
  const uint64_t in_cluster = offset & (cluster_size() - 1);
  switch (mapping.kind) {
    case Kind::Unallocated: return read_backing(offset, out);
    case Kind::Zero: std::fill(out.begin(), out.end(), uint8_t{0}); return true;
    case Kind::Data: return file_.read_zero_filled(mapping.host + in_cluster, out);
    case Kind::Compressed: return read_compressed(mapping.entry, in_cluster, out);
  }
  return false;
}

bool Qcow2Image::read(uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t at = offset + done;
    if (at >= header_.size) {
      std::fill(out.begin() + static_cast<std::ptrdiff_t>(done), out.end(), uint8_t{0});
      break;
    }
    Mapping mapping;
    if (!lookup(at >> header_.cluster_bits, &mapping)) return false;
    const size_t limit = static_cast<size_t>(std::min<uint64_t>(out.size() - done, header_.size - at));
    const size_t length = run_length(mapping, at, limit);
    if (!read_part(mapping, at, out.subspan(done, length))) return false;
    done += length;
  }
  return true;
}

// ---- writes -----------------------------------------------------------------------------

bool Qcow2Image::overlaps_fixed_metadata(uint64_t host, uint64_t bytes) const {
  auto overlaps = [&](uint64_t start, uint64_t length) { return host < start + length && start < host + bytes; };
  return overlaps(0, cluster_size()) || overlaps(header_.l1_table_offset, l1_.size() * 8);
}

size_t Qcow2Image::write_in_place(const Mapping& first, uint64_t offset, std::span<const uint8_t> data) {
  const size_t length = run_length(first, offset, data.size());
  const uint64_t host = first.host + (offset & (cluster_size() - 1));
  if (overlaps_fixed_metadata(host, length)) return 0;  // a corrupt L2 entry: never overwrite the header
  return file_.write_all(host, data.first(length)) ? length : 0;
}

void Qcow2Image::release(const Mapping& old) {
  if (old.kind == Kind::Compressed) {
    const uint32_t offset_bits = 62 - (header_.cluster_bits - 8);
    const uint64_t sectors = ((old.entry >> offset_bits) & ((uint64_t{1} << (header_.cluster_bits - 8)) - 1)) + 1;
    refcounts_->release_later(old.host & ~uint64_t{511}, sectors * 512);
  } else if (old.host != 0) {
    refcounts_->release_later(old.host, cluster_size());
  }
}

uint8_t* Qcow2Image::writable_l2(uint64_t index, uint64_t* table_offset) {
  const uint64_t entry = l1_[index];
  const uint64_t old = entry & qcow2::kOffsetMask;
  if (old != 0 && (entry & qcow2::kCopied)) {
    *table_offset = old;
    return l2_cache_->get(old);
  }
  std::vector<uint8_t> copy;
  if (old != 0) {  // shared with a snapshot: this image gets its own copy
    const uint8_t* shared = l2_cache_->get(old);
    if (shared == nullptr) return nullptr;
    copy.assign(shared, shared + cluster_size());
  }
  const uint64_t fresh = refcounts_->allocate(1);
  if (fresh == 0) return nullptr;
  uint8_t* table = l2_cache_->create(fresh, copy);
  if (table == nullptr) return nullptr;
  if (old != 0) refcounts_->release_later(old, cluster_size());
  l1_[index] = fresh | qcow2::kCopied;
  l1_dirty_first_ = std::min(l1_dirty_first_, index);
  l1_dirty_last_ = std::max(l1_dirty_last_, index);
  *table_offset = fresh;
  return table;
}

size_t Qcow2Image::write_new_clusters(const Mapping& first, uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t cluster = offset >> header_.cluster_bits;
  const uint64_t in_first = offset & (cluster_size() - 1);
  // The clusters this write reaches in the same L2 table that are not this image's own.
  const uint64_t table_end = ((cluster >> l2_bits_) + 1) << l2_bits_;
  const uint64_t last = (offset + data.size() - 1) >> header_.cluster_bits;
  const uint64_t max_count = std::max<uint64_t>(1, kMaxAllocationRun >> header_.cluster_bits);
  std::vector<Mapping> old{first};
  while (cluster + old.size() <= last && cluster + old.size() < table_end && old.size() < max_count) {
    Mapping next;
    if (!lookup(cluster + old.size(), &next) || (next.kind == Kind::Data && next.copied)) break;
    old.push_back(next);
  }
  const uint64_t count = old.size();
  const size_t length = static_cast<size_t>(std::min<uint64_t>(data.size(), count * cluster_size() - in_first));
  // The new clusters' bytes: what the guest saw around the write, then the write.
  std::vector<uint8_t> bytes(count * cluster_size());
  if (in_first != 0 && !read_part(old.front(), offset - in_first, std::span(bytes).first(in_first))) return 0;
  const uint64_t end = in_first + length;
  if (end < bytes.size() && !read_part(old.back(), offset - in_first + end, std::span(bytes).subspan(end))) return 0;
  std::copy_n(data.begin(), length, bytes.begin() + static_cast<std::ptrdiff_t>(in_first));
  uint64_t table_offset = 0;
  if (writable_l2(cluster >> l2_bits_, &table_offset) == nullptr) return 0;
  const uint64_t host = refcounts_->allocate(count);
  if (host == 0 || !file_.write_all(host, bytes)) return 0;
  // The data is in the file before the L2 entries that name it (they are written later).
  uint8_t* table = l2_cache_->get(table_offset);
  if (table == nullptr) return 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t slot = (cluster + i) & ((uint64_t{1} << l2_bits_) - 1);
    store_be64(table + slot * 8, (host + i * cluster_size()) | qcow2::kCopied);
    release(old[i]);
  }
  l2_cache_->mark_dirty(table_offset);
  return length;
}

bool Qcow2Image::clear_autoclear_features() {
  const std::array<uint8_t, 8> zero{};
  if (!file_.write_all(qcow2::kAutoclearFeaturesField, zero) || !sync_file()) return false;
  header_.autoclear_features = 0;
  clear_autoclear_ = false;
  return true;
}

bool Qcow2Image::write(uint64_t offset, std::span<const uint8_t> data) {
  if (read_only_ || offset > capacity_ || data.size() > capacity_ - offset) return false;
  if (clear_autoclear_ && !clear_autoclear_features()) return false;
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t at = offset + done;
    Mapping mapping;
    if (!lookup(at >> header_.cluster_bits, &mapping)) return false;
    const std::span<const uint8_t> rest = data.subspan(done);
    const bool own = mapping.kind == Kind::Data && mapping.copied;
    const size_t step = own ? write_in_place(mapping, at, rest) : write_new_clusters(mapping, at, rest);
    if (step == 0) return false;
    done += step;
  }
  return refcounts_->pending_releases() < kMaxPendingReleases || write_metadata();
}

// ---- write-back -------------------------------------------------------------------------

bool Qcow2Image::sync_file() {
  if (!file_.sync()) return false;
  refcounts_->synced();
  return true;
}

bool Qcow2Image::refcounts_durable() {
  if (refcounts_->dirty() && !refcounts_->write_back()) return false;
  return !refcounts_->unsynced() || sync_file();
}

bool Qcow2Image::write_l2(uint64_t offset, std::span<const uint8_t> bytes) {
  // Every cluster this table names is counted on disk before the table names it there.
  return refcounts_durable() && file_.write_all(offset, bytes);
}

bool Qcow2Image::write_metadata() {
  if (read_only_) return true;
  if (!refcounts_durable() || !l2_cache_->write_dirty()) return false;
  if (l1_dirty_first_ <= l1_dirty_last_) {
    // The L2 tables are on disk before the L1 entries that name them.
    if (!sync_file()) return false;
    std::vector<uint8_t> bytes((l1_dirty_last_ - l1_dirty_first_ + 1) * 8);
    for (uint64_t i = l1_dirty_first_; i <= l1_dirty_last_; ++i) store_be64(&bytes[(i - l1_dirty_first_) * 8], l1_[i]);
    if (!file_.write_all(header_.l1_table_offset + l1_dirty_first_ * 8, bytes)) return false;
    l1_dirty_first_ = UINT64_MAX;
    l1_dirty_last_ = 0;
  }
  if (refcounts_->pending_releases() != 0) {
    // Nothing on disk names the released clusters any more: their counts may go down.
    if (!sync_file() || !refcounts_->apply_releases() || !refcounts_->write_back()) return false;
  }
  return true;
}

bool Qcow2Image::flush() {
  if (read_only_) return true;
  return write_metadata() && sync_file();
}

}  // namespace vmm86
