// The NE2000 PCI model driven the way Linux's ne2k-pci and 8390 drivers drive it
// (drivers/net/ethernet/8390/ne2k-pci.c, lib8390.c): the probe, NS8390_init, block
// input/output through the remote DMA, the receive ring walk with its next-page check; and
// a guest that programs nonsense, which must never reach outside the card or hang it.
#include "devices/net/ne2k_pci.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vmm86 {
namespace {

constexpr std::array<uint8_t, 6> kMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
// Register offsets and CR values as lib8390 names them.
constexpr uint16_t kCmd = 0x00, kStartPg = 0x01, kStopPg = 0x02, kBoundary = 0x03, kTpsr = 0x04, kTcntLo = 0x05,
                   kTcntHi = 0x06, kIsr = 0x07, kRsarLo = 0x08, kRsarHi = 0x09, kRcntLo = 0x0A, kRcntHi = 0x0B,
                   kRxcr = 0x0C, kTxcr = 0x0D, kDcfg = 0x0E, kImr = 0x0F, kCurPag = 0x07, kCounter0 = 0x0D,
                   kCounter2 = 0x0F, kTsr = 0x04;
constexpr uint8_t kNoDma = 0x20, kPage0 = 0x00, kPage1 = 0x40, kStop = 0x01, kStart = 0x02, kTrans = 0x04,
                  kRread = 0x08, kRwrite = 0x10;
constexpr uint8_t kIsrRx = 0x01, kIsrTx = 0x02, kIsrTxErr = 0x08, kIsrRdc = 0x40, kIsrReset = 0x80;
constexpr uint8_t kRxStart = 0x46, kRxStop = 0x80;  // ne2k-pci: TX_PAGES 12 after 0x40

class RecordingBackend final : public NetBackend {
 public:
  void send(std::span<const uint8_t> frame) override { sent.emplace_back(frame.begin(), frame.end()); }
  std::vector<std::vector<uint8_t>> sent;
};

class Ne2kTest : public ::testing::Test {
 protected:
  Ne2kTest() : nic(kMac, [this](bool level) { irq = level; }) { nic.set_backend(&backend); }

  void out(uint16_t reg, uint8_t value) { nic.write(reg, 1, value); }
  uint8_t in(uint16_t reg) { return static_cast<uint8_t>(nic.read(reg, 1)); }

  /// ne2k-pci's reset: a read and write of the reset port, then ISR.RST.
  void reset() {
    nic.write(Ne2kPci::kResetPort, 1, nic.read(Ne2kPci::kResetPort, 1));
    ASSERT_NE(in(kIsr)&kIsrReset, 0);
    out(kIsr, 0xFF);
  }

  /// NS8390_init(dev, 1) with ne2k-pci's ring: word transfers, pages 0x46-0x7F.
  void init() {
    reset();
    out(kCmd, kNoDma | kPage0 | kStop);
    out(kDcfg, 0x49);
    out(kRcntLo, 0);
    out(kRcntHi, 0);
    out(kRxcr, 0x20);
    out(kTxcr, 0x02);
    out(kTpsr, 0x40);
    out(kStartPg, kRxStart);
    out(kBoundary, kRxStop - 1);
    out(kStopPg, kRxStop);
    out(kIsr, 0xFF);
    out(kImr, 0);
    out(kCmd, kNoDma | kPage1 | kStop);
    for (unsigned i = 0; i < 6; ++i) out(static_cast<uint16_t>(1 + i), kMac[i]);
    out(kCurPag, kRxStart);
    out(kCmd, kNoDma | kPage0 | kStop);
    out(kCmd, kNoDma | kPage0 | kStart);
    out(kIsr, 0xFF);
    out(kImr, 0x3F);  // ENISR_ALL
    out(kTxcr, 0x00);
    out(kRxcr, 0x04);  // broadcast and our own address
  }

