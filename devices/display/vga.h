// A standard VGA (IBM VGA Technical Reference; the register semantics QEMU's and Bochs's
// models follow) with the Bochs VBE "dispi" extension, the pair QEMU's `-vga std` is:
//   0x3B0-0x3DF   sequencer, graphics controller, attribute controller, CRTC (at 0x3B4 or
//                 0x3D4 after the misc output's I/O select), DAC, misc output, status
//   0x1CE-0x1D0   dispi index (0x1CE) and data (0x1CF; 0x1D0 too, as QEMU decodes it)
//   A0000-BFFFF   the legacy window: the graphics controller's memory map (128K at A0000,
//                 64K at A0000, 32K at B0000 or B8000) onto four planes of video memory
//                 with chain-4, odd/even and the planar read modes 0-1 and write modes 0-3
//   the LFB       all of video memory, linear (the PCI function's BAR 0)
//   the MMIO BAR  QEMU's 4 KiB register page (BAR 2): 0x400-0x41F the ports 0x3C0-0x3DF,
//                 0x500-0x515 the dispi registers by index, 0x600 QEMU's extension (its
//                 size, and the framebuffer's byte order: little endian); no EDID blob
// Video memory is kept plane-interleaved, as QEMU keeps it: byte 4*a+p is plane p's byte
// at address a. So chain-4 (mode 13h, VBE) addresses are byte offsets, the text cell at
// address a is bytes 4a (character) and 4a+1 (attribute), and the font sits in plane 2.
// The renderer (vga_render.h) reads the state through the accessors below; it never
// changes it. Runs on the vCPU thread; no locking.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "devices/io_device.h"

namespace vmm86 {

/// The Bochs VBE registers (index written at 0x1CE).
namespace dispi {
constexpr uint16_t kIndexId = 0, kIndexXres = 1, kIndexYres = 2, kIndexBpp = 3, kIndexEnable = 4, kIndexBank = 5,
                   kIndexVirtWidth = 6, kIndexVirtHeight = 7, kIndexXOffset = 8, kIndexYOffset = 9,
                   kIndexVideoMemory64k = 10, kIndexCount = 11;
constexpr uint16_t kId0 = 0xB0C0, kId5 = 0xB0C5;
constexpr uint16_t kEnabled = 0x01, kGetCaps = 0x02, kDac8Bit = 0x20, kLfbEnabled = 0x40, kNoClearMem = 0x80;
constexpr uint16_t kMaxXres = 16000, kMaxYres = 12000, kMaxBpp = 32;
}  // namespace dispi

class Vga {
 public:
  static constexpr uint32_t kVramBytes = 16u << 20;  ///< QEMU's default vgamem_mb=16
  static constexpr uint16_t kPortBase = 0x3B0;
  static constexpr uint16_t kPortCount = 0x30;
  static constexpr uint16_t kDispiPortBase = 0x1CE;
  static constexpr uint16_t kDispiPortCount = 3;
  static constexpr uint32_t kWindowBase = 0xA0000;
  static constexpr uint32_t kWindowSize = 0x20000;

  Vga();
  Vga(const Vga&) = delete;
  Vga& operator=(const Vga&) = delete;

  /// Register on the IoBus at kPortBase (byte-wide: the bus splits `out dx, ax` into the
  /// index and the data byte, as the ISA bus does).
  [[nodiscard]] PortIoDevice& ports() { return ports_; }
  /// Register at kDispiPortBase, 2 bytes wide.
  [[nodiscard]] PortIoDevice& dispi_ports() { return dispi_ports_; }
  /// Register on the MmioBus at kWindowBase, kWindowSize bytes, 4 bytes wide.
  [[nodiscard]] MmioDevice& legacy_window() { return window_; }
  /// The linear framebuffer: video memory from offset 0 (map it kVramBytes long).
  [[nodiscard]] MmioDevice& lfb() { return lfb_; }
  /// QEMU's register page (map it 4 KiB long, 2 bytes wide).
  [[nodiscard]] MmioDevice& mmio_registers() { return mmio_; }

  /// Power-on state (a PCI reset): registers cleared, memory kept as real VGAs keep it.
  void reset();

  // --- What the renderer reads ----------------------------------------------------
  [[nodiscard]] const std::vector<uint8_t>& vram() const { return vram_; }
  [[nodiscard]] uint8_t seq(unsigned i) const { return sr_[i]; }
  [[nodiscard]] uint8_t gc(unsigned i) const { return gr_[i]; }
  [[nodiscard]] uint8_t crtc(unsigned i) const { return cr_[i]; }
  [[nodiscard]] uint8_t attr(unsigned i) const { return ar_[i]; }
  [[nodiscard]] uint8_t misc_output() const { return misc_; }
  /// The attribute controller's palette address source bit: clear blanks the screen.
  [[nodiscard]] bool screen_enabled() const { return (ar_index_ & 0x20) != 0; }
  /// DAC entry `i` as 8-bit red, green, blue (6-bit DAC values scaled unless 8-bit DAC).
  [[nodiscard]] std::array<uint8_t, 3> dac_rgb(unsigned i) const;
  [[nodiscard]] uint16_t dispi_reg(unsigned i) const { return vbe_[i]; }
  [[nodiscard]] bool vbe_enabled() const { return (vbe_[dispi::kIndexEnable] & dispi::kEnabled) != 0; }
  /// Bytes from one VBE scanline to the next, and where the VBE display starts in vram.
  [[nodiscard]] uint32_t vbe_line_offset() const { return vbe_line_offset_; }
  [[nodiscard]] uint32_t vbe_start() const { return vbe_start_; }
  /// Counts every change that can alter the picture (memory or register writes); the
  /// displays render again only when it moved.
  [[nodiscard]] uint64_t generation() const { return generation_; }

