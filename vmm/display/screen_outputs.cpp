#include "vmm/display/screen_outputs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/display/keysym.h"
#include "vmm/display/png.h"

namespace vmm86 {

Result<std::unique_ptr<ScreenOutputs>> ScreenOutputs::create(const Vga& vga, ScreenOutputsConfig config, KeySink keys) {
  std::unique_ptr<ScreenOutputs> outputs(new ScreenOutputs(vga, std::move(config), std::move(keys)));
  if (outputs->config_.vnc_host) {
    auto vnc = VncServer::start(*outputs->config_.vnc_host, outputs->config_.vnc_display);
    if (!vnc) return std::move(vnc).take_error();
    outputs->vnc_ = std::move(*vnc);
  }
  return outputs;
}

void ScreenOutputs::poll(uint64_t now_ns) {
  if (!vnc_) return;
  for (const VncKey& key : vnc_->take_keys()) {
    const std::optional<PcKey> pc_key = pc_key_for_keysym(key.keysym);
    if (keys_ && pc_key) keys_(*pc_key, key.down);
  }
  if (now_ns < next_refresh_ns_) return;
  next_refresh_ns_ = now_ns + 1'000'000'000 / kRefreshHz;
  // A text mode's cursor does not blink here, so an unchanged VGA shows an unchanged picture.
  if (vga_.generation() == rendered_generation_) return;
  rendered_generation_ = vga_.generation();
  render_vga(vga_, &frame_);
  ++frames_;
  vnc_->publish(frame_);
}

Status ScreenOutputs::finish() {
  if (!config_.screenshot_path.empty()) {
    render_vga(vga_, &frame_);
    VMM86_TRY(write_png(config_.screenshot_path, frame_));
  }
  if (!config_.screen_text_path.empty()) {
    std::FILE* file = std::fopen(config_.screen_text_path.c_str(), "w");
    if (file == nullptr) return make_error("--screen-text {}: {}", config_.screen_text_path, std::strerror(errno));
    for (const std::string& row : vga_text_rows(vga_)) std::fprintf(file, "%s\n", row.c_str());
    if (std::fclose(file) != 0)
      return make_error("--screen-text {}: {}", config_.screen_text_path, std::strerror(errno));
  }
  return ok_status();
}

}  // namespace vmm86
