#include "devices/net/user_net.h"

#include <arpa/inet.h>
#include <slirp/libslirp.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace vmm86 {
namespace {

// QEMU's user network: 10.0.2.0/24, the host (gateway) .2, DNS .3, DHCP from .15.
constexpr const char* kNetwork = "10.0.2.0";
constexpr const char* kNetmask = "255.255.255.0";
constexpr const char* kHost = "10.0.2.2";
constexpr const char* kNameserver = "10.0.2.3";
constexpr const char* kDhcpStart = "10.0.2.15";
constexpr int64_t kNsPerMs = 1'000'000;

in_addr ipv4(const char* text) {
  in_addr addr{};
  inet_pton(AF_INET, text, &addr);
  return addr;
}

short to_poll_events(int slirp_events) {
  short events = 0;
  if (slirp_events & SLIRP_POLL_IN) events |= POLLIN;
  if (slirp_events & SLIRP_POLL_OUT) events |= POLLOUT;
  if (slirp_events & SLIRP_POLL_PRI) events |= POLLPRI;
  return events;
}

int to_slirp_events(short revents) {
  int events = 0;
  if (revents & POLLIN) events |= SLIRP_POLL_IN;
  if (revents & POLLOUT) events |= SLIRP_POLL_OUT;
  if (revents & POLLPRI) events |= SLIRP_POLL_PRI;
  if (revents & POLLERR) events |= SLIRP_POLL_ERR;
  if (revents & POLLHUP) events |= SLIRP_POLL_HUP;
  return events;
}

}  // namespace

/// A slirp timer: a callback and its deadline on CLOCK_MONOTONIC (ns), none while unarmed.
struct UserNet::Timer {
  SlirpTimerCb callback = nullptr;
  void* cb_opaque = nullptr;
  int64_t deadline_ns = -1;
};

Result<std::unique_ptr<UserNet>> UserNet::create(const std::vector<HostForward>& forwards) {
  std::unique_ptr<UserNet> net(new UserNet());
  VMM86_TRY(net->start(forwards));
  return net;
}

Status UserNet::start(const std::vector<HostForward>& forwards) {
  SlirpConfig config{};
  config.version = 1;
  config.restricted = 0;
  config.in_enabled = true;
  config.vnetwork = ipv4(kNetwork);
  config.vnetmask = ipv4(kNetmask);
  config.vhost = ipv4(kHost);
  config.in6_enabled = false;
  config.vhostname = "vmm86";
  config.vdhcp_start = ipv4(kDhcpStart);
  config.vnameserver = ipv4(kNameserver);
  config.disable_host_loopback = false;  // 10.0.2.2 reaches the host's loopback services
  static const SlirpCb callbacks = {
      .send_packet = send_packet_cb,
      .guest_error = guest_error_cb,
      .clock_get_ns = clock_get_ns_cb,
      .timer_new = timer_new_cb,
      .timer_free = timer_free_cb,
      .timer_mod = timer_mod_cb,
      .register_poll_fd = register_poll_fd_cb,
      .unregister_poll_fd = unregister_poll_fd_cb,
      .notify = notify_cb,
      .init_completed = nullptr,
      .timer_new_opaque = nullptr,
  };
  slirp_ = slirp_new(&config, &callbacks, this);
  if (slirp_ == nullptr) return make_error("--netdev user: libslirp could not start");
  for (const HostForward& f : forwards) {
    in_addr host{};
    in_addr guest = ipv4(kDhcpStart);
    if (!f.host_address.empty() && inet_pton(AF_INET, f.host_address.c_str(), &host) != 1) {
      return make_error("hostfwd: '{}' is not an IPv4 address", f.host_address);
    }
    if (!f.guest_address.empty() && inet_pton(AF_INET, f.guest_address.c_str(), &guest) != 1) {
      return make_error("hostfwd: '{}' is not an IPv4 address", f.guest_address);
    }
    if (slirp_add_hostfwd(slirp_, f.udp ? 1 : 0, host, f.host_port, guest, f.guest_port) < 0) {
      return make_error("hostfwd: cannot listen on {}:{} (is the port in use?)",
                        f.host_address.empty() ? "0.0.0.0" : f.host_address, f.host_port);
    }
  }
  return ok_status();
}

UserNet::~UserNet() {
  if (slirp_ != nullptr) slirp_cleanup(slirp_);
}

