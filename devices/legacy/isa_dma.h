// The PC/AT's two cascaded Intel 8237A DMA controllers and their page registers:
//   0x00-0x0F  controller 1: channels 0-3, byte transfers, 64 KiB windows
//   0xC0-0xDF  controller 2: channels 4-7, word transfers, 128 KiB windows (registers on
//              even ports; A0 is not decoded, so each odd port aliases the even one below)
//   0x81-0x8F  page registers (74LS612): ch2 0x81, ch3 0x82, ch1 0x83, ch0 0x87, ch6 0x89,
//              ch7 0x8A, ch5 0x8B, ch4 0x8F; the others are plain storage
// Port 0x80, the page file's first register, stays the POST code port (debug_ports.h): it
// reads back what was written just as the page register does.
// Channel 4 is the cascade: channels 0-3 run only while it is unmasked and in cascade mode
// (what the BIOS sets up), as the first controller's bus request goes through it.
//
// Devices ask for service the way the DREQ pin does: set_dreq(channel, true). When the
// channel can run (unmasked, controller enabled, cascade open) the controller calls the
// channel's IsaDmaClient::dma_ready at once (or later, when the guest unmasks it), and the
// client moves its data synchronously with to_memory() / from_memory(), which follow the
// channel's current address and count: single, demand and block modes behave alike because
// the device offers all its data at once. At terminal count the status register's TC bit is
// set and the channel either reloads its base registers (autoinit) or masks itself; the
// transfer stops there and the call says so. Address decrement and the 64 KiB / 128 KiB wrap
// (the page register never changes) are as in the hardware.
// Guest memory goes through DmaMemory (the machine tells the engines what changed); bytes
// outside RAM read 0xFF and writes to them vanish, as on the ISA bus. A verify transfer, or
// one whose direction disagrees with the channel's mode, moves no memory (the device reads
// 0xFF) but counts down the same.
// Not implemented: memory-to-memory transfers (command bit 0; the request register's bits
// show in the status register but start nothing), DREQ/DACK polarity, priority rotation.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "devices/dma_memory.h"
#include "devices/io_device.h"

namespace vmm86 {

/// A device wired to a DMA channel's DREQ/DACK/TC.
class IsaDmaClient {
 public:
  /// The channel can run and the device's DREQ is high: move data now.
  virtual void dma_ready(unsigned channel) = 0;

 protected:
  ~IsaDmaClient() = default;
};

/// What one to_memory()/from_memory() call did.
struct IsaDmaTransfer {
  size_t bytes = 0;             ///< bytes the channel took or gave (whole units of its width)
  bool terminal_count = false;  ///< the count ran out (TC): the device ends its transfer
};

/// One channel's registers.
struct IsaDmaChannel {
  uint16_t base_address = 0;
  uint16_t base_count = 0;
  uint16_t current_address = 0;  ///< in units: bytes (ch 0-3) or words (ch 5-7)
  uint16_t current_count = 0;    ///< units left minus one; 0xFFFF after terminal count
  uint8_t mode = 0;              ///< the mode register as written (bits 1-0 are the channel)
};

class IsaDma {
 public:
  static constexpr unsigned kChannels = 8;
  static constexpr unsigned kCascadeChannel = 4;
  /// Port counts of the windows below.
  static constexpr unsigned kController1Ports = 16;  ///< at 0x00
  static constexpr unsigned kController2Ports = 32;  ///< at 0xC0
  static constexpr unsigned kPagePorts = 15;         ///< at 0x81
  static constexpr uint16_t kController1Base = 0x00;
  static constexpr uint16_t kController2Base = 0xC0;
  static constexpr uint16_t kPageBase = 0x81;

  // Mode register (bits 7-6: mode, 5: decrement, 4: autoinit, 3-2: transfer type).
  static constexpr uint8_t kModeDemand = 0x00;
  static constexpr uint8_t kModeSingle = 0x40;
  static constexpr uint8_t kModeBlock = 0x80;
  static constexpr uint8_t kModeCascade = 0xC0;
  static constexpr uint8_t kModeDecrement = 0x20;
  static constexpr uint8_t kModeAutoinit = 0x10;
  static constexpr uint8_t kModeVerify = 0x00;
  static constexpr uint8_t kModeWrite = 0x04;  ///< device to memory (I/O read, memory write)
  static constexpr uint8_t kModeRead = 0x08;   ///< memory to device

