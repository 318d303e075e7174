// A frame as a PNG file (8-bit RGB, no interlace), written with zlib: for --screenshot.
#pragma once

#include <string>

#include "common/result.h"
#include "devices/display/vga_render.h"

namespace vmm86 {

[[nodiscard]] Status write_png(const std::string& path, const VgaFrame& frame);

}  // namespace vmm86
