#include "vmm/display/png.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace vmm86 {
namespace {

void put32(std::vector<uint8_t>* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}

/// One chunk: length, type, data, CRC of type and data (PNG spec §5.3).
void chunk(std::vector<uint8_t>* out, const char* type, const std::vector<uint8_t>& data) {
  put32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out->size();
  out->insert(out->end(), type, type + 4);
  out->insert(out->end(), data.begin(), data.end());
  const uLong crc = crc32(0, out->data() + type_at, static_cast<uInt>(data.size() + 4));
  put32(out, static_cast<uint32_t>(crc));
}

}  // namespace

Status write_png(const std::string& path, const VgaFrame& frame) {
  if (frame.width == 0 || frame.height == 0) return make_error("--screenshot {}: the screen has no picture", path);
  // Scanlines with filter type 0, then deflate.
  std::vector<uint8_t> raw;
  raw.reserve(size_t{frame.height} * (1 + size_t{frame.width} * 3));
  for (unsigned y = 0; y < frame.height; ++y) {
    raw.push_back(0);
    for (unsigned x = 0; x < frame.width; ++x) {
      const uint32_t p = frame.pixels[size_t{y} * frame.width + x];
      raw.push_back(static_cast<uint8_t>(p >> 16));
      raw.push_back(static_cast<uint8_t>(p >> 8));
      raw.push_back(static_cast<uint8_t>(p));
    }
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  if (compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), Z_BEST_SPEED) != Z_OK) {
    return make_error("--screenshot {}: zlib failed", path);
  }
  packed.resize(packed_size);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> header;
  put32(&header, frame.width);
  put32(&header, frame.height);
  header.insert(header.end(), {8, 2, 0, 0, 0});  // 8 bits, truecolour, deflate, filter 0, no interlace
  chunk(&png, "IHDR", header);
  chunk(&png, "IDAT", packed);
  chunk(&png, "IEND", {});
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"), std::fclose);
  if (!file || std::fwrite(png.data(), 1, png.size(), file.get()) != png.size()) {
    return make_error("--screenshot {}: {}", path, std::strerror(errno));
  }
  return ok_status();
}

}  // namespace vmm86
