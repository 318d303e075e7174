// Where the VGA's picture goes on the host: a VNC server (--display vnc=...) that the vCPU
// thread feeds at most kRefreshHz times a second, and only after the VGA changed; and at
// the end of the run a PNG (--screenshot) and the text-mode screen as text (--screen-text).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "devices/display/vga.h"
#include "devices/display/vga_render.h"
#include "devices/legacy/ps2_keyboard.h"
#include "vmm/display/vnc_server.h"

namespace vmm86 {

struct ScreenOutputsConfig {
  std::optional<std::string> vnc_host;  ///< set: serve VNC on this host ("" every interface)
  unsigned vnc_display = 0;
  std::string screenshot_path;   ///< empty: none
  std::string screen_text_path;  ///< empty: none
};

class ScreenOutputs {
 public:
  static constexpr uint64_t kRefreshHz = 30;
  using KeySink = std::function<void(PcKey key, bool down)>;

  /// `vga` must outlive the outputs; `keys` gets the keys VNC clients type (on the vCPU
  /// thread); keysyms without a PC key are dropped.
  [[nodiscard]] static Result<std::unique_ptr<ScreenOutputs>> create(const Vga& vga, ScreenOutputsConfig config,
                                                                     KeySink keys);
  /// From the vCPU loop, often: refreshes the VNC picture when due, hands over keys.
  void poll(uint64_t now_ns);
  /// At the end of the run: the screenshot and the text.
  [[nodiscard]] Status finish();
  [[nodiscard]] uint64_t frames_rendered() const { return frames_; }

 private:
  ScreenOutputs(const Vga& vga, ScreenOutputsConfig config, KeySink keys)
      : vga_(vga), config_(std::move(config)), keys_(std::move(keys)) {}

  const Vga& vga_;
  ScreenOutputsConfig config_;
  KeySink keys_;
  std::unique_ptr<VncServer> vnc_;
  VgaFrame frame_;
  uint64_t next_refresh_ns_ = 0;
  uint64_t rendered_generation_ = UINT64_MAX;
  uint64_t frames_ = 0;
};

}  // namespace vmm86
