#include "devices/display/vga_render.h"

#include <algorithm>
#include <array>

namespace vmm86 {

namespace {

constexpr uint32_t kVramMask = Vga::kVramBytes - 1;

uint32_t rgb_of(const std::array<uint8_t, 3>& c) { return uint32_t{c[0]} << 16 | uint32_t{c[1]} << 8 | c[2]; }

/// The 16 attribute colours as RGB: attribute palette -> DAC index (AR10 bit 7 takes bits
/// 5-4 from AR14 too) -> DAC, through the pixel mask.
std::array<uint32_t, 16> palette16(const Vga& vga) {
  std::array<uint32_t, 16> out{};
  for (unsigned i = 0; i < 16; ++i) {
    unsigned v = vga.attr(i);
    if ((vga.attr(0x10) & 0x80) != 0) {
      v = ((vga.attr(0x14) & 0x0Fu) << 4) | (v & 0x0F);
    } else {
      v = ((vga.attr(0x14) & 0x0Cu) << 4) | (v & 0x3F);
    }
    out[i] = rgb_of(vga.dac_rgb(v & 0xFF));
  }
  return out;
}

std::array<uint32_t, 256> palette256(const Vga& vga) {
  std::array<uint32_t, 256> out{};
  for (unsigned i = 0; i < 256; ++i) out[i] = rgb_of(vga.dac_rgb(i));
  return out;
}

/// CRTC fields shared by every mode.
struct CrtcLayout {
  unsigned start = 0;       ///< start address (CRTC units: a cell, a planar byte)
  unsigned line_units = 0;  ///< CRTC units from one line to the next
  unsigned display_lines = 0;
};

CrtcLayout crtc_layout(const Vga& vga) {
  CrtcLayout l;
  l.start = unsigned{vga.crtc(0x0C)} << 8 | vga.crtc(0x0D);
  l.line_units = vga.crtc(0x13) * 2u;
  const unsigned overflow = vga.crtc(0x07);
  l.display_lines = (vga.crtc(0x12) | (overflow & 0x02u) << 7 | (overflow & 0x40u) << 3) + 1;
  return l;
}

void render_text(const Vga& vga, VgaFrame* f) {
  const CrtcLayout l = crtc_layout(vga);
  const unsigned cols = vga.crtc(0x01) + 1u;
  const unsigned cheight = (vga.crtc(0x09) & 0x1Fu) + 1;
  const unsigned cwidth = (vga.seq(1) & 1) != 0 ? 8 : 9;
  const unsigned rows = std::max(1u, l.display_lines / cheight);
  f->width = cols * cwidth;
  f->height = rows * cheight;
  f->pixels.assign(size_t{f->width} * f->height, 0);
  if (!vga.screen_enabled()) return;
  const std::array<uint32_t, 16> pal = palette16(vga);
  const std::vector<uint8_t>& vram = vga.vram();
  // Character maps A and B in plane 2 (QEMU's layout of the select bits).
  const unsigned map = vga.seq(3);
  const std::array<uint32_t, 2> font = {((map >> 4 & 1u) | (map << 1 & 6u)) * 8192u * 4 + 2,
                                        ((map >> 5 & 1u) | (map >> 1 & 6u)) * 8192u * 4 + 2};
  const bool blink = (vga.attr(0x10) & 0x08) != 0;
  const bool line_graphics = (vga.attr(0x10) & 0x04) != 0;
  const unsigned cursor = (unsigned{vga.crtc(0x0E)} << 8 | vga.crtc(0x0F)) - l.start;
  const bool cursor_on = (vga.crtc(0x0A) & 0x20) == 0;
  const unsigned cursor_start = vga.crtc(0x0A) & 0x1Fu, cursor_end = vga.crtc(0x0B) & 0x1Fu;
  for (unsigned r = 0; r < rows; ++r) {
    for (unsigned c = 0; c < cols; ++c) {
      const unsigned cell = r * l.line_units + c;
      const uint32_t at = ((l.start + cell) * 4) & kVramMask;
      const uint8_t ch = vram[at];
      const uint8_t a = vram[at + 1];
      const uint32_t fg = pal[a & 0x0F];
      const uint32_t bg = pal[blink ? (a >> 4) & 7 : a >> 4];
      const uint32_t glyph = font[(a >> 3) & 1] + ch * 32u * 4;
      const bool is_cursor = cursor_on && r * cols + c == cursor;
      for (unsigned y = 0; y < cheight; ++y) {
        unsigned bits = vram[(glyph + y * 4) & kVramMask];
        if (is_cursor && y >= cursor_start && y <= cursor_end) bits = 0xFF;
        uint32_t* out = &f->pixels[size_t{r * cheight + y} * f->width + c * cwidth];
        for (unsigned x = 0; x < 8; ++x) out[x] = (bits >> (7 - x) & 1) != 0 ? fg : bg;
        if (cwidth == 9) out[8] = line_graphics && ch >= 0xC0 && ch <= 0xDF && (bits & 1) != 0 ? fg : bg;
      }
    }
  }
}

void render_planar(const Vga& vga, VgaFrame* f, unsigned width, unsigned height, uint32_t start_byte,
                   uint32_t line_bytes) {
  f->width = width;
  f->height = height;
  f->pixels.assign(size_t{width} * height, 0);
  const std::array<uint32_t, 16> pal = palette16(vga);
  const std::vector<uint8_t>& vram = vga.vram();
  const unsigned enable = vga.attr(0x12) & 0x0Fu;
  for (unsigned y = 0; y < height; ++y) {
    for (unsigned x = 0; x < width; ++x) {
      const uint32_t at = (start_byte + y * line_bytes + (x / 8) * 4) & kVramMask;
      const unsigned bit = 7 - x % 8;
      unsigned index = 0;
      for (unsigned p = 0; p < 4; ++p) index |= ((vram[at + p] >> bit) & 1u) << p;
      f->pixels[size_t{y} * width + x] = pal[index & enable];
    }
  }
}

void render_graphics(const Vga& vga, VgaFrame* f) {
  const CrtcLayout l = crtc_layout(vga);
  const unsigned scan = ((vga.crtc(0x09) & 0x1Fu) + 1) << (vga.crtc(0x09) >> 7);
  const unsigned height = std::max(1u, l.display_lines / scan);
  const unsigned shift = (vga.gc(5) >> 5) & 3u;
  const uint32_t start_byte = l.start * 4;
  const uint32_t line_bytes = l.line_units * 4;
  if (!vga.screen_enabled()) {
    f->width = (vga.crtc(0x01) + 1u) * 8;
    f->height = height;
    f->pixels.assign(size_t{f->width} * f->height, 0);
    return;
  }
  if (shift >= 2) {  // 256 colours: one byte a pixel (chain-4)
    const unsigned width = (vga.crtc(0x01) + 1u) * 4;
    f->width = width;
    f->height = height;
    f->pixels.resize(size_t{width} * height);
    const std::array<uint32_t, 256> pal = palette256(vga);
    for (unsigned y = 0; y < height; ++y) {
      for (unsigned x = 0; x < width; ++x) {
        f->pixels[size_t{y} * width + x] = pal[vga.vram()[(start_byte + y * line_bytes + x) & kVramMask]];
      }
    }
    return;
  }
  const unsigned width = (vga.crtc(0x01) + 1u) * 8;
  if (shift == 1) {  // CGA 4-colour modes: not drawn yet
    f->width = width;
    f->height = height;
    f->pixels.assign(size_t{width} * height, 0);
    return;
  }
  render_planar(vga, f, width, height, start_byte, line_bytes);
}

void render_vbe(const Vga& vga, VgaFrame* f) {
  const unsigned width = vga.dispi_reg(dispi::kIndexXres);
  const unsigned height = vga.dispi_reg(dispi::kIndexYres);
  const unsigned bpp = vga.dispi_reg(dispi::kIndexBpp) == 0 ? 8 : vga.dispi_reg(dispi::kIndexBpp);
  const uint32_t line = vga.vbe_line_offset();
  if (bpp == 4) {
    render_planar(vga, f, width, height, vga.vbe_start() * 4, line * 4);
    return;
  }
  f->width = width;
  f->height = height;
  f->pixels.resize(size_t{width} * height);
  const std::vector<uint8_t>& vram = vga.vram();
  const std::array<uint32_t, 256> pal = palette256(vga);
  for (unsigned y = 0; y < height; ++y) {
    for (unsigned x = 0; x < width; ++x) {
      uint32_t at = vga.vbe_start() + y * line;
      uint32_t rgb = 0;
      switch (bpp) {
        case 8: rgb = pal[vram[(at + x) & kVramMask]]; break;
        case 15:
        case 16: {
          at = (at + x * 2) & kVramMask;
          const unsigned v = vram[at] | unsigned{vram[(at + 1) & kVramMask]} << 8;
          const unsigned r = bpp == 16 ? v >> 11 : (v >> 10) & 0x1F;
          const unsigned g = bpp == 16 ? (v >> 5) & 0x3F : ((v >> 5) & 0x1F) << 1;
          const unsigned b = v & 0x1F;
          rgb = (r << 3 | r >> 2) << 16 | (g << 2 | g >> 4) << 8 | (b << 3 | b >> 2);
          break;
        }
        default: {  // 24 and 32: blue, green, red in memory order
          at = (at + x * (bpp / 8)) & kVramMask;
          rgb = uint32_t{vram[(at + 2) & kVramMask]} << 16 | uint32_t{vram[(at + 1) & kVramMask]} << 8 | vram[at];
          break;
        }
      }
      f->pixels[size_t{y} * width + x] = rgb;
    }
  }
}

bool text_mode(const Vga& vga) { return !vga.vbe_enabled() && (vga.gc(6) & 1) == 0; }

}  // namespace

void render_vga(const Vga& vga, VgaFrame* frame) {
  if (vga.vbe_enabled()) {
    render_vbe(vga, frame);
  } else if (text_mode(vga)) {
    render_text(vga, frame);
  } else {
    render_graphics(vga, frame);
  }
}

std::vector<std::string> vga_text_rows(const Vga& vga) {
  std::vector<std::string> rows;
  if (!text_mode(vga)) return rows;
  const CrtcLayout l = crtc_layout(vga);
  const unsigned cols = vga.crtc(0x01) + 1u;
  const unsigned cheight = (vga.crtc(0x09) & 0x1Fu) + 1;
  const unsigned count = std::max(1u, l.display_lines / cheight);
  for (unsigned r = 0; r < count; ++r) {
    std::string row;
    for (unsigned c = 0; c < cols; ++c) {
      const uint8_t ch = vga.vram()[((l.start + r * l.line_units + c) * 4) & kVramMask];
      row += ch == 0 ? ' ' : ch >= 0x20 && ch < 0x7F ? static_cast<char>(ch) : '.';
    }
    row.erase(row.find_last_not_of(' ') + 1);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace vmm86
