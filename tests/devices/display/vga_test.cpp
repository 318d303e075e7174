// The VGA's registers and memory paths against the IBM VGA Technical Reference's rules
// (each expectation is worked out from the register definitions, not from our output).
#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/display/vga.h"
#include "devices/display/vga_render.h"

namespace vmm86 {
namespace {

class VgaTest : public ::testing::Test {
 protected:
  VgaTest() {
    EXPECT_EQ(io.add(Vga::kPortBase, Vga::kPortCount, vga.ports(), "vga", 1), BusStatus::Ok);
    EXPECT_EQ(io.add(Vga::kDispiPortBase, Vga::kDispiPortCount, vga.dispi_ports(), "dispi", 2), BusStatus::Ok);
    EXPECT_EQ(mmio.add(GuestPhys{Vga::kWindowBase}, Vga::kWindowSize, vga.legacy_window(), "window", 4), BusStatus::Ok);
    out(0x3C2, 0x01);  // colour: CRTC at 0x3D4
  }
  void out(uint16_t port, uint8_t v) { io.write(port, 1, v); }
  uint8_t in(uint16_t port) { return static_cast<uint8_t>(io.read(port, 1)); }
  void seq(uint8_t i, uint8_t v) { io.write(0x3C4, 2, uint32_t{v} << 8 | i); }  // out dx, ax: index, then data
  void gc(uint8_t i, uint8_t v) { io.write(0x3CE, 2, uint32_t{v} << 8 | i); }
  void crtc(uint8_t i, uint8_t v) { io.write(0x3D4, 2, uint32_t{v} << 8 | i); }
  void attr(uint8_t i, uint8_t v) {
    (void)in(0x3DA);
    out(0x3C0, i);
    out(0x3C0, v);
  }
  void poke(uint32_t addr, uint8_t v) { mmio.write(GuestPhys{addr}, 1, v); }
  uint8_t peek(uint32_t addr) { return static_cast<uint8_t>(mmio.read(GuestPhys{addr}, 1)); }
  uint8_t plane(unsigned p, uint32_t address) { return vga.vram()[address * 4 + p]; }
  void dispi(uint16_t index, uint16_t value) {
    io.write(0x1CE, 2, index);
    io.write(0x1CF, 2, value);
  }
  uint16_t dispi_read(uint16_t index) {
    io.write(0x1CE, 2, index);
    return static_cast<uint16_t>(io.read(0x1CF, 2));
  }
  /// Planar graphics at A0000 64K, all planes, write mode 0 with no set/reset.
  void planar() {
    seq(2, 0x0F);
    seq(4, 0x06);  // extended memory, odd/even off, no chain-4
    gc(5, 0x00);
    gc(6, 0x05);  // graphics, A0000 64K
    gc(8, 0xFF);
  }