  /// ne2k_pci_block_input: RBCR/RSAR, remote read, dword reads, then the tail.
  std::vector<uint8_t> block_input(uint16_t address, uint16_t count) {
    out(kCmd, kNoDma | kPage0 | kStart);
    out(kRcntLo, static_cast<uint8_t>(count));
    out(kRcntHi, static_cast<uint8_t>(count >> 8));
    out(kRsarLo, static_cast<uint8_t>(address));
    out(kRsarHi, static_cast<uint8_t>(address >> 8));
    out(kCmd, kRread | kStart);
    std::vector<uint8_t> bytes;
    for (unsigned i = 0; i + 4 <= count; i += 4) {
      const uint32_t v = nic.read(Ne2kPci::kDataPort, 4);
      for (unsigned b = 0; b < 4; ++b) bytes.push_back(static_cast<uint8_t>(v >> 8 * b));
    }
    if (count & 2) {
      const uint32_t v = nic.read(Ne2kPci::kDataPort, 2);
      bytes.push_back(static_cast<uint8_t>(v));
      bytes.push_back(static_cast<uint8_t>(v >> 8));
    }
    if (count & 1) bytes.push_back(static_cast<uint8_t>(nic.read(Ne2kPci::kDataPort, 1)));
    out(kIsr, kIsrRdc);
    return bytes;
  }

  /// ne2k_pci_block_output (count rounded to dwords), then a transmit of `length` bytes.
  void transmit(const std::vector<uint8_t>& frame, uint16_t length) {
    std::vector<uint8_t> padded = frame;
    padded.resize((padded.size() + 3) & ~size_t{3}, 0);
    out(kCmd, kNoDma | kPage0 | kStart);
    out(kIsr, kIsrRdc);
    out(kRcntLo, static_cast<uint8_t>(padded.size()));
    out(kRcntHi, static_cast<uint8_t>(padded.size() >> 8));
    out(kRsarLo, 0x00);
    out(kRsarHi, 0x40);
    out(kCmd, kRwrite | kStart);
    for (size_t i = 0; i < padded.size(); i += 4) {
      nic.write(Ne2kPci::kDataPort, 4,
                uint32_t{padded[i]} | uint32_t{padded[i + 1]} << 8 | uint32_t{padded[i + 2]} << 16 |
                    uint32_t{padded[i + 3]} << 24);
    }
    ASSERT_NE(in(kIsr)&kIsrRdc, 0) << "the driver waits for the remote DMA to complete";
    out(kIsr, kIsrRdc);
    out(kTcntLo, static_cast<uint8_t>(length));
    out(kTcntHi, static_cast<uint8_t>(length >> 8));
    out(kTpsr, 0x40);
    out(kCmd, kNoDma | kTrans | kStart);
  }

  /// ei_receive's walk of the ring: up to `most` frames (Linux takes 10) with Linux's
  /// checks, BNRY moved after each, then the ack of PRX.
  std::vector<std::vector<uint8_t>> receive_all(int most = 64) {
    std::vector<std::vector<uint8_t>> frames;
    for (int guard = 0; guard < most; ++guard) {
      out(kCmd, kNoDma | kPage1);
      const uint8_t current = in(kCurPag);
      out(kCmd, kNoDma | kPage0);
      uint8_t this_frame = static_cast<uint8_t>(in(kBoundary) + 1);
      if (this_frame >= kRxStop) this_frame = kRxStart;
      if (this_frame == current) break;
      const std::vector<uint8_t> header = block_input(static_cast<uint16_t>(this_frame << 8), 4);
      const unsigned count = header[2] | header[3] << 8;
      const unsigned pkt_len = count - 4;
      const unsigned next_frame = this_frame + 1 + ((pkt_len + 4) >> 8);
      const unsigned pages = kRxStop - kRxStart;
      EXPECT_TRUE(header[1] == next_frame || header[1] == next_frame + 1 || header[1] == next_frame - pages ||
                  header[1] == next_frame + 1 - pages)
          << "bogus packet header: next " << int{header[1]} << " for frame at " << int{this_frame} << " length "
          << pkt_len;
      EXPECT_GE(pkt_len, 60u);
      EXPECT_LE(pkt_len, 1518u);
      EXPECT_EQ(header[0] & 0x0F, 0x01) << "RSR: received intact";
      // The 8390 driver reads across the ring's end in two parts.
      const unsigned start = (this_frame << 8) + 4;
      std::vector<uint8_t> data;
      if (start + pkt_len > kRxStop << 8) {
        const auto first = static_cast<uint16_t>((kRxStop << 8) - start);
        data = block_input(static_cast<uint16_t>(start), first);
        const std::vector<uint8_t> rest = block_input(kRxStart << 8, static_cast<uint16_t>(pkt_len - first));
        data.insert(data.end(), rest.begin(), rest.end());
      } else {
        data = block_input(static_cast<uint16_t>(start), static_cast<uint16_t>(pkt_len));
      }
      frames.push_back(data);
      // As lib8390 does: next - 1 even at the ring's start (BNRY then sits before the ring).
      out(kBoundary, static_cast<uint8_t>(header[1] - 1));
    }
    out(kIsr, kIsrRx);
    return frames;
  }