  /// `memory` may be null (a board without RAM for DMA: nothing is moved) and must outlive
  /// the controller.
  explicit IsaDma(DmaMemory* memory);
  IsaDma(const IsaDma&) = delete;
  IsaDma& operator=(const IsaDma&) = delete;
  /// System reset: a master clear of both controllers; modes, page registers and the
  /// devices' DREQ levels stay.
  void reset();

  /// Port windows: controller 1 (0) or 2 (1), and the page registers.
  [[nodiscard]] PortIoDevice& controller_ports(unsigned controller) { return controller_windows_[controller & 1]; }
  [[nodiscard]] PortIoDevice& page_ports() { return page_window_; }

  // --- The device side ------------------------------------------------------------
  /// Wires `client` (null: nothing) to `channel`; it must outlive the controller.
  void attach(unsigned channel, IsaDmaClient* client);
  /// The device's DREQ pin. Raising it calls the client's dma_ready() at once if the
  /// channel can run.
  void set_dreq(unsigned channel, bool level);
  /// Unmasked, its controller enabled, not the cascade, and (ch 0-3) the cascade open.
  [[nodiscard]] bool channel_ready(unsigned channel) const;
  /// Device to memory: takes bytes of `data` (a write-mode transfer) until it is all taken
  /// or the count runs out. Nothing when the channel cannot run.
  [[nodiscard]] IsaDmaTransfer to_memory(unsigned channel, std::span<const uint8_t> data);
  /// Memory to device: fills `out` (a read-mode transfer) the same way.
  [[nodiscard]] IsaDmaTransfer from_memory(unsigned channel, std::span<uint8_t> out);

  // --- Inspection (tests, statistics) --------------------------------------------
  [[nodiscard]] const IsaDmaChannel& channel(unsigned index) const { return channels_[index % kChannels]; }
  /// The channel's page register: address bits 23-16 (bit 16 ignored on ch 5-7).
  [[nodiscard]] uint8_t page(unsigned channel) const;
  /// Mask bits of channels 0-7 (bit = channel).
  [[nodiscard]] uint8_t masks() const { return masks_; }
  [[nodiscard]] uint64_t bytes_transferred() const { return bytes_transferred_; }

 private:
  /// One controller's shared registers.
  struct Controller {
    uint8_t command = 0;
    uint8_t terminal_counts = 0;  ///< status bits 3-0
    uint8_t requests = 0;         ///< the request register's software DREQs, bits 3-0
    bool flip_flop = false;       ///< false: the next 16-bit register access is the low byte
  };
  class Ports final : public PortIoDevice {
   public:
    Ports(IsaDma& dma, int controller) : dma_(dma), controller_(controller) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    IsaDma& dma_;
    int controller_;  ///< 0, 1, or -1 for the page registers
  };
  enum class Direction : uint8_t { ToMemory, FromMemory };

  [[nodiscard]] uint8_t read_register(unsigned controller, unsigned reg);
  void write_register(unsigned controller, unsigned reg, uint8_t value);
  void write_channel_register(unsigned controller, unsigned reg, uint8_t value);
  void master_clear(unsigned controller);
  /// Calls dma_ready() for every channel whose DREQ is high and that can run now.
  void service();
  [[nodiscard]] IsaDmaTransfer transfer(unsigned channel, Direction direction, std::span<uint8_t> buffer);
  /// Moves `units` units at the channel's current address without wrapping; advances it.
  void move_block(unsigned channel, Direction direction, bool memory_access, std::span<uint8_t> bytes);
  /// Counts `units` units off the channel; true at terminal count (then reloads or masks).
  bool count_down(unsigned channel, uint32_t units);
  [[nodiscard]] uint64_t physical_address(unsigned channel, uint16_t address) const;
  void memory_read(uint64_t phys, std::span<uint8_t> out);
  void memory_write(uint64_t phys, std::span<const uint8_t> data);

  DmaMemory* memory_;
  std::array<IsaDmaChannel, kChannels> channels_{};
  std::array<Controller, 2> controllers_{};
  std::array<uint8_t, 16> pages_{};  ///< the page register file, indexed by port - 0x80
  std::array<IsaDmaClient*, kChannels> clients_{};
  uint8_t masks_ = 0xFF;
  uint8_t dreq_ = 0;  ///< the devices' DREQ pins
  bool servicing_ = false;
  uint64_t bytes_transferred_ = 0;
  std::array<Ports, 2> controller_windows_{Ports(*this, 0), Ports(*this, 1)};
  Ports page_window_{*this, -1};
};

}  // namespace vmm86
