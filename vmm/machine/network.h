// The machine's networks: the NICs of --device/--nic on the PCI bus, each wired to its user
// network (libslirp). The vCPU loop polls them from its service path and adds their
// sockets to the idle vCPU's ppoll (docs/design-notes.md, "User networking"); everything
// runs on the vCPU thread, like the other devices.
#pragma once

#include <poll.h>

#include <memory>
#include <vector>

#include "common/result.h"
#include "devices/net/ne2k_pci.h"
#include "devices/net/user_net.h"
#include "devices/pc_chipset.h"
#include "vmm/machine/config.h"
#include "vmm/machine/stats.h"

namespace vmm86 {

class MachineNetwork {
 public:
  /// PCI slot of the first NIC (QEMU's pc machine with -nodefaults puts it there too; after
  /// a --vga std adapter, the next one).
  static constexpr unsigned kFirstSlot = 2;

  /// Starts the netdevs and puts the NICs on `chipset`'s bus, INTA# through the PIIX3.
  [[nodiscard]] Status attach(const MachineConfig& config, PcChipset& chipset);
  /// Serves ready host sockets and slirp's timers; never blocks.
  void poll();
  /// The host sockets an idle vCPU should wake for; lowers `*timeout_ns` to the next
  /// network deadline.
  void poll_fds(std::vector<pollfd>* fds, uint64_t* timeout_ns);
  /// The NICs' counters as --stats lines ("devices.net0.rx_frames", ...).
  void append_stats(std::vector<Stat>* stats) const;

 private:
  std::vector<std::unique_ptr<UserNet>> netdevs_;
  std::vector<std::unique_ptr<Ne2kPci>> nics_;
};

}  // namespace vmm86
