// qcow2 header parsing: every field is checked against the file before a table is read, so
// that a malformed image is refused at open in one line (and never causes a huge allocation).
#include <algorithm>

#include "devices/storage/qcow2_format.h"

namespace vmm86::qcow2 {
namespace {

uint64_t round_up(uint64_t value, uint64_t unit) { return (value + unit - 1) / unit * unit; }

/// Reads the fixed fields (v2's 72 bytes and, for v3, the feature fields).
Result<Header> read_fields(std::span<const uint8_t> head, const std::string& path) {
  if (head.size() < kV2HeaderBytes) return make_error("qcow2 image {} is truncated: no complete header", path);
  const uint8_t* p = head.data();
  Header h;
  h.version = static_cast<uint32_t>(load_be(p + 4, 4));
  if (h.version != 2 && h.version != 3) {
    return make_error("qcow2 image {} has version {}; vmm86 reads versions 2 and 3", path, h.version);
  }
  const uint64_t backing_offset = load_be64(p + 8);
  const auto backing_size = static_cast<uint32_t>(load_be(p + 16, 4));
  h.cluster_bits = static_cast<uint32_t>(load_be(p + 20, 4));
  h.size = load_be64(p + 24);
  const auto crypt_method = static_cast<uint32_t>(load_be(p + 32, 4));
  h.l1_size = static_cast<uint32_t>(load_be(p + 36, 4));
  h.l1_table_offset = load_be64(p + 40);
  h.refcount_table_offset = load_be64(p + 48);
  h.refcount_table_clusters = static_cast<uint32_t>(load_be(p + 56, 4));
  h.nb_snapshots = static_cast<uint32_t>(load_be(p + 60, 4));
  h.snapshots_offset = load_be64(p + 64);
  if (crypt_method != 0) return make_error("qcow2 image {} is encrypted; vmm86 does not decrypt images", path);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return make_error("qcow2 image {} has cluster_bits {} (vmm86 takes 9 to 21: 512 B to 2 MiB clusters)", path,
                      h.cluster_bits);
  }
  if (h.version == 3) {
    if (head.size() < kV3HeaderBytes) return make_error("qcow2 image {} is truncated: no complete v3 header", path);
    h.incompatible_features = load_be64(p + 72);
    h.compatible_features = load_be64(p + 80);
    h.autoclear_features = load_be64(p + 88);
    h.refcount_order = static_cast<uint32_t>(load_be(p + 96, 4));
    h.header_length = static_cast<uint32_t>(load_be(p + 100, 4));
    const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
    if (h.header_length < kV3HeaderBytes || h.header_length % 8 != 0 || h.header_length > cluster_size ||
        h.header_length > head.size()) {
      return make_error("qcow2 image {} has a bad header_length {}", path, h.header_length);
    }
    if (h.refcount_order > 6)
      return make_error("qcow2 image {} has refcount_order {} (at most 6)", path, h.refcount_order);
  }
  if (backing_offset != 0) {
    if (backing_size == 0 || backing_size > kMaxBackingNameBytes || backing_offset > head.size() ||
        backing_size > head.size() - backing_offset || backing_offset < h.header_length) {
      return make_error("qcow2 image {} has a bad backing file name field (offset {}, {} bytes)", path, backing_offset,
                        backing_size);
    }
    h.backing_file.assign(reinterpret_cast<const char*>(p + backing_offset), backing_size);
  }
  return h;
}

/// Feature bits: unknown incompatible ones refuse the image, so do the features vmm86 does
/// not implement; the dirty and corrupt bits refuse writable opens only.
Status check_features(const Header& h, std::span<const uint8_t> head, const std::string& path, bool read_only) {
  const uint64_t incompat = h.incompatible_features;
  if ((incompat & ~kIncompatKnown) != 0) {
    return make_error("qcow2 image {} uses unknown incompatible features (bits {:#x}); vmm86 cannot open it", path,
                      incompat & ~kIncompatKnown);
  }
  if (incompat & kIncompatExternalData) {
    return make_error("qcow2 image {} keeps its data in an external data file; vmm86 does not support that", path);
  }
  if (incompat & kIncompatExtendedL2) {
    return make_error("qcow2 image {} uses extended L2 entries (subclusters); vmm86 does not support them", path);
  }
  const uint8_t compression_type = h.header_length > kV3HeaderBytes ? head[kV3HeaderBytes] : 0;
  if ((incompat & kIncompatCompressionType) != 0 || compression_type != 0) {
    if (compression_type == 1 && (incompat & kIncompatCompressionType)) {
      return make_error("qcow2 image {} uses zstd compression; vmm86 reads zlib-compressed images only", path);
    }
    return make_error("qcow2 image {} has an invalid compression type {} (vmm86 reads zlib only)", path,
                      compression_type);
  }
  if (!read_only && (incompat & kIncompatCorrupt)) {
    return make_error("qcow2 image {} is marked corrupt; repair it (qemu-img check -r all {}) or open it read-only",
                      path, path);
  }
  if (!read_only && (incompat & kIncompatDirty)) {
    return make_error(
        "qcow2 image {} was not closed cleanly (dirty bit: its refcounts may be stale); repair it (qemu-img check -r "
        "all {}) or open it read-only",
        path, path);
  }
  return ok_status();
}

/// Tables and the virtual size: aligned, inside the file, within QEMU's limits, and an L1
/// table large enough for the size.
Status check_tables(const Header& h, uint64_t file_size, const std::string& path) {
  const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
  const uint64_t file_end = round_up(file_size, cluster_size);
  auto inside = [&](uint64_t offset, uint64_t bytes) { return offset <= file_end && bytes <= file_end - offset; };
  if (h.size == 0) return make_error("qcow2 image {} has a virtual size of 0", path);
  if (h.size > kMaxVirtualSize)
    return make_error("qcow2 image {} has a virtual size of {} bytes: too large", path, h.size);
  const uint64_t bytes_per_l1_entry = cluster_size * (cluster_size / 8);
  const uint64_t needed_l1 = (h.size + bytes_per_l1_entry - 1) / bytes_per_l1_entry;
  if (h.l1_size < needed_l1) {
    return make_error("qcow2 image {} has an L1 table of {} entries, too small for its {} bytes", path, h.l1_size,
                      h.size);
  }
  const uint64_t l1_bytes = uint64_t{h.l1_size} * 8;
  if (l1_bytes > kMaxL1Bytes)
    return make_error("qcow2 image {} has an L1 table of {} entries: too large", path, h.l1_size);
  if (h.l1_table_offset % cluster_size != 0 || h.l1_table_offset == 0 || !inside(h.l1_table_offset, l1_bytes)) {
    return make_error("qcow2 image {} has its L1 table at {:#x}, not a cluster inside the file", path,
                      h.l1_table_offset);
  }
  const uint64_t refcount_bytes = uint64_t{h.refcount_table_clusters} * cluster_size;
  if (h.refcount_table_clusters == 0 || refcount_bytes > kMaxRefcountTableBytes) {
    return make_error("qcow2 image {} has a refcount table of {} clusters", path, h.refcount_table_clusters);
  }
  if (h.refcount_table_offset % cluster_size != 0 || h.refcount_table_offset == 0 ||
      !inside(h.refcount_table_offset, refcount_bytes)) {
    return make_error("qcow2 image {} has its refcount table at {:#x}, not a cluster inside the file", path,
                      h.refcount_table_offset);
  }
  if (h.nb_snapshots != 0 &&
      (h.snapshots_offset % cluster_size != 0 || h.snapshots_offset == 0 || !inside(h.snapshots_offset, 1))) {
    return make_error("qcow2 image {} has its snapshot table at {:#x}, not a cluster inside the file", path,
                      h.snapshots_offset);
  }
  return ok_status();
}

/// Header extensions (between the header and the backing file name, inside the first
/// cluster): the backing format is kept; encryption and external data files are refused.
Status read_extensions(Header* h, std::span<const uint8_t> head, uint64_t backing_offset, const std::string& path) {
  const uint64_t cluster_size = uint64_t{1} << h->cluster_bits;
  uint64_t end = std::min<uint64_t>(head.size(), cluster_size);
  if (backing_offset != 0) end = std::min(end, backing_offset);
  uint64_t at = h->header_length;
  while (at + 8 <= end) {
    const auto type = static_cast<uint32_t>(load_be(head.data() + at, 4));
    const uint64_t length = load_be(head.data() + at + 4, 4);
    if (type == kExtEnd) return ok_status();
    if (length > end - at - 8) return make_error("qcow2 image {} has a header extension running past its end", path);
    const uint8_t* data = head.data() + at + 8;
    if (type == kExtBackingFormat) h->backing_format.assign(reinterpret_cast<const char*>(data), length);
    if (type == kExtFullDiskEncryption)
      return make_error("qcow2 image {} is encrypted; vmm86 does not decrypt images", path);
    if (type == kExtExternalDataFile) {
      return make_error("qcow2 image {} keeps its data in an external data file; vmm86 does not support that", path);
    }
    at += 8 + round_up(length, 8);
  }
  return ok_status();
}

}  // namespace

Result<Header> parse_header(std::span<const uint8_t> head, uint64_t file_size, const std::string& path,
                            bool read_only) {
  if (!has_magic(head)) return make_error("{} is not a qcow2 image", path);
  auto header = read_fields(head, path);
  if (!header) return header;
  const uint64_t backing_offset = load_be64(head.data() + 8);
  VMM86_TRY(check_features(*header, head, path, read_only));
  VMM86_TRY(check_tables(*header, file_size, path));
  VMM86_TRY(read_extensions(&*header, head, backing_offset, path));
  return header;
}

}  // namespace vmm86::qcow2
