// X11 keysyms (what RFB clients send, RFC 6143 §7.5.4) to PC keys. A keysym names the
// character, not the key, so shifted characters map to the key that types them: the
// client sends Shift itself. Covered: the US layout's printable characters, Return,
// BackSpace, Tab, Escape, Shift/Control/Alt, Caps Lock, F1-F12, the arrows and the
// editing block.
#pragma once

#include <cstdint>
#include <optional>

#include "devices/legacy/ps2_keyboard.h"

namespace vmm86 {

[[nodiscard]] std::optional<PcKey> pc_key_for_keysym(uint32_t keysym);

}  // namespace vmm86