  static std::vector<uint8_t> frame_to(const std::array<uint8_t, 6>& dest, size_t length, uint8_t seed) {
    std::vector<uint8_t> f(length);
    std::copy(dest.begin(), dest.end(), f.begin());
    for (size_t i = 6; i < length; ++i) f[i] = static_cast<uint8_t>(seed + i * 7);
    return f;
  }

  RecordingBackend backend;
  bool irq = false;
  Ne2kPci nic;
};

constexpr std::array<uint8_t, 6> kBroadcast{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

TEST_F(Ne2kTest, PciIdentityIsQemusRtl8029) {
  EXPECT_EQ(nic.config_read(0x00, 4), 0x802910ECu);
  EXPECT_EQ(nic.config_read(0x08, 4) >> 8, 0x020000u);
  EXPECT_EQ(nic.config_read(0x2C, 4), 0x11001AF4u);
  EXPECT_EQ(nic.config_read(0x3D, 1), 1u);  // INTA#
  nic.config_write(0x10, 4, 0xFFFFFFFF);
  EXPECT_EQ(nic.config_read(0x10, 4) & 0xFFFF, 0xFFE1u) << "32 bytes of I/O space";
}

TEST_F(Ne2kTest, ProbeFindsAn8390AndReadsTheStationAddress) {
  EXPECT_NE(in(kCmd), 0xFF);
  // ne2k_pci_init_one: MAR5 on page 1 written, CNTR0 on page 0 clears when read.
  out(kCmd, kNoDma | kPage1 | kStop);
  out(0x0D, 0xFF);
  out(kCmd, kNoDma | kPage0);
  (void)in(kCounter0);
  EXPECT_EQ(in(kCounter0), 0);
  reset();
  // The station address PROM, 32 byte reads in word mode (each moves a word).
  out(kCmd, kNoDma | kPage0 | kStop);
  out(kDcfg, 0x49);
  out(kRcntLo, 32);
  out(kRcntHi, 0);
  out(kRsarLo, 0);
  out(kRsarHi, 0);
  out(kCmd, kRread | kStart);
  std::vector<uint8_t> prom;
  for (int i = 0; i < 32; ++i) prom.push_back(static_cast<uint8_t>(nic.read(Ne2kPci::kDataPort, 1)));
  EXPECT_EQ(std::vector<uint8_t>(prom.begin(), prom.begin() + 6), std::vector<uint8_t>(kMac.begin(), kMac.end()));
  EXPECT_EQ(prom[7], 'W') << "word 7 of the PROM marks a 16-bit card";
  EXPECT_NE(in(kIsr)&kIsrRdc, 0);
  // RTL8029 identification, page 0 registers 0x0A and 0x0B.
  EXPECT_EQ(in(0x0A), 0x50);
  EXPECT_EQ(in(0x0B), 0x43);
}

TEST_F(Ne2kTest, TransmitsWhatTheDriverWroteAndInterrupts) {
  init();
  const std::vector<uint8_t> frame = frame_to(kBroadcast, 98, 3);
  transmit(frame, 98);
  ASSERT_EQ(backend.sent.size(), 1u);
  EXPECT_EQ(backend.sent[0], frame);
  EXPECT_EQ(in(kTsr)&0x01, 0x01);
  EXPECT_NE(in(kIsr)&kIsrTx, 0);
  EXPECT_TRUE(irq);
  out(kIsr, kIsrTx);
  EXPECT_FALSE(irq);
  EXPECT_EQ(nic.stats().tx_frames, 1u);
}

TEST_F(Ne2kTest, ReceivesIntoTheRingAcrossItsEnd) {
  init();
  std::vector<std::vector<uint8_t>> sent;
  // 40 frames of growing sizes: the ring (58 pages) wraps several times.
  for (int i = 0; i < 40; ++i) {
    const size_t length = 42 + static_cast<size_t>(i) * 37;
    sent.push_back(frame_to(i % 2 ? kBroadcast : kMac, length, static_cast<uint8_t>(i)));
    nic.receive(sent.back());
    EXPECT_TRUE(irq);
    for (const auto& got : receive_all()) {
      const auto& want = sent[sent.size() - 1];
      ASSERT_GE(got.size(), want.size());
      EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin())) << "frame " << i;
      // Runts are padded to 60 bytes with zeros.
      for (size_t b = want.size(); b < got.size(); ++b) EXPECT_EQ(got[b], 0);
    }
    EXPECT_FALSE(irq);
  }
  EXPECT_EQ(nic.stats().rx_frames, 40u);
}

