#include "vmm/display/vnc_server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <signal.h>

#include <algorithm>
#include <cstring>

namespace vmm86 {
namespace {

constexpr unsigned kBasePort = 5900;
constexpr unsigned kInitialWidth = 640, kInitialHeight = 400;

rfbScreenInfoPtr screen_of(void* p) { return static_cast<rfbScreenInfoPtr>(p); }

/// Our pixels are 0x00RRGGBB in host (little-endian) order.
void set_pixel_format(rfbScreenInfoPtr s) {
  s->serverFormat.redShift = 16;
  s->serverFormat.greenShift = 8;
  s->serverFormat.blueShift = 0;
}

}  // namespace

Result<std::unique_ptr<VncServer>> VncServer::start(const std::string& host, unsigned display) {
  std::unique_ptr<VncServer> server(new VncServer());
  server->width_ = kInitialWidth;
  server->height_ = kInitialHeight;
  server->buffer_.assign(size_t{kInitialWidth} * kInitialHeight, 0);
  int argc = 0;
  rfbScreenInfoPtr s = rfbGetScreen(&argc, nullptr, static_cast<int>(kInitialWidth), static_cast<int>(kInitialHeight),
                                    8, 3, 4);
  if (s == nullptr) return make_error("--display vnc: cannot create the VNC screen");
  server->screen_ = s;
  set_pixel_format(s);
  s->frameBuffer = reinterpret_cast<char*>(server->buffer_.data());
  s->desktopName = "vmm86";
  s->autoPort = FALSE;
  s->port = static_cast<int>(kBasePort + display);
  s->ipv6port = 0;  // IPv4 only, as the host given is
  s->alwaysShared = TRUE;
  s->cursor = nullptr;  // libvncserver's default arrow would be drawn into the picture clients get
  s->screenData = server.get();
  s->kbdAddEvent = [](rfbBool down, rfbKeySym key, rfbClientPtr client) {
    on_key(static_cast<int8_t>(down), static_cast<uint32_t>(key), client);
  };
  if (!host.empty()) {
    in_addr addr{};
    if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
      return make_error("--display vnc={}:{}: give the host as an IPv4 address", host, display);
    }
    s->listenInterface = addr.s_addr;
  }
  rfbLogEnable(0);
  rfbInitServer(s);
  if (s->listenSock == RFB_INVALID_SOCKET) {
    return make_error("--display vnc={}:{}: cannot listen on port {}", host, display, s->port);
  }
  // The server's own threads from here on. They must not take the vCPU's signals (the host
  // timer's SIGALRM has to stop the engine, SIGINT/SIGTERM end the run): they start, and
  // start their client threads, with every signal blocked.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  rfbRunEventLoop(s, -1, TRUE);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return server;
}

VncServer::~VncServer() {
  if (screen_ == nullptr) return;
  rfbShutdownServer(screen_of(screen_), TRUE);
  rfbScreenCleanup(screen_of(screen_));
}

void VncServer::on_key(int8_t down, uint32_t keysym, void* client) {
  auto* self = static_cast<VncServer*>(static_cast<rfbClientPtr>(client)->screen->screenData);
  const std::lock_guard<std::mutex> lock(self->keys_mutex_);
  self->keys_.push_back({keysym, down != 0});
}

std::vector<VncKey> VncServer::take_keys() {
  const std::lock_guard<std::mutex> lock(keys_mutex_);
  return std::exchange(keys_, {});
}

void VncServer::publish(const VgaFrame& frame) {
  if (frame.width == 0 || frame.height == 0) return;
  rfbScreenInfoPtr s = screen_of(screen_);
  if (frame.width != width_ || frame.height != height_) {
    // A mode change: a new buffer, and clients that understand it get the new size.
    std::vector<uint32_t> fresh(frame.pixels);
    width_ = frame.width;
    height_ = frame.height;
    rfbNewFramebuffer(s, reinterpret_cast<char*>(fresh.data()), static_cast<int>(width_), static_cast<int>(height_), 8,
                      3, 4);
    set_pixel_format(s);
    buffer_.swap(fresh);
    updates_ += height_;
    return;
  }
  // Mark the band of rows that changed.
  unsigned first = height_, last = 0;
  for (unsigned y = 0; y < height_; ++y) {
    const size_t at = size_t{y} * width_;
    if (std::memcmp(&buffer_[at], &frame.pixels[at], width_ * sizeof(uint32_t)) == 0) continue;
    std::memcpy(&buffer_[at], &frame.pixels[at], width_ * sizeof(uint32_t));
    first = std::min(first, y);
    last = y;
  }
  if (first > last) return;
  updates_ += last - first + 1;
  rfbMarkRectAsModified(s, 0, static_cast<int>(first), static_cast<int>(width_), static_cast<int>(last + 1));
}

}  // namespace vmm86
