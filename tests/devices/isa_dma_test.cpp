// The 8237A pair through its ports, programmed the way SeaBIOS and Linux program it, and a
// device on a channel asking for service through DREQ.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "devices/bus.h"
#include "devices/legacy/isa_dma.h"
#include "devices/pc_platform.h"
#include "tests/devices/test_util.h"

namespace vmm86 {
namespace {

/// A device that runs `on_ready` whenever the controller serves its DREQ.
class Device final : public IsaDmaClient {
 public:
  void dma_ready(unsigned channel) override {
    ++calls;
    last_channel = channel;
    if (on_ready) on_ready(channel);
  }
  std::function<void(unsigned)> on_ready;
  int calls = 0;
  unsigned last_channel = 99;
};

std::vector<uint8_t> counting(size_t n, uint8_t first = 1) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

class IsaDmaTest : public ::testing::Test {
 protected:
  IsaDmaTest() : ram(4 << 20), dma(&ram) {
    EXPECT_EQ(bus.add(0x00, IsaDma::kController1Ports, dma.controller_ports(0), "dma1", 1), BusStatus::Ok);
    EXPECT_EQ(bus.add(0xC0, IsaDma::kController2Ports, dma.controller_ports(1), "dma2", 1), BusStatus::Ok);
    EXPECT_EQ(bus.add(0x81, IsaDma::kPagePorts, dma.page_ports(), "dma-page", 1), BusStatus::Ok);
  }
  void out(uint16_t port, uint8_t value) { bus.write(port, 1, value); }
  uint8_t in(uint16_t port) { return static_cast<uint8_t>(bus.read(port, 1)); }

  void bios_setup() { test::seabios_dma_setup(bus); }
  void seabios_channel2(uint32_t addr, uint16_t count, uint8_t mode) {
    test::seabios_dma_channel2(bus, addr, count, mode);
  }
  /// Channel `ch` (either controller) masked, programmed and unmasked: `address` in the
  /// channel's units, `count` units less one, `mode` without the channel bits.
  void program(unsigned ch, uint16_t address, uint16_t count, uint8_t page, uint8_t mode) {
    static constexpr uint8_t kPagePort[] = {0x87, 0x83, 0x81, 0x82, 0x8F, 0x8B, 0x89, 0x8A};
    const auto c = static_cast<uint8_t>(ch % 4);
    auto reg = [&](unsigned r) { return static_cast<uint16_t>(ch >= 4 ? 0xC0 + 2 * r : r); };
    out(reg(10), 0x04 | c);
    out(reg(12), 0);
    out(reg(2 * c), static_cast<uint8_t>(address));
    out(reg(2 * c), static_cast<uint8_t>(address >> 8));
    out(reg(2 * c + 1), static_cast<uint8_t>(count));
    out(reg(2 * c + 1), static_cast<uint8_t>(count >> 8));
    out(kPagePort[ch], page);
    out(reg(11), static_cast<uint8_t>(mode | c));
    out(reg(10), c);
  }
  /// A 16-bit register through the flip-flop, low byte first.
  uint16_t in16(uint16_t port, uint16_t clear_ff) {
    out(clear_ff, 0);
    const uint8_t low = in(port);
    return static_cast<uint16_t>(low | in(port) << 8);
  }