TEST_F(Ne2kTest, FiltersOtherStationsAndMulticastByTheHash) {
  init();
  nic.receive(frame_to({0x52, 0x54, 0x00, 0x12, 0x34, 0x57}, 64, 1));
  nic.receive(frame_to({0x01, 0x00, 0x5E, 0x00, 0x00, 0x01}, 64, 1));
  EXPECT_EQ(nic.stats().rx_filtered, 2u);
  EXPECT_FALSE(irq);
  // Accept multicast with every hash bit set (what Linux's IFF_ALLMULTI programs).
  out(kRxcr, 0x0C);
  out(kCmd, kNoDma | kPage1 | kStart);
  for (uint16_t r = 8; r < 16; ++r) out(r, 0xFF);
  out(kCmd, kNoDma | kPage0 | kStart);
  nic.receive(frame_to({0x01, 0x00, 0x5E, 0x00, 0x00, 0x01}, 64, 1));
  EXPECT_EQ(nic.stats().rx_frames, 1u);
}

TEST_F(Ne2kTest, AFullRingHoldsFramesUntilTheDriverFreesPages) {
  init();
  // Full-size frames take 6 pages; 58 pages hold 9 of them before CURR would reach BNRY.
  for (int i = 0; i < 20; ++i) nic.receive(frame_to(kBroadcast, 1514, static_cast<uint8_t>(i)));
  EXPECT_GT(nic.queued_frames(), 0u);
  EXPECT_EQ(nic.stats().rx_dropped, 0u);
  size_t got = 0;
  for (int round = 0; round < 10 && got < 20; ++round) got += receive_all().size();
  EXPECT_EQ(got, 20u);
  EXPECT_EQ(nic.queued_frames(), 0u);
}

TEST_F(Ne2kTest, ABoundaryBeforeTheRingStillGuardsUnreadFrames) {
  init();
  // 29 frames of two pages each fill the 58-page ring exactly: after reading them Linux
  // writes BNRY = PSTART - 1, one page before the ring.
  for (int i = 0; i < 29; ++i) {
    nic.receive(frame_to(kBroadcast, 300, static_cast<uint8_t>(i)));
    ASSERT_EQ(receive_all().size(), 1u);
  }
  ASSERT_EQ(in(kBoundary), kRxStart - 1);
  // A flood the ring cannot hold: what does not fit waits, nothing unread is overwritten.
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 30; ++i) {
    sent.push_back(frame_to(kBroadcast, 1514, static_cast<uint8_t>(100 + i)));
    nic.receive(sent.back());
  }
  std::vector<std::vector<uint8_t>> got;
  for (int round = 0; round < 20 && got.size() < sent.size(); ++round) {
    for (auto& frame : receive_all()) got.push_back(std::move(frame));
  }
  EXPECT_EQ(got, sent);
}

