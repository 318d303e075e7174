// Opens the image a drive names, in the format it names or the one its first bytes show:
// the one place that turns (path, format, read-only) into a BlockBackend.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "devices/storage/block_backend.h"

namespace vmm86 {

/// QEMU's format= of -drive. Probe: none given; a file with the qcow2 magic opens as qcow2,
/// anything else as raw (and then a guest write that would put a format's magic in its first
/// sector is refused, so that the next probe cannot change its mind).
enum class ImageFormat : uint8_t { Probe, Raw, Qcow2 };

/// "raw" or "qcow2"; nullopt for any other name.
[[nodiscard]] std::optional<ImageFormat> image_format_from_name(std::string_view name);

struct OpenedImage {
  std::unique_ptr<BlockBackend> backend;
  std::string note;  ///< empty, or a line for the log (a raw image's odd size)
};

/// One-line errors naming the path.
[[nodiscard]] Result<OpenedImage> open_image(const std::string& path, ImageFormat format, bool read_only);

}  // namespace vmm86
