// User-mode networking (QEMU's `-netdev user`) on Debian's libslirp: the guest's frames go
// into slirp's TCP/IP stack, which speaks for the virtual network 10.0.2.0/24 (gateway and
// host 10.0.2.2, DNS 10.0.2.3 forwarded to the host's resolver, DHCP from 10.0.2.15) and
// opens ordinary host sockets for the guest's connections: no root, no tap device. The
// gateway's address reaches the host's loopback. hostfwd rules listen on host ports and
// forward the connections to the guest.
//
// slirp needs its sockets polled and its timers run. Everything here runs on the vCPU
// thread (docs/design-notes.md, "User networking: polled from the vCPU loop"): the
// machine calls poll() from its service path after exits (a zero-timeout poll), and adds
// poll_fds() to the ppoll of an idle vCPU, so a packet for a halted guest wakes it at once.
// Frames slirp has for the guest arrive synchronously in the NetReceiver.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/net/host_forward.h"
#include "devices/net/net_backend.h"

struct Slirp;

namespace vmm86 {

/// What user networking counted (--stats).
struct UserNetStats {
  uint64_t to_host_frames = 0;   ///< frames the guest sent into slirp
  uint64_t to_guest_frames = 0;  ///< frames slirp sent to the guest
  uint64_t polls = 0;            ///< poll() calls from the vCPU loop
  uint64_t polls_ready = 0;      ///< of which found a socket ready
  uint64_t guest_errors = 0;     ///< malformed traffic slirp reported
};

class UserNet final : public NetBackend {
 public:
  /// Starts the stack with `forwards` listening; an error if a host port is taken.
  [[nodiscard]] static Result<std::unique_ptr<UserNet>> create(const std::vector<HostForward>& forwards);
  ~UserNet();
  UserNet(const UserNet&) = delete;
  UserNet& operator=(const UserNet&) = delete;

  /// Where frames for the guest go (the NIC); none: dropped.
  void set_receiver(NetReceiver* receiver) { receiver_ = receiver; }

  // NetBackend: a frame from the guest.
  void send(std::span<const uint8_t> frame) override;

  /// Serves ready sockets and expired timers without blocking.
  void poll();
  /// Appends the sockets slirp waits on to `fds` and lowers `*timeout_ns` to slirp's next
  /// deadline, for an idle vCPU's ppoll; the next poll() serves what it finds ready.
  void poll_fds(std::vector<pollfd>* fds, uint64_t* timeout_ns);

  [[nodiscard]] const UserNetStats& stats() const { return stats_; }

 private:
  struct Timer;
  UserNet() = default;
  [[nodiscard]] Status start(const std::vector<HostForward>& forwards);
  void run_timers();
  [[nodiscard]] static int64_t now_ns();

  // libslirp callbacks (opaque = this).
  static ssize_t send_packet_cb(const void* buf, size_t len, void* opaque);
  static void guest_error_cb(const char* msg, void* opaque);
  static int64_t clock_get_ns_cb(void* opaque);
  static void* timer_new_cb(void (*cb)(void*), void* cb_opaque, void* opaque);
  static void timer_free_cb(void* timer, void* opaque);
  static void timer_mod_cb(void* timer, int64_t expire_ms, void* opaque);
  static void register_poll_fd_cb(int fd, void* opaque);
  static void unregister_poll_fd_cb(int fd, void* opaque);
  static void notify_cb(void* opaque);
  static int add_poll_cb(int fd, int events, void* opaque);
  static int get_revents_cb(int idx, void* opaque);

  Slirp* slirp_ = nullptr;
  NetReceiver* receiver_ = nullptr;
  std::vector<std::unique_ptr<Timer>> timers_;
  std::vector<pollfd> fds_;  ///< the last fill, in slirp's index order
  UserNetStats stats_;
};

}  // namespace vmm86