TEST_F(Ne2kTest, FramesLeftInTheRingKeepTheInterruptUp) {
  init();
  for (int i = 0; i < 15; ++i) nic.receive(frame_to(kBroadcast, 64, static_cast<uint8_t>(i)));
  EXPECT_EQ(receive_all(10).size(), 10u);
  EXPECT_TRUE(irq) << "five frames wait: PRX stays up after the driver's ack";
  EXPECT_EQ(receive_all(10).size(), 5u);
  EXPECT_FALSE(irq);
}

TEST_F(Ne2kTest, BeyondTheQueueFramesAreDroppedAndCounted) {
  init();
  for (size_t i = 0; i < Ne2kPci::kMaxQueuedFrames + 40; ++i) nic.receive(frame_to(kBroadcast, 1514, 0));
  EXPECT_EQ(nic.queued_frames(), Ne2kPci::kMaxQueuedFrames);
  EXPECT_GT(nic.stats().rx_dropped, 0u);
  EXPECT_EQ(in(kCounter2), nic.stats().rx_dropped) << "CNTR2 counts missed frames";
  EXPECT_EQ(in(kCounter2), 0) << "and clears when read";
}

TEST_F(Ne2kTest, OversizeAndRuntFramesFromTheHostAreDropped) {
  init();
  nic.receive(std::vector<uint8_t>(9000, 0xFF));
  nic.receive(std::vector<uint8_t>(8, 0xFF));
  nic.receive({});
  EXPECT_EQ(nic.stats().rx_frames, 0u);
  EXPECT_EQ(nic.stats().rx_dropped, 3u);
}

TEST_F(Ne2kTest, AbsurdTransmitLengthsAbortWithAnError) {
  init();
  for (const uint16_t length : {uint16_t{0}, uint16_t{5}, uint16_t{1519}, uint16_t{0xFFFF}}) {
    transmit(frame_to(kBroadcast, 64, 0), length);
    EXPECT_NE(in(kIsr)&kIsrTxErr, 0) << length;
    EXPECT_EQ(in(kTsr)&0x08, 0x08) << "TSR.ABT";
    out(kIsr, 0xFF);
  }
  // TPSR pointing at the PROM and at the last page: outside the buffer RAM.
  for (const uint8_t page : {uint8_t{0x00}, uint8_t{0xBF}, uint8_t{0xFF}}) {
    out(kTcntLo, 0x00);
    out(kTcntHi, 0x02);
    out(kTpsr, page);
    out(kCmd, kNoDma | kTrans | kStart);
    EXPECT_NE(in(kIsr)&kIsrTxErr, 0) << int{page};
    out(kIsr, 0xFF);
  }
  EXPECT_TRUE(backend.sent.empty());
  EXPECT_EQ(nic.stats().tx_errors, 7u);
}

TEST_F(Ne2kTest, BadRingPointersNeverStoreOutsideTheRam) {
  init();
  const std::vector<uint8_t> frame = frame_to(kBroadcast, 1514, 9);
  struct Ring {
    uint8_t start, stop, boundary, current;
  };
  // Empty, inverted, past the RAM's end, in the PROM, CURR and BNRY outside the ring.
  for (const Ring r : {Ring{0x40, 0x40, 0x40, 0x40}, Ring{0x80, 0x40, 0x50, 0x60}, Ring{0x40, 0xFF, 0x40, 0xF0},
                       Ring{0x00, 0x10, 0x00, 0x01}, Ring{0x46, 0x80, 0x47, 0x20}, Ring{0x46, 0x80, 0xFF, 0x7F},
                       Ring{0xBF, 0xC0, 0xBF, 0xBF}}) {
    out(kCmd, kNoDma | kPage0 | kStop);
    out(kStartPg, r.start);
    out(kStopPg, r.stop);
    out(kBoundary, r.boundary);
    out(kCmd, kNoDma | kPage1 | kStop);
    out(kCurPag, r.current);
    out(kCmd, kNoDma | kPage0 | kStart);
    nic.receive(frame);
  }
  // The PROM was never overwritten.
  for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(nic.local_byte(static_cast<uint16_t>(2 * i)), kMac[i]);
  EXPECT_LE(nic.queued_frames(), Ne2kPci::kMaxQueuedFrames);
}

