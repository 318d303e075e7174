// NE2000 on PCI: the Realtek RTL8029(AS) (10ec:8029, class 0x020000, INTA#), a National
// DP8390 core with 32 KiB of buffer RAM behind a 32-byte I/O BAR, as QEMU's `ne2k_pci`
// models it and Linux's ne2k-pci + 8390 drivers drive it.
//
// BAR0 (32 ports): 0x00-0x0F the 8390 registers, four pages selected by CR bits 7:6 (page
// 3 is the RTL8029's configuration page); 0x10 the data port of the remote DMA, 1, 2 or 4
// bytes per access as the guest reads or writes it (a byte access moves a word in word
// mode, DCR.WTS, as on the card); 0x18-0x1F the reset port (a read resets the NIC).
// The card's local address space is 64 KiB: 0x0000-0x001F the station address PROM (each
// byte twice, then 'W' 'W' for a 16-bit card), 0x4000-0xBFFF the buffer RAM (pages
// 0x40-0xBF); everything else reads 0xFF and drops writes, so no register value the guest
// picks can reach outside the card's own array.
// Receive: frames go into the ring [PSTART, PSTOP) at CURR with the 4-byte header (status,
// next page, byte count), CURR moves on, ISR.PRX. A frame that does not fit before BNRY
// waits in a bounded host queue (what QEMU's can_receive gives it), delivered as the
// guest frees pages (a BNRY write, an ack of PRX, a restart); frames beyond the queue are dropped and
// counted in CNTR2 (missed packets), as the 8390 counts frames it had no buffer for. A
// ring the guest programmed inconsistently (PSTART >= PSTOP, CURR outside it) drops frames
// the same way. Transmit: TBCR bytes at TPSR go to the backend; a frame longer than an
// Ethernet frame, shorter than its header, or outside the buffer RAM is not sent and
// ends with TSR.ABT and ISR.TXE instead of PTX, so no driver waits for ever.
// Interrupts: INTA# is (ISR & IMR) != 0, gated by the PCI command register's INTx
// disable, reflected in the status register's interrupt bit.
// Link state: with the link down, frames are neither received nor sent; a transmission
// completes with TSR.CRS (carrier sense lost), as on a cable pulled out.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "devices/io_device.h"
#include "devices/net/net_backend.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

/// What the NIC counted (--stats).
struct Ne2kStats {
  uint64_t rx_frames = 0;  ///< frames put into the receive ring
  uint64_t rx_bytes = 0;
  uint64_t tx_frames = 0;  ///< frames handed to the backend
  uint64_t tx_bytes = 0;
  uint64_t rx_queued = 0;    ///< frames that waited for ring space
  uint64_t rx_dropped = 0;   ///< frames lost: queue full, receiver stopped, bad ring, link down
  uint64_t rx_filtered = 0;  ///< frames not for this station (address filter)
  uint64_t tx_errors = 0;    ///< transmissions refused: oversize, runt, outside the RAM
  uint64_t io_accesses = 0;  ///< guest port accesses to BAR0 (each one a monitor exit)
  uint64_t interrupts = 0;   ///< rising edges of INTA#
};

class Ne2kPci final : public PciFunction, public PortIoDevice, public NetReceiver {
 public:
  static constexpr uint16_t kVendorId = 0x10EC;  // Realtek
  static constexpr uint16_t kDeviceId = 0x8029;
  static constexpr uint32_t kIoSize = 32;
  static constexpr unsigned kIoBar = 0;
  static constexpr uint16_t kDataPort = 0x10;
  static constexpr uint16_t kResetPort = 0x18;
  static constexpr uint32_t kRamStart = 0x4000;
  static constexpr uint32_t kRamEnd = 0xC000;
  /// Frames held for the guest while its ring is full; more are dropped.
  static constexpr size_t kMaxQueuedFrames = 128;
  using InterruptPin = std::function<void(bool level)>;

  /// `mac` is the station address in the PROM; `interrupt` drives INTA#.
  Ne2kPci(const std::array<uint8_t, 6>& mac, InterruptPin interrupt);

  /// Where transmitted frames go (none: they are dropped, as on a NIC without a cable).
  void set_backend(NetBackend* backend) { backend_ = backend; }
  void set_link(bool up) { link_up_ = up; }
  [[nodiscard]] bool link_up() const { return link_up_; }
  /// The card's power-on state (PCI RST# and the reset port).
  void reset_nic();

  // PortIoDevice: BAR0.
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  // NetReceiver.
  void receive(std::span<const uint8_t> frame) override;

  [[nodiscard]] const Ne2kStats& stats() const { return stats_; }
  [[nodiscard]] size_t queued_frames() const { return queue_.size(); }
  [[nodiscard]] bool interrupt_level() const { return irq_level_; }
  /// A byte of the card's local memory as the remote DMA reads it (tests).
  [[nodiscard]] uint8_t local_byte(uint16_t address) const;

 private:
  void reset_done() override { reset_nic(); }
  void config_written(uint8_t reg, unsigned size) override;

  uint8_t read_register(unsigned reg);
  void write_register(unsigned reg, uint8_t value);
  void write_command(uint8_t value);
  uint32_t read_data(unsigned size);
  void write_data(unsigned size, uint32_t value);
  void advance_dma(unsigned bytes);
  void transmit();
  /// Puts `frame` in the ring if the filter takes it and it fits; false: no room.
  [[nodiscard]] bool store_frame(std::span<const uint8_t> frame);
  [[nodiscard]] bool accepts(std::span<const uint8_t> frame) const;
  [[nodiscard]] bool ring_valid() const;
  /// The ring holds frames the driver has not taken (BNRY, CURR).
  [[nodiscard]] bool ring_pending() const;
  /// `page`'s distance from PSTART modulo the ring (a valid ring only).
  [[nodiscard]] uint32_t ring_offset(uint8_t page) const;
  void drain_queue();
  void drop_frame();
  void write_local(uint32_t address, uint8_t value);
  void update_irq();

  std::array<uint8_t, 6> mac_;
  InterruptPin interrupt_;
  NetBackend* backend_ = nullptr;
  bool link_up_ = true;
  bool irq_level_ = false;

  /// The card's 64 KiB local address space; only the PROM and the RAM are backed.
  std::vector<uint8_t> mem_;
  uint8_t cr_ = 0;
  uint8_t pstart_ = 0, pstop_ = 0, bnry_ = 0, curr_ = 0, tpsr_ = 0;
  uint16_t tbcr_ = 0, rsar_ = 0, rbcr_ = 0;
  uint8_t isr_ = 0, imr_ = 0, rcr_ = 0, tcr_ = 0, dcr_ = 0;
  uint8_t tsr_ = 0, rsr_ = 0;
  std::array<uint8_t, 3> counters_{};  ///< CNTR0-2: alignment, CRC, missed
  std::array<uint8_t, 6> par_{};
  std::array<uint8_t, 8> mar_{};
  std::deque<std::vector<uint8_t>> queue_;
  Ne2kStats stats_;
};

}  // namespace vmm86