  test::FakeDmaMemory ram;
  IsaDma dma;
  IoBus bus;
  Device device;
};

TEST_F(IsaDmaTest, SeabiosFloppyReadReachesTerminalCount) {
  bios_setup();
  dma.attach(2, &device);
  const std::vector<uint8_t> sector = counting(512);
  device.on_ready = [&](unsigned ch) {
    const IsaDmaTransfer t = dma.to_memory(ch, sector);
    EXPECT_EQ(t.bytes, 512u);
    EXPECT_TRUE(t.terminal_count);
    dma.set_dreq(ch, false);
  };
  seabios_channel2(0x17C00, 512, 0x46);
  dma.set_dreq(2, true);
  EXPECT_EQ(device.calls, 1);
  EXPECT_EQ(0, std::memcmp(ram.bytes.data() + 0x17C00, sector.data(), 512));
  EXPECT_EQ(in(0x08) & 0x0F, 0x04);  // TC on channel 2, cleared by the read
  EXPECT_EQ(in(0x08) & 0x0F, 0x00);
  EXPECT_NE(dma.masks() & 0x04, 0);  // no autoinit: the channel masked itself
  EXPECT_EQ(dma.channel(2).current_count, 0xFFFF);
  EXPECT_EQ(dma.channel(2).current_address, 0x7C00 + 512);
}

TEST_F(IsaDmaTest, ChannelsZeroToThreeWaitForTheCascade) {
  out(0x0D, 0);
  out(0xDA, 0);  // controller 2 cleared: channel 4 masked, not in cascade mode
  dma.attach(2, &device);
  seabios_channel2(0x1000, 16, 0x46);
  dma.set_dreq(2, true);
  EXPECT_EQ(device.calls, 0);
  EXPECT_FALSE(dma.channel_ready(2));
  EXPECT_EQ(in(0x08) & 0xF0, 0x40);  // the request shows in the status register
  out(0xD6, 0xC0);
  EXPECT_EQ(device.calls, 0);  // still masked
  out(0xD4, 0x00);             // unmask channel 4: the held DREQ is served
  EXPECT_EQ(device.calls, 1);
  EXPECT_EQ(device.last_channel, 2u);
}

TEST_F(IsaDmaTest, MaskedChannelMovesNothingUntilUnmasked) {
  bios_setup();
  dma.attach(2, &device);
  seabios_channel2(0x2000, 8, 0x46);
  out(0x0A, 0x06);  // mask again
  dma.set_dreq(2, true);
  EXPECT_EQ(device.calls, 0);
  const std::vector<uint8_t> data = counting(8);
  EXPECT_EQ(dma.to_memory(2, data).bytes, 0u);
  device.on_ready = [&](unsigned ch) { EXPECT_EQ(dma.to_memory(ch, data).bytes, 8u); };
  out(0x0E, 0);  // clear all masks of controller 1
  EXPECT_EQ(device.calls, 1);
  EXPECT_EQ(ram.bytes[0x2007], 8);
}

TEST_F(IsaDmaTest, LinuxSequenceAndResidue) {
  bios_setup();
  // Linux: disable_dma, clear_dma_ff, set_dma_mode(DMA_MODE_READ | 2), set_dma_addr,
  // set_dma_count(len) (it writes len - 1), enable_dma; get_dma_residue afterwards.
  out(0x0A, 0x04 | 2);
  out(0x0C, 0);
  out(0x0B, 0x44 | 2);
  out(0x04, 0x00);
  out(0x04, 0x30);
  out(0x81, 0x01);
  out(0x05, 0xFF);
  out(0x05, 0x03);  // 1024 bytes
  out(0x0A, 2);
  const std::vector<uint8_t> data = counting(600);
  const IsaDmaTransfer t = dma.to_memory(2, data);
  EXPECT_EQ(t.bytes, 600u);
  EXPECT_FALSE(t.terminal_count);
  EXPECT_EQ(ram.bytes[0x13000 + 599], data[599]);
  const uint16_t count = in16(0x05, 0x0C);
  EXPECT_EQ(count + 1, 1024 - 600);  // the residue
  EXPECT_EQ(in16(0x04, 0x0C), 0x3000 + 600);
}

TEST_F(IsaDmaTest, ByteChannelsWrapInside64K) {
  bios_setup();
  seabios_channel2(0x1FFF0, 64, 0x46);
  const std::vector<uint8_t> data = counting(32);
  EXPECT_EQ(dma.to_memory(2, data).bytes, 32u);
  EXPECT_EQ(0, std::memcmp(ram.bytes.data() + 0x1FFF0, data.data(), 16));
  EXPECT_EQ(0, std::memcmp(ram.bytes.data() + 0x10000, data.data() + 16, 16));  // not 0x20000
  EXPECT_EQ(ram.bytes[0x20000], 0);
}

TEST_F(IsaDmaTest, WordChannelsWrapInside128KAndIgnorePageBitZero) {
  bios_setup();
  // Word address 0xFFF8 (byte 0x1FFF0 of the window), 0x100 words; page 3: bit 0 is ignored,
  // the window is 0x20000.
  program(5, 0xFFF8, 0x00FF, 0x03, 0x44);
  const std::vector<uint8_t> data = counting(32);
  EXPECT_EQ(dma.to_memory(5, data).bytes, 32u);
  EXPECT_EQ(0, std::memcmp(ram.bytes.data() + 0x3FFF0, data.data(), 16));
  EXPECT_EQ(0, std::memcmp(ram.bytes.data() + 0x20000, data.data() + 16, 16));
  EXPECT_EQ(dma.channel(5).current_address, 0x0008);
  // An odd byte is not a whole word: it is not moved.
  EXPECT_EQ(dma.to_memory(5, std::vector<uint8_t>(3, 0xAA)).bytes, 2u);
}

TEST_F(IsaDmaTest, OddPortsOfControllerTwoAliasTheEvenOnes) {
  bios_setup();
  out(0xD9, 0);     // clear flip-flop through the alias of 0xD8
  out(0xCF, 0x34);  // channel 7 count, low byte (alias of 0xCE)
  out(0xCE, 0x12);
  EXPECT_EQ(dma.channel(7).base_count, 0x1234);
}

TEST_F(IsaDmaTest, AutoinitReloadsAndStaysUnmasked) {
  bios_setup();
  program(1, 0x4000, 7, 0x00, 0x58);  // 8 bytes; single, autoinit, read (memory to device)
  const std::vector<uint8_t> pattern = counting(8, 0x50);
  std::memcpy(ram.bytes.data() + 0x4000, pattern.data(), 8);
  for (int round = 0; round < 3; ++round) {
    std::vector<uint8_t> got(12, 0);
    const IsaDmaTransfer t = dma.from_memory(1, got);
    EXPECT_EQ(t.bytes, 8u);  // stops at TC even though the device wanted more
    EXPECT_TRUE(t.terminal_count);
    EXPECT_EQ(0, std::memcmp(got.data(), pattern.data(), 8));
    EXPECT_EQ(in(0x08) & 0x02, 0x02);
    EXPECT_EQ(dma.masks() & 0x02, 0);
    EXPECT_EQ(dma.channel(1).current_address, 0x4000);
  }
}

TEST_F(IsaDmaTest, AddressDecrementFillsDownwards) {
  bios_setup();
  program(3, 0x0103, 3, 0x00, 0x64);  // 4 bytes; single, decrement, write
  const IsaDmaTransfer t = dma.to_memory(3, counting(4));
  EXPECT_TRUE(t.terminal_count);
  EXPECT_EQ(ram.bytes[0x103], 1);
  EXPECT_EQ(ram.bytes[0x102], 2);
  EXPECT_EQ(ram.bytes[0x101], 3);
  EXPECT_EQ(ram.bytes[0x100], 4);
  EXPECT_EQ(dma.channel(3).current_address, 0x00FF);
}

TEST_F(IsaDmaTest, VerifyAndWrongDirectionMoveNoMemory) {
  bios_setup();
  seabios_channel2(0x3000, 16, 0x42);  // verify
  EXPECT_EQ(dma.to_memory(2, counting(8)).bytes, 8u);
  EXPECT_EQ(ram.bytes[0x3000], 0);
  EXPECT_EQ(dma.channel(2).current_count, 7);
  seabios_channel2(0x3000, 16, 0x4A);  // read mode: memory to device
  EXPECT_EQ(dma.to_memory(2, counting(8)).bytes, 8u);
  EXPECT_EQ(ram.bytes[0x3007], 0);
  std::vector<uint8_t> out_bytes(4, 0);
  seabios_channel2(0x3000, 16, 0x46);  // write mode, but the device reads
  EXPECT_EQ(dma.from_memory(2, out_bytes).bytes, 4u);
  EXPECT_EQ(out_bytes, std::vector<uint8_t>(4, 0xFF));
}

TEST_F(IsaDmaTest, OutsideRamReadsOnesAndDropsWrites) {
  bios_setup();
  program(3, 0x0000, 15, 0xF0, 0x48);  // 0xF00000: past the 4 MiB of RAM
  std::vector<uint8_t> got(16, 0);
  EXPECT_EQ(dma.from_memory(3, got).bytes, 16u);
  EXPECT_EQ(got, std::vector<uint8_t>(16, 0xFF));
}

TEST_F(IsaDmaTest, MasterClearMasksAndAllMaskRegister) {
  bios_setup();
  out(0x0F, 0x05);  // mask 0 and 2
  EXPECT_EQ(dma.masks() & 0x0F, 0x05);
  out(0xDE, 0x0E);  // controller 2: mask 5-7, channel 4 open
  EXPECT_EQ(dma.masks() & 0xF0, 0xE0);
  out(0x09, 0x04 | 1);  // software request on channel 1
  EXPECT_EQ(in(0x08) & 0xF0, 0x20);
  out(0x09, 0x01);
  EXPECT_EQ(in(0x08) & 0xF0, 0x00);
  out(0x0D, 0);
  EXPECT_EQ(dma.masks() & 0x0F, 0x0F);
  out(0x08, 0x04);  // controller disable
  out(0x0E, 0);
  EXPECT_FALSE(dma.channel_ready(2));
  out(0x08, 0x00);
  EXPECT_TRUE(dma.channel_ready(2));
  EXPECT_FALSE(dma.channel_ready(4));  // the cascade is never a device's channel
}

TEST(IsaDmaPlatformTest, PageRegistersSharePort0x80WithThePostPort) {
  VirtualClock clock = VirtualClock::manual();
  PcPlatformConfig config;
  PcPlatform pc(clock, std::move(config));
  pc.io_bus().write(0x80, 1, 0x42);
  EXPECT_EQ(pc.post_port().last_code(), 0x42);
  EXPECT_EQ(pc.io_bus().read(0x80, 1), 0x42u);
  for (uint16_t port = 0x81; port <= 0x8F; ++port) pc.io_bus().write(port, 1, port & 0xFF);
  for (uint16_t port = 0x81; port <= 0x8F; ++port) EXPECT_EQ(pc.io_bus().read(port, 1), port & 0xFFu);
  EXPECT_EQ(pc.post_port().last_code(), 0x42);
  pc.io_bus().write(0x0A, 1, 0x06);
  pc.io_bus().write(0xD4, 1, 0x00);
  EXPECT_EQ(pc.stats().unhandled_port_accesses, 0u);
  EXPECT_GT(pc.stats().port_accesses.dma, 0u);
  EXPECT_EQ(pc.isa_dma().page(2), 0x81);  // the page file is the DMA controller's
  EXPECT_EQ(pc.isa_dma().page(0), 0x87);
}

}  // namespace
}  // namespace vmm86
