// The two sides of an Ethernet link between a NIC model and the host: the NIC hands
// frames it transmits to a NetBackend (user networking, a tap, a test), and the backend
// hands the frames it has for the guest to the NIC's NetReceiver. Both run on the vCPU
// thread. Frames are whole Ethernet frames without the FCS.
#pragma once

#include <cstdint>
#include <span>

namespace vmm86 {

/// Ethernet sizes (IEEE 802.3) without the 4-byte FCS.
inline constexpr unsigned kEthHeaderBytes = 14;
inline constexpr unsigned kEthMinFrame = 60;
inline constexpr unsigned kEthMaxFrame = 1514;
/// A frame with an 802.1Q tag may be 4 bytes longer; nothing larger leaves a NIC.
inline constexpr unsigned kEthMaxTaggedFrame = kEthMaxFrame + 4;

class NetBackend {
 public:
  /// The guest sent `frame`; the backend copies what it keeps.
  virtual void send(std::span<const uint8_t> frame) = 0;

 protected:
  ~NetBackend() = default;
};

class NetReceiver {
 public:
  /// A frame for the guest; the NIC copies it (into its buffer or a queue) or drops it.
  virtual void receive(std::span<const uint8_t> frame) = 0;

 protected:
  ~NetReceiver() = default;
};

}  // namespace vmm86
