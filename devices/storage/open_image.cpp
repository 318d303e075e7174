#include "devices/storage/open_image.h"

#include <array>
#include <utility>

#include "devices/storage/image_file.h"
#include "devices/storage/qcow2_format.h"
#include "devices/storage/qcow2_image.h"
#include "devices/storage/raw_image.h"

namespace vmm86 {

std::optional<ImageFormat> image_format_from_name(std::string_view name) {
  if (name == "raw") return ImageFormat::Raw;
  if (name == "qcow2") return ImageFormat::Qcow2;
  return std::nullopt;
}

Result<OpenedImage> open_image(const std::string& path, ImageFormat format, bool read_only) {
  auto file = ImageFile::open(path, read_only);
  if (!file) return std::move(file).take_error();
  if (format == ImageFormat::Probe) {
    std::array<uint8_t, qcow2::kMagic.size()> magic{};
    format = file->read_some(0, magic) == static_cast<int64_t>(magic.size()) && qcow2::has_magic(magic)
                 ? ImageFormat::Qcow2
                 : ImageFormat::Probe;
  }
  if (format == ImageFormat::Qcow2) {
    auto image = Qcow2Image::from_file(std::move(*file), {.read_only = read_only});
    if (!image) return std::move(image).take_error();
    return OpenedImage{std::move(*image), {}};
  }
  auto image = RawImage::from_file(std::move(*file),
                                   {.read_only = read_only, .guard_probed_format = format == ImageFormat::Probe});
  if (!image) return std::move(image).take_error();
  std::string note = (*image)->size_note();
  return OpenedImage{std::move(*image), std::move(note)};
}

}  // namespace vmm86
