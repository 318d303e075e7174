// An RFB (VNC) server for the guest's screen, on Debian's libvncserver: its own threads
// accept clients and send them the framebuffer; the vCPU thread publishes frames
// (publish) and collects the keys clients typed (take_keys). Any RFB 3.3-3.8 client
// (vncviewer, vncsnapshot) can connect; no authentication, as QEMU's -vnc :N without
// options.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/display/vga_render.h"

namespace vmm86 {

/// A key as the client sent it: an X11 keysym (RFB 3.8 §7.5.4) going down or up.
struct VncKey {
  uint32_t keysym = 0;
  bool down = false;
};

class VncServer {
 public:
  /// Listens on `host` (empty: every interface) port 5900 + `display`.
  [[nodiscard]] static Result<std::unique_ptr<VncServer>> start(const std::string& host, unsigned display);
  ~VncServer();
  VncServer(const VncServer&) = delete;
  VncServer& operator=(const VncServer&) = delete;

  /// The screen now shows `frame`: clients get the rows that changed.
  void publish(const VgaFrame& frame);
  /// Keys typed since the last call, in order.
  [[nodiscard]] std::vector<VncKey> take_keys();
  /// Framebuffer rows sent as changed so far (for --stats).
  [[nodiscard]] uint64_t updates() const { return updates_; }

 private:
  VncServer() = default;
  static void on_key(int8_t down, uint32_t keysym, void* client);

  void* screen_ = nullptr;  ///< rfbScreenInfoPtr
  std::vector<uint32_t> buffer_;
  unsigned width_ = 0, height_ = 0;
  std::mutex keys_mutex_;
  std::vector<VncKey> keys_;
  uint64_t updates_ = 0;
};

}  // namespace vmm86