  /// Counters for --stats and docs/performance.md.
  struct Stats {
    uint64_t window_reads = 0, window_writes = 0, lfb_reads = 0, lfb_writes = 0, port_accesses = 0;
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  /// One bus range's view of the VGA: its accesses go to the member functions given.
  template <class Interface, class Offset, uint32_t (Vga::*Read)(Offset, unsigned),
            void (Vga::*Write)(Offset, unsigned, uint32_t)>
  class Range final : public Interface {
   public:
    explicit Range(Vga& vga) : vga_(vga) {}
    uint32_t read(Offset offset, unsigned size) override { return (vga_.*Read)(offset, size); }
    void write(Offset offset, unsigned size, uint32_t value) override { (vga_.*Write)(offset, size, value); }

   private:
    Vga& vga_;
  };

  uint32_t vga_port_read(uint16_t offset, unsigned size);
  void vga_port_write(uint16_t offset, unsigned size, uint32_t value);
  uint32_t dispi_port_read(uint16_t offset, unsigned size);
  void dispi_port_write(uint16_t offset, unsigned size, uint32_t value);
  uint32_t window_access_read(uint64_t offset, unsigned size);
  void window_access_write(uint64_t offset, unsigned size, uint32_t value);
  uint32_t lfb_read(uint64_t offset, unsigned size);
  void lfb_write(uint64_t offset, unsigned size, uint32_t value);
  uint32_t mmio_read(uint64_t offset, unsigned size);
  void mmio_write(uint64_t offset, unsigned size, uint32_t value);
  [[nodiscard]] uint8_t port_read(uint16_t port);
  void port_write(uint16_t port, uint8_t value);
  /// True when `port` (0x3Bx or 0x3Dx) is the one the misc output's I/O select decodes.
  [[nodiscard]] bool decodes(uint16_t port) const;
  [[nodiscard]] uint16_t dispi_read();
  void dispi_write(uint16_t value);
  void dispi_enable(uint16_t value);
  void update_vbe_layout();
  /// The legacy window's address `offset` (from A0000) as a video memory address, or
  /// false outside the graphics controller's memory map.
  [[nodiscard]] bool window_address(uint32_t offset, uint32_t* address) const;
  [[nodiscard]] uint8_t window_read(uint32_t offset);
  void window_write(uint32_t offset, uint8_t value);

  std::vector<uint8_t> vram_;
  std::array<uint8_t, 8> sr_{};
  std::array<uint8_t, 16> gr_{};
  std::array<uint8_t, 32> cr_{};
  std::array<uint8_t, 32> ar_{};
  std::array<uint8_t, 768> dac_{};
  std::array<uint16_t, dispi::kIndexCount> vbe_{};
  uint8_t sr_index_ = 0, gr_index_ = 0, cr_index_ = 0, ar_index_ = 0;
  bool ar_flip_flop_ = false;  ///< false: the next 0x3C0 write is an index
  uint8_t misc_ = 0, feature_ = 0, status1_ = 0, dac_mask_ = 0xFF;
  uint8_t dac_read_index_ = 0, dac_write_index_ = 0, dac_sub_index_ = 0;
  bool dac_reading_ = false;  ///< the last index written was 0x3C7's
  std::array<uint8_t, 3> dac_cache_{};
  uint32_t latch_ = 0;
  uint16_t vbe_index_ = 0;
  uint32_t bank_offset_ = 0;
  uint32_t vbe_line_offset_ = 0, vbe_start_ = 0;
  uint64_t generation_ = 0;
  Stats stats_;
  Range<PortIoDevice, uint16_t, &Vga::vga_port_read, &Vga::vga_port_write> ports_{*this};
  Range<PortIoDevice, uint16_t, &Vga::dispi_port_read, &Vga::dispi_port_write> dispi_ports_{*this};
  Range<MmioDevice, uint64_t, &Vga::window_access_read, &Vga::window_access_write> window_{*this};
  Range<MmioDevice, uint64_t, &Vga::lfb_read, &Vga::lfb_write> lfb_{*this};
  Range<MmioDevice, uint64_t, &Vga::mmio_read, &Vga::mmio_write> mmio_{*this};
};

}  // namespace vmm86