int64_t UserNet::now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void UserNet::send(std::span<const uint8_t> frame) {
  ++stats_.to_host_frames;
  slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
}

void UserNet::poll() {
  run_timers();
  uint32_t timeout_ms = 0;
  fds_.clear();
  slirp_pollfds_fill(slirp_, &timeout_ms, add_poll_cb, this);
  const int ready = ::poll(fds_.data(), fds_.size(), 0);
  ++stats_.polls;
  if (ready > 0) ++stats_.polls_ready;
  // Even with nothing ready: slirp runs its TCP timers from here.
  slirp_pollfds_poll(slirp_, ready < 0 ? 1 : 0, get_revents_cb, this);
}

void UserNet::poll_fds(std::vector<pollfd>* fds, uint64_t* timeout_ns) {
  uint32_t timeout_ms = std::numeric_limits<uint32_t>::max();
  fds_.clear();
  slirp_pollfds_fill(slirp_, &timeout_ms, add_poll_cb, this);
  fds->insert(fds->end(), fds_.begin(), fds_.end());
  uint64_t wait = uint64_t{timeout_ms} * kNsPerMs;
  const int64_t now = now_ns();
  for (const auto& timer : timers_) {
    if (timer->deadline_ns >= 0)
      wait = std::min<uint64_t>(wait, static_cast<uint64_t>(std::max<int64_t>(timer->deadline_ns - now, 0)));
  }
  *timeout_ns = std::min(*timeout_ns, wait);
}

void UserNet::run_timers() {
  const int64_t now = now_ns();
  // A callback may re-arm or free timers: look them up afresh after each one.
  for (bool fired = true; fired;) {
    fired = false;
    for (const auto& timer : timers_) {
      if (timer->deadline_ns < 0 || timer->deadline_ns > now) continue;
      timer->deadline_ns = -1;
      timer->callback(timer->cb_opaque);
      fired = true;
      break;
    }
  }
}

// ---- libslirp callbacks -------------------------------------------------------------------

ssize_t UserNet::send_packet_cb(const void* buf, size_t len, void* opaque) {
  auto* self = static_cast<UserNet*>(opaque);
  ++self->stats_.to_guest_frames;
  if (self->receiver_ != nullptr) self->receiver_->receive({static_cast<const uint8_t*>(buf), len});
  return static_cast<ssize_t>(len);
}

void UserNet::guest_error_cb(const char* msg, void* opaque) {
  ++static_cast<UserNet*>(opaque)->stats_.guest_errors;
  std::fprintf(stderr, "vmm86: user network: %s\n", msg);
}

int64_t UserNet::clock_get_ns_cb(void*) { return now_ns(); }

void* UserNet::timer_new_cb(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
  auto* self = static_cast<UserNet*>(opaque);
  auto timer = std::make_unique<Timer>();
  timer->callback = cb;
  timer->cb_opaque = cb_opaque;
  self->timers_.push_back(std::move(timer));
  return self->timers_.back().get();
}

void UserNet::timer_free_cb(void* timer, void* opaque) {
  auto& timers = static_cast<UserNet*>(opaque)->timers_;
  std::erase_if(timers, [timer](const auto& t) { return t.get() == timer; });
}

void UserNet::timer_mod_cb(void* timer, int64_t expire_ms, void*) {
  static_cast<Timer*>(timer)->deadline_ns = expire_ms * kNsPerMs;
}

void UserNet::register_poll_fd_cb(int, void*) {}    // fds are collected at every fill
void UserNet::unregister_poll_fd_cb(int, void*) {}  // ditto
void UserNet::notify_cb(void*) {}                   // the vCPU loop polls again soon anyway

int UserNet::add_poll_cb(int fd, int events, void* opaque) {
  auto& fds = static_cast<UserNet*>(opaque)->fds_;
  fds.push_back(pollfd{fd, to_poll_events(events), 0});
  return static_cast<int>(fds.size() - 1);
}

int UserNet::get_revents_cb(int idx, void* opaque) {
  const auto& fds = static_cast<UserNet*>(opaque)->fds_;
  if (idx < 0 || static_cast<size_t>(idx) >= fds.size()) return 0;
  return to_slirp_events(fds[static_cast<size_t>(idx)].revents);
}

}  // namespace vmm86
