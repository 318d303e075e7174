// What a VGA shows, from its registers and video memory (devices/display/vga.h): the
// picture as 32-bit RGB pixels for the displays (VNC, --screenshot), and the characters of
// a text mode for --screen-text and tests. One frame at the mode's own resolution: text
// cells 8 or 9 pixels wide and as high as the CRTC's character height, graphics lines
// without the double scan (mode 13h is 320x200, 12h 640x480, VBE modes as set).
// Covered: text modes (font from plane 2, the attribute palette and DAC, blink as a
// bright background off, the cursor), 16-colour planar modes, 256-colour (chain-4 and
// VBE 8 bpp), VBE 15/16/24/32 bpp. Not yet: CGA-compatible modes 4-6 (shown black), split
// screen (line compare), horizontal panning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/display/vga.h"

namespace vmm86 {

/// One rendered frame: pixels 0x00RRGGBB, row after row.
struct VgaFrame {
  unsigned width = 0;
  unsigned height = 0;
  std::vector<uint32_t> pixels;
};

/// Draws what `vga` shows into `frame` (resized to the mode). A blanked screen (the
/// attribute controller's palette source bit clear) is black at the mode's size.
void render_vga(const Vga& vga, VgaFrame* frame);

/// In a text mode: the screen's rows, each its columns as text (CP437 0x20-0x7E as
/// themselves, NUL as a space, every other code as '.'), trailing spaces removed. Empty
/// in a graphics mode.
[[nodiscard]] std::vector<std::string> vga_text_rows(const Vga& vga);

}  // namespace vmm86
