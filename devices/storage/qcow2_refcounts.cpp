#include "devices/storage/qcow2_refcounts.h"

#include <algorithm>
#include <array>

#include "devices/storage/qcow2_format.h"

namespace vmm86::qcow2 {
namespace {

/// Refcount blocks kept in memory: 1 MiB of them, at least four.
size_t block_cache_capacity(uint32_t cluster_bits) { return std::max<size_t>(4, size_t{1} << 20 >> cluster_bits); }

/// Host cluster indexes stay below 2^56 bytes (the offset field of an L2 entry).
constexpr uint64_t kMaxHostOffset = uint64_t{1} << 56;

}  // namespace

Result<std::unique_ptr<Refcounts>> Refcounts::load(const ImageFile& file, const RefcountLayout& layout) {
  const uint64_t cluster_size = uint64_t{1} << layout.cluster_bits;
  const uint64_t file_clusters = (file.size() + cluster_size - 1) >> layout.cluster_bits;
  std::vector<uint8_t> bytes(layout.table_clusters * cluster_size);
  if (!file.read_zero_filled(layout.table_offset, bytes)) {
    return make_error("cannot read the refcount table of {}", file.path());
  }
  std::vector<uint64_t> table(bytes.size() / 8);
  for (size_t i = 0; i < table.size(); ++i) {
    table[i] = load_be64(&bytes[i * 8]);
    const uint64_t block = table[i];
    if (block != 0 && ((block & (cluster_size - 1)) != 0 || (block >> layout.cluster_bits) >= file_clusters)) {
      return make_error("qcow2 image {} is corrupt: refcount table entry {} ({:#x}) is not a cluster inside the file",
                        file.path(), i, block);
    }
  }
  return std::unique_ptr<Refcounts>(new Refcounts(file, layout, std::move(table), file_clusters));
}

Refcounts::Refcounts(const ImageFile& file, const RefcountLayout& layout, std::vector<uint64_t> table,
                     uint64_t next_free)
    : file_(&file),
      layout_(layout),
      block_bits_(layout.cluster_bits + 3 - layout.refcount_order),
      table_(std::move(table)),
      next_free_(next_free),
      cache_(
          size_t{1} << layout.cluster_bits, block_cache_capacity(layout.cluster_bits),
          [this](uint64_t offset, std::span<uint8_t> out) { return file_->read_zero_filled(offset, out); },
          [this](uint64_t offset, std::span<const uint8_t> bytes) {
            unsynced_ = true;
            return file_->write_all(offset, bytes);
          }) {}

uint64_t Refcounts::entry(const uint8_t* block, uint64_t index) const {
  const unsigned bits = 1u << layout_.refcount_order;
  if (bits < 8) {  // packed, the first entry in the low bits of a byte
    const uint64_t bit = index * bits;
    return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
  }
  return load_be(block + index * (bits / 8), bits / 8);
}

void Refcounts::set_entry(uint8_t* block, uint64_t index, uint64_t value) const {
  const unsigned bits = 1u << layout_.refcount_order;
  if (bits < 8) {
    const uint64_t bit = index * bits;
    const unsigned mask = ((1u << bits) - 1) << (bit % 8);
    block[bit / 8] = static_cast<uint8_t>((block[bit / 8] & ~mask) | ((value << (bit % 8)) & mask));
    return;
  }
  store_be(block + index * (bits / 8), bits / 8, value);
}

uint8_t* Refcounts::block_for(uint64_t cluster, uint64_t* block_offset) {
  const uint64_t index = cluster >> block_bits_;
  *block_offset = index < table_.size() ? table_[index] : 0;
  if (*block_offset == 0) return nullptr;
  return cache_.get(*block_offset);
}

bool Refcounts::get(uint64_t cluster, uint64_t* refcount) {
  uint64_t block_offset = 0;
  const uint8_t* block = block_for(cluster, &block_offset);
  if (block_offset == 0) {
    *refcount = 0;  // no block: nothing counted there
    return true;
  }
  if (block == nullptr) return false;
  *refcount = entry(block, cluster & ((uint64_t{1} << block_bits_) - 1));
  return true;
}

bool Refcounts::set(uint64_t cluster, uint64_t refcount) {
  uint64_t block_offset = 0;
  uint8_t* block = block_for(cluster, &block_offset);
  if (block == nullptr) return false;
  set_entry(block, cluster & ((uint64_t{1} << block_bits_) - 1), refcount);
  cache_.mark_dirty(block_offset);
  return true;
}

uint64_t Refcounts::allocate(uint64_t count) {
  uint64_t start = next_free_;
  // A cluster past the end of the file may still be counted (a file cut short): skip it.
  for (uint64_t cluster = start; cluster < start + count; ++cluster) {
    uint64_t refcount = 0;
    if (!get(cluster, &refcount)) return 0;
    if (refcount != 0) start = cluster + 1;
  }
  if (count == 0 || ((start + count) << layout_.cluster_bits) >= kMaxHostOffset) return 0;
  next_free_ = start + count;
  if (!cover(start)) return 0;
  for (uint64_t cluster = start; cluster < start + count; ++cluster) {
    if (!set(cluster, 1)) return 0;
  }
  return start << layout_.cluster_bits;
}

bool Refcounts::cover(uint64_t from) {
  std::vector<uint64_t> taken;
  uint64_t cluster = from;
  while (cluster < next_free_) {
    const uint64_t index = cluster >> block_bits_;
    if (index >= table_.size()) {
      if (!grow_table(index + 1, &taken)) return false;
      continue;
    }
    if (table_[index] == 0) {
      const uint64_t block = next_free_++;
      if (cache_.create(block << layout_.cluster_bits) == nullptr) return false;
      table_[index] = block << layout_.cluster_bits;
      table_dirty_ = true;
      taken.push_back(block);
    }
    cluster = (index + 1) << block_bits_;
  }
  return std::all_of(taken.begin(), taken.end(), [this](uint64_t block) { return set(block, 1); });
}

bool Refcounts::grow_table(uint64_t needed_entries, std::vector<uint64_t>* taken) {
  const uint64_t per_cluster = cluster_size() / 8;
  const uint64_t entries = std::max<uint64_t>(needed_entries + 1, table_.size() * 2);
  const uint64_t clusters = (entries + per_cluster - 1) / per_cluster;
  if (clusters * cluster_size() > kMaxRefcountTableBytes) return false;
  release_later(layout_.table_offset, uint64_t{layout_.table_clusters} * cluster_size());
  layout_.table_offset = next_free_ << layout_.cluster_bits;
  layout_.table_clusters = static_cast<uint32_t>(clusters);
  for (uint64_t i = 0; i < clusters; ++i) taken->push_back(next_free_++);
  table_.resize(clusters * per_cluster, 0);
  table_dirty_ = true;
  table_moved_ = true;
  return true;
}

bool Refcounts::apply_releases() {
  const auto pending = std::move(releases_);
  releases_.clear();
  for (const auto& [offset, bytes] : pending) {
    if (bytes == 0) continue;
    const uint64_t last = (offset + bytes - 1) >> layout_.cluster_bits;
    for (uint64_t cluster = offset >> layout_.cluster_bits; cluster <= last; ++cluster) {
      uint64_t refcount = 0;
      if (!get(cluster, &refcount) || refcount == 0 || !set(cluster, refcount - 1)) return false;
    }
  }
  return true;
}

bool Refcounts::write_back() {
  if (!cache_.write_dirty()) return false;
  if (!table_dirty_) return true;
  // New blocks on disk before the entries that name them; the table before the header.
  if (unsynced_ && !file_->sync()) return false;
  std::vector<uint8_t> bytes(table_.size() * 8);
  for (size_t i = 0; i < table_.size(); ++i) store_be64(&bytes[i * 8], table_[i]);
  if (!file_->write_all(layout_.table_offset, bytes)) return false;
  unsynced_ = true;
  if (table_moved_) {
    if (!file_->sync()) return false;
    std::array<uint8_t, 12> field{};
    store_be64(field.data(), layout_.table_offset);
    store_be(field.data() + 8, 4, layout_.table_clusters);
    if (!file_->write_all(kRefcountTableOffsetField, field)) return false;
    table_moved_ = false;
  }
  table_dirty_ = false;
  return true;
}

}  // namespace vmm86::qcow2
