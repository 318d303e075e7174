#include "devices/storage/raw_image.h"

#include <algorithm>
#include <array>
#include <utility>

#include "devices/storage/qcow2_format.h"

namespace vmm86 {

Result<std::unique_ptr<RawImage>> RawImage::open(const std::string& path, RawImageOptions options) {
  auto file = ImageFile::open(path, options.read_only);
  if (!file) return std::move(file).take_error();
  return from_file(std::move(*file), options);
}

Result<std::unique_ptr<RawImage>> RawImage::from_file(ImageFile file, RawImageOptions options) {
  if (file.size() == 0) return make_error("image {} is empty", file.path());
  return std::unique_ptr<RawImage>(new RawImage(std::move(file), options.guard_probed_format));
}

RawImage::RawImage(ImageFile file, bool guard_probed_format)
    : file_(std::move(file)), size_(file_.size()), guard_probed_format_(guard_probed_format) {}

std::string RawImage::size_note() const {
  if (size_ % kAtaSectorSize == 0) return {};
  return fmt::format("image {} is {} bytes, not a multiple of {}: its last sector reads zero-filled past the end",
                     name(), size_, kAtaSectorSize);
}

bool RawImage::read(uint64_t offset, std::span<uint8_t> out) {
  // Past size_ reads zero even if the file grew under us.
  const size_t inside = offset >= size_ ? 0 : static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(inside), out.end(), uint8_t{0});
  return inside == 0 || file_.read_zero_filled(offset, out.first(inside));
}

bool RawImage::writes_format_magic(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= qcow2::kMagic.size()) return false;
  std::array<uint8_t, qcow2::kMagic.size()> head{};
  if (!read(0, head)) return true;
  const size_t count = std::min<size_t>(data.size(), head.size() - offset);
  std::copy_n(data.begin(), count, head.begin() + static_cast<std::ptrdiff_t>(offset));
  return head == qcow2::kMagic;
}

bool RawImage::write(uint64_t offset, std::span<const uint8_t> data) {
  // Up to the end of the last (possibly partial) sector; a write there rounds the file up.
  const uint64_t capacity = sector_count(kAtaSectorSize) * kAtaSectorSize;
  if (read_only() || offset > capacity || data.size() > capacity - offset) return false;
  if (guard_probed_format_ && writes_format_magic(offset, data)) return false;
  if (!file_.write_all(offset, data)) return false;
  size_ = std::max<uint64_t>(size_, offset + data.size());
  return true;
}

}  // namespace vmm86