  Vga vga;
  IoBus io;
  MmioBus mmio;
};

TEST_F(VgaTest, SequencerAndGraphicsRegistersMaskUnimplementedBits) {
  seq(2, 0xFF);
  out(0x3C4, 2);
  EXPECT_EQ(in(0x3C5), 0x0F);  // map mask: four planes
  gc(5, 0xFF);
  out(0x3CE, 5);
  EXPECT_EQ(in(0x3CF), 0x7B);  // bits 2 and 7 are reserved
}

TEST_F(VgaTest, CrtcFollowsMiscOutputIoSelect) {
  crtc(0x0E, 0x12);
  EXPECT_EQ(in(0x3B5), 0xFF);  // mono address not decoded in colour mode
  out(0x3D4, 0x0E);
  EXPECT_EQ(in(0x3D5), 0x12);
  out(0x3C2, 0x00);  // mono
  out(0x3B4, 0x0E);
  EXPECT_EQ(in(0x3B5), 0x12);
  EXPECT_EQ(in(0x3CC), 0x00);
}

TEST_F(VgaTest, CrtcProtectBitLocksRegistersZeroToSeven) {
  crtc(0x01, 0x4F);
  crtc(0x11, 0x80);
  crtc(0x01, 0x27);
  crtc(0x07, 0xFF);
  EXPECT_EQ(vga.crtc(0x01), 0x4F);
  EXPECT_EQ(vga.crtc(0x07), 0x10);  // only the line compare bit 8 gets through
}

TEST_F(VgaTest, AttributeFlipFlopAndStatusReadReset) {
  attr(0x01, 0x3F);
  EXPECT_EQ(vga.attr(1), 0x3F);
  out(0x3C0, 0x02);  // an index...
  (void)in(0x3DA);   // ...and the flip-flop back to index
  out(0x3C0, 0x20 | 0x03);
  out(0x3C0, 0x15);
  EXPECT_EQ(vga.attr(3), 0x15);
  EXPECT_TRUE(vga.screen_enabled());
  EXPECT_EQ(in(0x3C0), 0x23);
}

TEST_F(VgaTest, DacAutoIncrementsAfterThreeComponents) {
  out(0x3C8, 5);
  for (uint8_t v : {1, 2, 3, 4, 5, 6}) out(0x3C9, v);
  EXPECT_EQ(in(0x3C8), 7);
  out(0x3C7, 6);
  EXPECT_EQ(in(0x3C9), 4);
  EXPECT_EQ(in(0x3C9), 5);
  EXPECT_EQ(in(0x3C9), 6);
  out(0x3C7, 5);
  EXPECT_EQ(in(0x3C7), 0x03);  // DAC state: reading
  // 6-bit values widened: 0x3F -> 0xFF, 0x2A -> 0xA8, 0x15 -> 0x57.
  out(0x3C8, 9);
  for (uint8_t v : {0x3F, 0x2A, 0x15}) out(0x3C9, v);
  EXPECT_EQ(vga.dac_rgb(9), (std::array<uint8_t, 3>{0xFF, 0xA8, 0x57}));
}

TEST_F(VgaTest, WriteMode0SetResetAndBitMask) {
  planar();
  gc(1, 0x05);  // set/reset enabled on planes 0 and 2
  gc(0, 0x01);  // plane 0 set, plane 2 reset
  gc(8, 0xF0);  // only the high nibble from the new data
  poke(0xA0010, 0x3C);
  // Latches were 0 (memory cleared): planes 1,3 get the data 0x3C in the high nibble.
  EXPECT_EQ(plane(0, 0x10), 0xF0);
  EXPECT_EQ(plane(1, 0x10), 0x30);
  EXPECT_EQ(plane(2, 0x10), 0x00);
  EXPECT_EQ(plane(3, 0x10), 0x30);
}

TEST_F(VgaTest, WriteMode0RotateAndLogicalOperations) {
  planar();
  poke(0xA0020, 0x0F);  // all planes 0x0F
  (void)peek(0xA0020);  // latches = 0x0F in each plane
  gc(3, 0x18 | 4);      // XOR, rotate right by 4
  poke(0xA0020, 0xFF);  // rotated 0xFF, XOR 0x0F -> 0xF0
  for (unsigned p = 0; p < 4; ++p) EXPECT_EQ(plane(p, 0x20), 0xF0);
  (void)peek(0xA0020);
  gc(3, 0x08);  // AND
  poke(0xA0020, 0x3C);
  for (unsigned p = 0; p < 4; ++p) EXPECT_EQ(plane(p, 0x20), 0x30);
}

TEST_F(VgaTest, WriteMode1CopiesTheLatches) {
  planar();
  seq(2, 0x01);
  poke(0xA0000, 0x11);
  seq(2, 0x02);
  poke(0xA0000, 0x22);
  seq(2, 0x0F);
  (void)peek(0xA0000);
  gc(5, 0x01);
  poke(0xA0100, 0x99);  // the data is ignored
  EXPECT_EQ(plane(0, 0x100), 0x11);
  EXPECT_EQ(plane(1, 0x100), 0x22);
  EXPECT_EQ(plane(2, 0x100), 0x00);
}

TEST_F(VgaTest, WriteMode2ExpandsAColourThroughTheBitMask) {
  planar();
  gc(5, 0x02);
  gc(8, 0x81);
  poke(0xA0004, 0x0A);  // colour 1010b: planes 1 and 3
  EXPECT_EQ(plane(0, 4), 0x00);
  EXPECT_EQ(plane(1, 4), 0x81);
  EXPECT_EQ(plane(2, 4), 0x00);
  EXPECT_EQ(plane(3, 4), 0x81);
}

TEST_F(VgaTest, WriteMode3UsesTheRotatedDataAsBitMask) {
  planar();
  gc(5, 0x03);
  gc(0, 0x0C);  // set/reset colour 1100b
  gc(8, 0xF0);
  poke(0xA0008, 0xFF);  // mask = 0xF0 & 0xFF
  EXPECT_EQ(plane(0, 8), 0x00);
  EXPECT_EQ(plane(2, 8), 0xF0);
  EXPECT_EQ(plane(3, 8), 0xF0);
}

TEST_F(VgaTest, ReadModes) {
  planar();
  gc(5, 0x02);
  gc(8, 0xFF);
  poke(0xA0000, 0x05);  // colour 5 everywhere in the byte
  (void)peek(0xA0000);  // latches: colour 5, kept where the bit mask is clear
  gc(8, 0x0F);
  poke(0xA0000, 0x03);  // low four pixels colour 3
  gc(5, 0x00);
  gc(4, 2);
  EXPECT_EQ(peek(0xA0000), 0xF0);  // plane 2: colour 5 has it, colour 3 does not
  gc(5, 0x08);                     // read mode 1
  gc(2, 0x05);
  gc(7, 0x0F);
  EXPECT_EQ(peek(0xA0000), 0xF0);  // pixels of colour 5
  gc(7, 0x01);                     // compare plane 0 only: 5 and 3 both have it
  EXPECT_EQ(peek(0xA0000), 0xFF);
}

TEST_F(VgaTest, Chain4AddressesBytesAcrossPlanes) {
  seq(2, 0x0F);
  seq(4, 0x0E);  // chain-4
  gc(6, 0x05);
  for (uint32_t i = 0; i < 8; ++i) poke(0xA0000 + i, static_cast<uint8_t>(0x10 + i));
  EXPECT_EQ(plane(1, 0), 0x11);
  EXPECT_EQ(plane(3, 1), 0x17);
  seq(2, 0x01);  // only plane 0 writable
  poke(0xA0001, 0x55);
  poke(0xA0004, 0x66);
  EXPECT_EQ(peek(0xA0001), 0x11);
  EXPECT_EQ(peek(0xA0004), 0x66);
}

TEST_F(VgaTest, TextModeOddEvenAtB8000) {
  // Mode 3's memory set-up: odd/even, B8000 32K.
  seq(2, 0x03);
  seq(4, 0x02);
  gc(5, 0x10);
  gc(6, 0x0E);
  poke(0xB8000, 'H');
  poke(0xB8001, 0x1F);
  poke(0xB8002, 'i');
  EXPECT_EQ(plane(0, 0), 'H');
  EXPECT_EQ(plane(1, 0), 0x1F);
  EXPECT_EQ(plane(0, 1), 'i');  // the next cell: odd/even pairs share one address
  EXPECT_EQ(peek(0xB8001), 0x1F);
  EXPECT_EQ(peek(0xA0000), 0xFF);  // outside the B8000 map
  crtc(0x01, 79);
  crtc(0x09, 15);
  crtc(0x12, 0x8F);
  crtc(0x07, 0x02);  // 400 lines: 25 rows
  crtc(0x13, 40);
  const std::vector<std::string> rows = vga_text_rows(vga);
  ASSERT_EQ(rows.size(), 25u);
  EXPECT_EQ(rows[0], "Hi");
}

TEST_F(VgaTest, DispiIdentifiesAndReportsCapabilities) {
  EXPECT_EQ(dispi_read(dispi::kIndexId), dispi::kId5);
  dispi(dispi::kIndexId, dispi::kId0);
  EXPECT_EQ(dispi_read(dispi::kIndexId), dispi::kId0);
  EXPECT_EQ(dispi_read(dispi::kIndexVideoMemory64k), 256);
  dispi(dispi::kIndexEnable, dispi::kGetCaps);
  EXPECT_EQ(dispi_read(dispi::kIndexXres), dispi::kMaxXres);
  EXPECT_EQ(dispi_read(dispi::kIndexBpp), 32);
}

TEST_F(VgaTest, DispiModeSetBanksAndLfb) {
  dispi(dispi::kIndexXres, 1024);
  dispi(dispi::kIndexYres, 768);
  dispi(dispi::kIndexBpp, 32);
  dispi(dispi::kIndexEnable, dispi::kEnabled | dispi::kLfbEnabled);
  EXPECT_EQ(vga.vbe_line_offset(), 4096u);
  EXPECT_EQ(dispi_read(dispi::kIndexVirtWidth), 1024);
  dispi(dispi::kIndexBank, 3);
  poke(0xA0010, 0x77);  // bank 3: video memory 0x30010
  EXPECT_EQ(vga.vram()[0x30010], 0x77);
  vga.lfb().write(4096 + 4, 4, 0x00112233);  // pixel (1, 1)
  VgaFrame frame;
  render_vga(vga, &frame);
  EXPECT_EQ(frame.width, 1024u);
  EXPECT_EQ(frame.height, 768u);
  EXPECT_EQ(frame.pixels[1024 + 1], 0x112233u);
}

// QEMU's register page (hw/display/vga-pci.c's layout): the same registers as the ports.
TEST_F(VgaTest, MmioBarReachesThePortsAndTheDispiRegisters) {
  MmioDevice& bar = vga.mmio_registers();
  bar.write(0x400 + 0x0E, 2, 0x0F05);  // 0x3CE/0x3CF: GC register 5
  EXPECT_EQ(vga.gc(5), 0x0B);          // 0x0F masked to the implemented bits
  bar.write(0x500 + 2 * dispi::kIndexXres, 2, 800);
  EXPECT_EQ(dispi_read(dispi::kIndexXres), 800);
  EXPECT_EQ(bar.read(0x500 + 2 * dispi::kIndexId, 2), dispi::kId5);
  EXPECT_EQ(bar.read(0x600, 4), 8u);
  EXPECT_EQ(bar.read(0x604, 4), 0x1E1E1E1Eu);
}

}  // namespace
}  // namespace vmm86
