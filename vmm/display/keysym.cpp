#include "vmm/display/keysym.h"

#include <array>
#include <string_view>

namespace vmm86 {
namespace {

/// The US layout's rows: the characters each key types unshifted and shifted, and the
/// set 1 code of the first key of the run.
struct KeyRun {
  uint8_t first_code;
  std::string_view plain;
  std::string_view shifted;
};
constexpr std::array<KeyRun, 5> kRuns = {{
    {0x02, "1234567890-=", "!@#$%^&*()_+"},
    {0x10, "qwertyuiop[]", "QWERTYUIOP{}"},
    {0x1E, "asdfghjkl;'`", "ASDFGHJKL:\"~"},
    {0x2B, "\\zxcvbnm,./", "|ZXCVBNM<>?"},
    {0x39, " ", " "},
}};

struct Special {
  uint32_t keysym;
  PcKey key;
};
constexpr std::array<Special, 28> kSpecial = {{
    {0xFF08, {0x0E, false}},  // BackSpace
    {0xFF09, {0x0F, false}},  // Tab
    {0xFF0D, {0x1C, false}},  // Return
    {0xFF1B, {0x01, false}},  // Escape
    {0xFFE1, {0x2A, false}},  // Shift_L
    {0xFFE2, {0x36, false}},  // Shift_R
    {0xFFE3, {0x1D, false}},  // Control_L
    {0xFFE4, {0x1D, true}},   // Control_R
    {0xFFE9, {0x38, false}},  // Alt_L
    {0xFFEA, {0x38, true}},   // Alt_R
    {0xFFE5, {0x3A, false}},  // Caps_Lock
    {0xFF50, {0x47, true}},   // Home
    {0xFF51, {0x4B, true}},   // Left
    {0xFF52, {0x48, true}},   // Up
    {0xFF53, {0x4D, true}},   // Right
    {0xFF54, {0x50, true}},   // Down
    {0xFF55, {0x49, true}},   // Page_Up
    {0xFF56, {0x51, true}},   // Page_Down
    {0xFF57, {0x4F, true}},   // End
    {0xFF63, {0x52, true}},   // Insert
    {0xFFFF, {0x53, true}},   // Delete
    {0xFF8D, {0x1C, true}},   // KP_Enter
    {0xFF7F, {0x45, false}},  // Num_Lock
    {0xFF14, {0x46, false}},  // Scroll_Lock
    {0xFFC8, {0x57, false}},  // F11
    {0xFFC9, {0x58, false}},  // F12
    {0xFFAF, {0x35, true}},   // KP_Divide
    {0xFFAA, {0x37, false}},  // KP_Multiply
}};
constexpr uint32_t kF1 = 0xFFBE, kF10 = 0xFFC7;

}  // namespace

std::optional<PcKey> pc_key_for_keysym(uint32_t keysym) {
  if (keysym >= 0x20 && keysym < 0x7F) {
    const char c = static_cast<char>(keysym);
    for (const KeyRun& run : kRuns) {
      for (std::string_view row : {run.plain, run.shifted}) {
        if (const size_t at = row.find(c); at != std::string_view::npos) {
          return PcKey{static_cast<uint8_t>(run.first_code + at), false};
        }
      }
    }
    return std::nullopt;
  }
  if (keysym >= kF1 && keysym <= kF10) return PcKey{static_cast<uint8_t>(0x3B + keysym - kF1), false};
  for (const Special& s : kSpecial) {
    if (s.keysym == keysym) return s.key;
  }
  return std::nullopt;
}

}  // namespace vmm86
