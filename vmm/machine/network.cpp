#include "vmm/machine/network.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"

namespace vmm86 {
namespace {

// QEMU's first NIC address; later NICs count up in the last byte, as QEMU's do.
constexpr std::array<uint8_t, 6> kDefaultMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

}  // namespace

Status MachineNetwork::attach(const MachineConfig& config, PcChipset& chipset) {
  for (size_t i = 0; i < config.nics.size(); ++i) {
    const NicConfig& nic_config = config.nics[i];
    const auto netdev = std::find_if(config.netdevs.begin(), config.netdevs.end(),
                                     [&](const NetdevConfig& n) { return n.id == nic_config.netdev; });
    VMM86_CHECK(netdev != config.netdevs.end());  // the command line checked it
    auto net = UserNet::create(netdev->forwards);
    if (!net) return make_error("--netdev {}: {}", netdev->id, net.error());
    std::array<uint8_t, 6> mac = kDefaultMac;
    mac[5] = static_cast<uint8_t>(mac[5] + i);
    // QEMU's order: the VGA (00:02.0 with --vga std) before the NICs.
    const unsigned first = config.vga == VgaKind::Std ? kFirstSlot + 1 : kFirstSlot;
    const unsigned slot = first + static_cast<unsigned>(i);
    Piix3IsaBridge& bridge = chipset.isa_bridge();
    auto nic = std::make_unique<Ne2kPci>(nic_config.mac.value_or(mac),
                                         [&bridge, slot](bool level) { bridge.set_pci_irq(slot, 1, level); });
    nic->set_backend(net->get());
    (*net)->set_receiver(nic.get());
    if (!chipset.bus().attach(slot, 0, *nic)) return make_error("PCI slot {} is taken", slot);
    chipset.mapper().attach_io(*nic, Ne2kPci::kIoBar, *nic, fmt::format("ne2k_pci{}", i), 4);
    netdevs_.push_back(std::move(*net));
    nics_.push_back(std::move(nic));
  }
  return ok_status();
}

void MachineNetwork::poll() {
  for (const auto& net : netdevs_) net->poll();
}

void MachineNetwork::poll_fds(std::vector<pollfd>* fds, uint64_t* timeout_ns) {
  for (const auto& net : netdevs_) net->poll_fds(fds, timeout_ns);
}

void MachineNetwork::append_stats(std::vector<Stat>* stats) const {
  for (size_t i = 0; i < nics_.size(); ++i) {
    const Ne2kStats& s = nics_[i]->stats();
    const std::string prefix = fmt::format("net{}.", i);
    auto add = [&](const char* name, std::variant<uint64_t, double, MnemonicCounts> value, const char* format = "={}") {
      const std::string key = prefix + name;
      stats->push_back({StatLine::Devices, "devices." + key, " " + key + format, std::move(value), true});
    };
    add("rx_frames", s.rx_frames);
    add("rx_bytes", s.rx_bytes);
    add("tx_frames", s.tx_frames);
    add("tx_bytes", s.tx_bytes);
    add("rx_queued", s.rx_queued);
    add("rx_dropped", s.rx_dropped);
    add("rx_filtered", s.rx_filtered);
    add("tx_errors", s.tx_errors);
    add("interrupts", s.interrupts);
    add("io_accesses", s.io_accesses);
    // Each port access of the driver is one exit from translated code (a callout).
    const uint64_t frames = s.rx_frames + s.tx_frames;
    add("exits_per_frame", frames ? static_cast<double>(s.io_accesses) / static_cast<double>(frames) : 0.0, "={:.1f}");
    const UserNetStats& u = netdevs_[i]->stats();
    add("slirp_polls", u.polls);
    add("slirp_polls_ready", u.polls_ready);
    add("slirp_guest_errors", u.guest_errors);
  }
}

}  // namespace vmm86
