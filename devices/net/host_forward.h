// A hostfwd rule of user networking (QEMU's `hostfwd=tcp:127.0.0.1:8080-:80`): connections
// to a host port are forwarded to a guest port.
#pragma once

#include <cstdint>
#include <string>

namespace vmm86 {

struct HostForward {
  bool udp = false;
  std::string host_address;  ///< empty: every host address (0.0.0.0), as QEMU
  uint16_t host_port = 0;
  std::string guest_address;  ///< empty: the first DHCP address, 10.0.2.15
  uint16_t guest_port = 0;
};

}  // namespace vmm86
