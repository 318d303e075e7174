// Opening a qcow2 image: the header (qcow2_header.cpp checks it), the L1 and refcount
// tables (every entry inside the file and aligned), and the backing chain.
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "devices/storage/qcow2_image.h"
#include "devices/storage/raw_image.h"

namespace vmm86 {

using qcow2::load_be64;

namespace {

/// L2 tables kept in memory: 4 MiB of them, at least four.
size_t l2_cache_capacity(uint32_t cluster_bits) { return std::max<size_t>(4, size_t{4} << 20 >> cluster_bits); }

/// The first cluster (or the whole file when smaller): header, extensions, backing name.
Result<std::vector<uint8_t>> read_head(const ImageFile& file) {
  std::vector<uint8_t> head(std::min<uint64_t>(file.size(), qcow2::kV3HeaderBytes + 8));
  if (!file.read_zero_filled(0, head)) return make_error("cannot read image {}", file.path());
  if (!qcow2::has_magic(head)) return make_error("{} is not a qcow2 image", file.path());
  uint32_t cluster_bits = head.size() >= 24 ? static_cast<uint32_t>(qcow2::load_be(&head[20], 4)) : 0;
  if (cluster_bits < qcow2::kMinClusterBits || cluster_bits > qcow2::kMaxClusterBits) return head;  // refused later
  head.resize(std::min<uint64_t>(file.size(), uint64_t{1} << cluster_bits));
  if (!file.read_zero_filled(0, head)) return make_error("cannot read image {}", file.path());
  return head;
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

}  // namespace

Qcow2Image::Qcow2Image(ImageFile file, qcow2::Header header, bool read_only)
    : file_(std::move(file)),
      header_(std::move(header)),
      read_only_(read_only),
      l2_bits_(header_.cluster_bits - 3),
      capacity_((header_.size + kAtaSectorSize - 1) / kAtaSectorSize * kAtaSectorSize) {}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open(const std::string& path, Qcow2Options options) {
  auto file = ImageFile::open(path, options.read_only);
  if (!file) return std::move(file).take_error();
  return from_file(std::move(*file), options);
}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::from_file(ImageFile file, Qcow2Options options) {
  Chain chain;
  return open_layer(std::move(file), options.read_only, &chain);
}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open_layer(ImageFile file, bool read_only, Chain* chain) {
  chain->emplace_back(file.device(), file.inode());
  auto head = read_head(file);
  if (!head) return std::move(head).take_error();
  auto header = qcow2::parse_header(*head, file.size(), file.path(), read_only);
  if (!header) return std::move(header).take_error();
  std::unique_ptr<Qcow2Image> image(new Qcow2Image(std::move(file), std::move(*header), read_only));
  VMM86_TRY(image->load_tables());
  if (!image->header_.backing_file.empty()) VMM86_TRY(image->open_backing(chain));
  // Auto-clear features (bitmaps, ...) vmm86 does not keep up to date: cleared before the
  // first write, as the specification asks of a writer that does not know them.
  image->clear_autoclear_ = !read_only && image->header_.autoclear_features != 0;
  return image;
}

Status Qcow2Image::load_tables() {
  auto refcounts = qcow2::Refcounts::load(file_, {.cluster_bits = header_.cluster_bits,
                                                  .refcount_order = header_.refcount_order,
                                                  .table_offset = header_.refcount_table_offset,
                                                  .table_clusters = header_.refcount_table_clusters});
  if (!refcounts) return std::move(refcounts).take_error();
  refcounts_ = std::move(*refcounts);
  std::vector<uint8_t> bytes(uint64_t{header_.l1_size} * 8);
  if (!file_.read_zero_filled(header_.l1_table_offset, bytes))
    return make_error("cannot read the L1 table of {}", name());
  l1_.resize(header_.l1_size);
  for (size_t i = 0; i < l1_.size(); ++i) {
    l1_[i] = load_be64(&bytes[i * 8]);
    const uint64_t table = l1_[i] & qcow2::kOffsetMask;
    if ((l1_[i] & qcow2::kL1Reserved) != 0 || (table & (cluster_size() - 1)) != 0 ||
        table >= refcounts_->end_offset()) {
      return make_error("qcow2 image {} is corrupt: L1 entry {} ({:#x}) is not a cluster inside the file", name(), i,
                        l1_[i]);
    }
  }
  l2_cache_ = std::make_unique<qcow2::ClusterCache>(
      cluster_size(), l2_cache_capacity(header_.cluster_bits),
      [this](uint64_t offset, std::span<uint8_t> out) { return file_.read_zero_filled(offset, out); },
      [this](uint64_t offset, std::span<const uint8_t> table) { return write_l2(offset, table); });
  return ok_status();
}

Status Qcow2Image::open_backing(Chain* chain) {
  const std::string& named = header_.backing_file;
  if (chain->size() > qcow2::kMaxBackingDepth) {
    return make_error("backing chain of {} is deeper than {} images", name(), qcow2::kMaxBackingDepth);
  }
  const std::string path = named.front() == '/' ? named : directory_of(name()) + named;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error("cannot open backing file {} of {}: {}", path, name(), std::strerror(errno));
  }
  const std::pair<uint64_t, uint64_t> identity{st.st_dev, st.st_ino};
  if (std::find(chain->begin(), chain->end(), identity) != chain->end()) {
    return make_error("backing chain loop: {} names {} as its backing file, which is already in the chain", name(),
                      path);
  }
  auto file = ImageFile::open(path, /*read_only=*/true);
  if (!file) return make_error("backing file of {}: {}", name(), file.error());
  std::string format = header_.backing_format;
  if (format.empty()) {  // not recorded: probe, as QEMU does
    std::array<uint8_t, 4> magic{};
    format = file->read_some(0, magic) == 4 && qcow2::has_magic(magic) ? "qcow2" : "raw";
  }
  if (format == "raw") {
    auto raw = RawImage::from_file(std::move(*file), {.read_only = true});
    if (!raw) return make_error("backing file of {}: {}", name(), raw.error());
    backing_ = std::move(*raw);
  } else if (format == "qcow2") {
    auto layer = open_layer(std::move(*file), /*read_only=*/true, chain);
    if (!layer) return make_error("backing file of {}: {}", name(), layer.error());
    backing_ = std::move(*layer);
  } else {
    return make_error("backing file {} of {} has format {}; vmm86 reads raw and qcow2", path, name(), format);
  }
  return ok_status();
}

}  // namespace vmm86
