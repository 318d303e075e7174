// User networking on the real libslirp: what the stack answers a guest (ARP for the
// gateway), and a hostfwd rule that listens on the host's loopback and turns a host
// connection into traffic for the guest.
#include "devices/net/user_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

namespace vmm86 {
namespace {

constexpr std::array<uint8_t, 6> kGuestMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

class Recorder final : public NetReceiver {
 public:
  void receive(std::span<const uint8_t> frame) override { frames.emplace_back(frame.begin(), frame.end()); }
  std::vector<std::vector<uint8_t>> frames;
};

std::vector<uint8_t> arp_request(const std::array<uint8_t, 4>& target) {
  std::vector<uint8_t> f(60, 0);
  auto put = [&f](size_t at, std::span<const uint8_t> bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) f[at + i] = bytes[i];
  };
  put(0, std::array<uint8_t, 6>{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  put(6, kGuestMac);
  put(12, std::array<uint8_t, 10>{0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01});  // ARP request
  put(22, kGuestMac);
  put(28, std::array<uint8_t, 4>{10, 0, 2, 15});
  put(38, target);
  return f;
}

/// A TCP socket bound to an ephemeral port of 127.0.0.1; `*addr` gets its address.
int bound_loopback_socket(sockaddr_in* addr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof *addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    ADD_FAILURE() << "cannot bind a loopback socket";
  }
  return fd;
}

TEST(UserNet, AnswersArpForTheGateway) {
  auto net = UserNet::create({});
  ASSERT_TRUE(net) << net.error();
  Recorder guest;
  (*net)->set_receiver(&guest);
  (*net)->send(arp_request({10, 0, 2, 2}));
  ASSERT_EQ(guest.frames.size(), 1u);
  const std::vector<uint8_t>& reply = guest.frames[0];
  ASSERT_GE(reply.size(), 42u);
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), reply.begin()));
  EXPECT_EQ(reply[12], 0x08);
  EXPECT_EQ(reply[13], 0x06);
  EXPECT_EQ(reply[21], 2) << "an ARP reply";
  EXPECT_EQ(std::vector<uint8_t>(reply.begin() + 28, reply.begin() + 32), (std::vector<uint8_t>{10, 0, 2, 2}));
  EXPECT_EQ(std::vector<uint8_t>(reply.begin() + 22, reply.begin() + 28),
            (std::vector<uint8_t>{0x52, 0x55, 10, 0, 2, 2}))
      << "slirp's gateway MAC";
}

TEST(UserNet, HostForwardTurnsAHostConnectionIntoGuestTraffic) {
  // Find a free loopback port, then forward it.
  sockaddr_in addr{};
  close(bound_loopback_socket(&addr));
  const uint16_t port = ntohs(addr.sin_port);

  HostForward forward;
  forward.host_address = "127.0.0.1";
  forward.host_port = port;
  forward.guest_port = 80;
  auto net = UserNet::create({forward});
  ASSERT_TRUE(net) << net.error();
  Recorder guest;
  (*net)->set_receiver(&guest);
  // The guest has announced itself (as its DHCP exchange would), so slirp knows its MAC.
  (*net)->send(arp_request({10, 0, 2, 2}));
  guest.frames.clear();

  const int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  (void)connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  for (int i = 0; i < 200 && guest.frames.empty(); ++i) {
    std::vector<pollfd> fds;
    uint64_t timeout = 10'000'000;
    (*net)->poll_fds(&fds, &timeout);
    ::poll(fds.data(), fds.size(), 10);
    (*net)->poll();
  }
  close(client);
  ASSERT_FALSE(guest.frames.empty()) << "slirp accepted the connection and sent the guest a frame";
  const std::vector<uint8_t>& syn = guest.frames[0];
  ASSERT_GE(syn.size(), 54u);
  EXPECT_EQ(syn[23], 6) << "TCP";
  EXPECT_EQ(std::vector<uint8_t>(syn.begin() + 30, syn.begin() + 34), (std::vector<uint8_t>{10, 0, 2, 15}));
  EXPECT_EQ(syn[36] << 8 | syn[37], 80) << "to the guest's port 80";
  EXPECT_NE(syn[47] & 0x02, 0) << "a SYN";
}

TEST(UserNet, ATakenHostPortIsAnError) {
  sockaddr_in addr{};
  const int holder = bound_loopback_socket(&addr);
  ASSERT_EQ(listen(holder, 1), 0);
  HostForward forward;
  forward.host_address = "127.0.0.1";
  forward.host_port = ntohs(addr.sin_port);
  forward.guest_port = 80;
  auto net = UserNet::create({forward});
  EXPECT_FALSE(net);
  close(holder);
}

}  // namespace
}  // namespace vmm86