TEST_F(Ne2kTest, RemoteDmaWrapsInsideTheCard) {
  init();
  // A read of 64 KiB from the last RAM byte: reads run on through unbacked space (0xFF)
  // and the 16-bit address wraps into the PROM; nothing but the card's array is touched.
  const std::vector<uint8_t> bytes = block_input(0xFFFE, 8);
  EXPECT_EQ(bytes[0], 0xFF);
  EXPECT_EQ(bytes[2], kMac[0]);
  // Writes outside the RAM are dropped: the PROM keeps the station address.
  out(kRcntLo, 16);
  out(kRcntHi, 0);
  out(kRsarLo, 0);
  out(kRsarHi, 0);
  out(kCmd, kRwrite | kStart);
  for (int i = 0; i < 4; ++i) nic.write(Ne2kPci::kDataPort, 4, 0xDEADBEEF);
  EXPECT_EQ(nic.local_byte(0), kMac[0]);
}

TEST_F(Ne2kTest, IntxDisableHoldsThePinLow) {
  init();
  nic.receive(frame_to(kBroadcast, 64, 0));
  EXPECT_TRUE(irq);
  EXPECT_NE(nic.config_read(0x06, 2) & 0x08, 0u) << "status: interrupt pending";
  nic.config_write(0x04, 2, 0x0401);
  EXPECT_FALSE(irq);
  EXPECT_NE(nic.config_read(0x06, 2) & 0x08, 0u) << "still pending, only not signalled";
  nic.config_write(0x04, 2, 0x0001);
  EXPECT_TRUE(irq);
}

TEST_F(Ne2kTest, LinkDownLosesCarrier) {
  init();
  nic.set_link(false);
  transmit(frame_to(kBroadcast, 64, 0), 64);
  EXPECT_TRUE(backend.sent.empty());
  EXPECT_EQ(in(kTsr)&0x05, 0x05) << "PTX with CRS: carrier sense lost";
  nic.receive(frame_to(kBroadcast, 64, 0));
  EXPECT_EQ(nic.stats().rx_frames, 0u);
  nic.set_link(true);
  nic.receive(frame_to(kBroadcast, 64, 0));
  EXPECT_EQ(nic.stats().rx_frames, 1u);
}

TEST_F(Ne2kTest, LoopbackModeReturnsTheFrameToTheReceiver) {
  init();
  out(kTxcr, 0x02);  // internal loopback, as NS8390_init leaves it while stopped
  out(kRxcr, 0x1F);
  transmit(frame_to(kMac, 64, 4), 64);
  EXPECT_TRUE(backend.sent.empty());
  EXPECT_EQ(nic.stats().rx_frames, 1u);
}

// A hostile guest: random register, data-port and reset accesses of every width, with
// frames arriving in between. The model must stay inside its arrays (ASan checks that in
// the sanitizer build) and keep the queue bounded.
TEST_F(Ne2kTest, RandomProgrammingNeitherCrashesNorGrowsWithoutBound) {
  std::mt19937 rng(20);
  const std::vector<uint8_t> frame = frame_to(kBroadcast, 1514, 1);
  for (int i = 0; i < 200'000; ++i) {
    const auto offset = static_cast<uint16_t>(rng() % Ne2kPci::kIoSize);
    const unsigned size = 1u << (rng() % 3);
    if (rng() % 2) {
      nic.write(offset, size, static_cast<uint32_t>(rng()));
    } else {
      (void)nic.read(offset, size);
    }
    if (i % 16 == 0) nic.receive({frame.data(), 14 + rng() % 1501});
  }
  EXPECT_LE(nic.queued_frames(), Ne2kPci::kMaxQueuedFrames);
  for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(nic.local_byte(static_cast<uint16_t>(2 * i)), kMac[i]);
}

}  // namespace
}  // namespace vmm86
