// The 82077AA through its ports, as SeaBIOS and Linux's floppy driver talk to it: reset and
// the four polling answers, SPECIFY/CONFIGURE/LOCK/DUMPREG, seeks, and sector transfers over
// ISA DMA channel 2 into a fake guest RAM.
#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/isa_dma.h"
#include "devices/storage/floppy_controller.h"
#include "tests/devices/storage/ide_test_util.h"

namespace vmm86 {
namespace {

constexpr uint16_t kDor = 0x3F2;
constexpr uint16_t kMsr = 0x3F4;
constexpr uint16_t kFifo = 0x3F5;
constexpr uint16_t kDir = 0x3F7;
constexpr uint64_t k144 = 1474560;
constexpr uint8_t kRead = 0xE6;      // MT MFM SK READ DATA, as SeaBIOS and Linux send it
constexpr uint8_t kReadNoMt = 0x66;  // MFM SK READ DATA
constexpr uint8_t kWrite = 0xC5;     // MT MFM WRITE DATA
constexpr uint8_t kDmaToMemory = 0x46;
constexpr uint8_t kDmaFromMemory = 0x4A;

/// `count` sectors of an unwritten 1.44 MB PatternDisk from (c, h, r) on.
std::vector<uint8_t> sectors_at(unsigned c, unsigned h, unsigned r, unsigned count) {
  const uint64_t first = ((c * 2 + h) * 18 + (r - 1)) * 512ull;
  std::vector<uint8_t> out(count * 512);
  for (size_t i = 0; i < out.size(); ++i) out[i] = test::pattern_byte(first + i);
  return out;
}

class FdcTest : public ::testing::Test {
 protected:
  FdcTest() : memory(1 << 20), dma(&memory), fdc(dma, irqs.line(6)) {
    EXPECT_EQ(bus.add(0x00, IsaDma::kController1Ports, dma.controller_ports(0), "dma1", 1), BusStatus::Ok);
    EXPECT_EQ(bus.add(0xC0, IsaDma::kController2Ports, dma.controller_ports(1), "dma2", 1), BusStatus::Ok);
    EXPECT_EQ(bus.add(0x81, IsaDma::kPagePorts, dma.page_ports(), "dma-page", 1), BusStatus::Ok);
    EXPECT_EQ(fdc.register_ports(bus), BusStatus::Ok);
    test::seabios_dma_setup(bus);
  }

  test::PatternDisk& insert(unsigned index, uint64_t bytes = k144, bool read_only = false) {
    auto disk = std::make_unique<test::PatternDisk>(bytes, read_only);
    test::PatternDisk& backend = *disk;
    auto drive = FloppyDrive::for_image(std::move(disk));
    EXPECT_TRUE(drive.ok());
    fdc.attach(index, std::move(*drive));
    return backend;
  }
  uint8_t in8(uint16_t port) { return static_cast<uint8_t>(bus.read(port, 1)); }
  void out8(uint16_t port, uint8_t value) { bus.write(port, 1, value); }

  /// Sends a command the way Linux's output_byte() does: each byte only when MSR says the
  /// controller wants one (RQM set, DIO clear).
  void command(std::initializer_list<uint8_t> bytes) {
    for (const uint8_t b : bytes) {
      ASSERT_EQ(in8(kMsr) & 0xC0, 0x80) << "controller not ready for byte " << int{b};
      out8(kFifo, b);
    }
  }
  /// Reads the result phase the way Linux's result() does.
  std::vector<uint8_t> result() {
    std::vector<uint8_t> bytes;
    while ((in8(kMsr) & 0xD0) == 0xD0) bytes.push_back(in8(kFifo));
    EXPECT_EQ(in8(kMsr) & 0xC0, 0x80) << "not back in the command phase";
    return bytes;
  }
  std::vector<uint8_t> run(std::initializer_list<uint8_t> bytes) {
    command(bytes);
    return result();
  }
  uint64_t irq_edges() const { return irqs.rising_edges[6]; }
  std::vector<uint8_t> memory_at(uint32_t addr, size_t n) const {
    return {memory.bytes.begin() + addr, memory.bytes.begin() + addr + n};
  }

  test::RecordingIrqSink irqs;
  test::FakeDmaMemory memory;
  IsaDma dma;
  FloppyController fdc;
  IoBus bus;
};

TEST_F(FdcTest, PowerOnStateIsWhatSeabiosExpects) {
  EXPECT_EQ(in8(kDor), 0x0C);  // out of reset, DMA gate open
  EXPECT_EQ(in8(kMsr), 0x80);
  EXPECT_FALSE(irqs.levels[6]);
  EXPECT_EQ(in8(0x3F0), 0xFF);  // no SRA/SRB in PC-AT mode
}

TEST_F(FdcTest, DorResetGivesOneInterruptAndFourSenseInterruptAnswers) {
  insert(0);
  out8(kDor, 0x08);  // reset held
  EXPECT_EQ(in8(kMsr), 0x00);
  out8(kFifo, 0x10);  // ignored in reset
  EXPECT_EQ(irq_edges(), 0u);
  out8(kDor, 0x0C);
  EXPECT_EQ(irq_edges(), 1u);
  EXPECT_TRUE(irqs.levels[6]);
  for (uint8_t drive = 0; drive < 4; ++drive) {
    EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{static_cast<uint8_t>(0xC0 | drive), 0})) << int{drive};
    EXPECT_FALSE(irqs.levels[6]);
  }
  EXPECT_EQ(run({0x08}), std::vector<uint8_t>{0x80});  // nothing left to report
  EXPECT_EQ(irq_edges(), 1u);
}

TEST_F(FdcTest, ResetWithTheDmaGateClosedKeepsIrqLow) {
  out8(kDor, 0x00);
  out8(kDor, 0x04);  // out of reset, gate closed: INT is tri-stated in PC-AT mode
  EXPECT_FALSE(irqs.levels[6]);
  out8(kDor, 0x0C);
  EXPECT_TRUE(irqs.levels[6]);
}

TEST_F(FdcTest, ANewInterruptDropsTheResetPollsAsSeabiosRelies) {
  insert(0);
  out8(kDor, 0x08);
  out8(kDor, 0x0C);
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0xC0, 0}));  // SeaBIOS takes one
  command({0x07, 0x00});                                    // RECALIBRATE
  EXPECT_EQ(irq_edges(), 2u);
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x20, 0}));
}

TEST_F(FdcTest, LinuxProbeSequenceIdentifiesAPost1991_82077) {
  EXPECT_EQ(run({0x0E}).size(), 10u);  // DUMPREG: not an 8272A
  command({0x13, 0x00, 0x1A, 0x00});   // CONFIGURE: polling off, FIFO on, threshold 10
  EXPECT_EQ(in8(kMsr), 0x80);
  command({0x12});  // PERPENDICULAR MODE wants more
  EXPECT_EQ(in8(kMsr) & 0xD0, 0x90);
  command({0x00});
  EXPECT_EQ(run({0x14}), std::vector<uint8_t>{0x00});  // UNLOCK
  EXPECT_EQ(run({0x18}), std::vector<uint8_t>{0x80});  // PARTID: invalid on the 82077AA
  EXPECT_EQ(run({0x10}), std::vector<uint8_t>{0x90});  // VERSION
  EXPECT_EQ(irq_edges(), 0u);
  EXPECT_EQ(fdc.stats().invalid_commands, 1u);
}

TEST_F(FdcTest, DumpregShowsSpecifyConfigureLockAndPerpendicular) {
  command({0x03, 0xAF, 0x02});  // SPECIFY as SeaBIOS's parameter table has it
  command({0x13, 0x00, 0x57, 0x03});
  command({0x12, 0x80 | 0x08 | 0x02});                 // drive 1 perpendicular, GAP
  EXPECT_EQ(run({0x94}), std::vector<uint8_t>{0x10});  // LOCK
  command({0x0F, 0x00, 0x05});
  (void)run({0x08});
  const uint64_t edges = irq_edges();
  EXPECT_EQ(run({0x0E}), (std::vector<uint8_t>{5, 0, 0, 0, 0xAF, 0x02, 0, 0x80 | 0x08 | 0x02, 0x57, 0x03}));
  // LOCK keeps CONFIGURE over a software reset (DSR bit 7); polling stays off, so no IRQ.
  out8(kMsr, 0x80);
  EXPECT_EQ(run({0x0E})[8], 0x57);
  EXPECT_EQ(irq_edges(), edges);
  // Unlocked, the reset restores the defaults (polling on: an interrupt).
  EXPECT_EQ(run({0x14}), std::vector<uint8_t>{0x00});
  out8(kDor, 0x08);
  out8(kDor, 0x0C);
  EXPECT_EQ(irq_edges(), edges + 1);
  const std::vector<uint8_t> regs = run({0x0E});
  EXPECT_EQ(regs[8], 0x20);
  EXPECT_EQ(regs[7], 0x08);  // GAP and WGATE cleared, the drive bits kept
}

TEST_F(FdcTest, SeekAndRecalibrateInterruptUntilSenseInterrupt) {
  insert(0);
  command({0x0F, 0x04, 40});  // SEEK head 1, drive 0, cylinder 40
  EXPECT_TRUE(irqs.levels[6]);
  EXPECT_EQ(in8(kMsr), 0x81);  // drive 0 busy
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x24, 40}));
  EXPECT_FALSE(irqs.levels[6]);
  EXPECT_EQ(in8(kMsr), 0x80);
  EXPECT_EQ(fdc.drive(0)->cylinder(), 40);
  command({0x8F, 0x00, 3});  // RELATIVE SEEK outwards... (DIR 0: towards cylinder 0)
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x20, 37}));
  command({0xCF, 0x00, 10});  // inwards
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x20, 47}));
  command({0x07, 0x00});
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x20, 0}));
  EXPECT_EQ(fdc.drive(0)->cylinder(), 0);
  command({0x07, 0x01});  // no drive 1: no track 0 signal, equipment check
  EXPECT_EQ(run({0x08}), (std::vector<uint8_t>{0x71, 0}));
}

TEST_F(FdcTest, DiskChangeLineClearsOnAStepWithADiskIn) {
  insert(0);
  EXPECT_EQ(in8(kDir) & 0x80, 0x80);  // set at power-on
  command({0x07, 0x00});              // already at track 0: no step pulse
  (void)run({0x08});
  EXPECT_EQ(in8(kDir) & 0x80, 0x80);
  command({0x0F, 0x00, 1});  // Linux seeks to track 1 to clear it
  (void)run({0x08});
  EXPECT_EQ(in8(kDir) & 0x80, 0);
  auto disk = fdc.drive(0)->eject();
  EXPECT_EQ(in8(kDir) & 0x80, 0x80);
  command({0x0F, 0x00, 2});  // no disk: stays
  (void)run({0x08});
  EXPECT_EQ(in8(kDir) & 0x80, 0x80);
  fdc.drive(0)->insert(std::move(disk));
  command({0x0F, 0x00, 3});
  (void)run({0x08});
  EXPECT_EQ(in8(kDir) & 0x80, 0);
}

TEST_F(FdcTest, SenseDriveStatusReportsTrack0AndWriteProtect) {
  insert(0, k144, true);
  insert(1);
  EXPECT_EQ(run({0x04, 0x00}), std::vector<uint8_t>{0x78});  // WP, RDY, T0, TS
  EXPECT_EQ(run({0x04, 0x05}), std::vector<uint8_t>{0x3D});  // head 1, drive 1
  command({0x0F, 0x01, 9});
  (void)run({0x08});
  EXPECT_EQ(run({0x04, 0x01}), std::vector<uint8_t>{0x29});
}

TEST_F(FdcTest, SeabiosReadOfACylinderCrossesToHeadOneAndEndsAtTerminalCount) {
  insert(0);
  out8(kDir, 0x00);  // 500 kb/s, as SeaBIOS sets it for a 1.44 MB drive
  test::seabios_dma_channel2(bus, 0x10000, 36 * 512, kDmaToMemory);
  command({kRead, 0x00, 0, 0, 1, 2, 36, 0x1B, 0xFF});  // EOT as SeaBIOS computes it
  EXPECT_EQ(irq_edges(), 1u);
  EXPECT_EQ(memory_at(0x10000, 36 * 512), sectors_at(0, 0, 1, 36));
  // Ended on head 1 (ST0 HD); the next ID: C+1, H back to 0, R 1.
  EXPECT_EQ(result(), (std::vector<uint8_t>{0x04, 0, 0, 1, 0, 1, 2}));
  EXPECT_FALSE(irqs.levels[6]);
  EXPECT_EQ(fdc.stats().sectors_read, 36u);
}

TEST_F(FdcTest, BochsBiosReadsAtThePowerOnRate) {
  insert(0);  // rombios never writes the CCR: 500 kb/s from power-on, as on QEMU
  test::seabios_dma_channel2(bus, 0x7C00, 512, kDmaToMemory);
  command({kRead, 0x00, 0, 0, 1, 2, 1, 0, 0xFF});
  EXPECT_EQ(result()[0] & 0xC0, 0);
  EXPECT_EQ(memory_at(0x7C00, 512), sectors_at(0, 0, 1, 1));
}

TEST_F(FdcTest, LinuxTrackReadImpliedSeekAndResultPosition) {
  insert(0);
  out8(kDir, 0x00);
  // Head 1 of cylinder 5, sectors 10-13, MT off: the controller moves the head (ST0 SE).
  test::seabios_dma_channel2(bus, 0x20000, 4 * 512, kDmaToMemory);
  command({kReadNoMt, 0x04, 5, 1, 10, 2, 18, 0x1B, 0xFF});
  EXPECT_EQ(memory_at(0x20000, 4 * 512), sectors_at(5, 1, 10, 4));
  EXPECT_EQ(result(), (std::vector<uint8_t>{0x24, 0, 0, 5, 1, 14, 2}));
  EXPECT_EQ(fdc.drive(0)->cylinder(), 5);
  // Linux's count of what moved, from the result's C/H/R, agrees with the DMA residue.
  test::seabios_dma_channel2(bus, 0x30000, 18 * 512, kDmaToMemory);
  command({kRead, 0x04, 5, 1, 1, 2, 18, 0x1B, 0xFF});
  EXPECT_EQ(result(), (std::vector<uint8_t>{0x04, 0, 0, 6, 0, 1, 2}));
  EXPECT_EQ(memory_at(0x30000, 18 * 512), sectors_at(5, 1, 1, 18));
}

TEST_F(FdcTest, ReadWithoutTerminalCountEndsAtTheEndOfTheCylinder) {
  insert(0);
  out8(kDir, 0x00);
  test::seabios_dma_channel2(bus, 0x10000, 8 * 512, kDmaToMemory);
  command({kReadNoMt, 0x00, 0, 0, 17, 2, 18, 0x1B, 0xFF});
  EXPECT_EQ(result(), (std::vector<uint8_t>{0x40, 0x80, 0, 1, 0, 1, 2}));  // abnormal, EN
  EXPECT_EQ(memory_at(0x10000, 2 * 512), sectors_at(0, 0, 17, 2));
  EXPECT_EQ(dma.channel(2).current_count, 6 * 512 - 1);
}

TEST_F(FdcTest, SectorsTheTrackDoesNotHaveGiveNoData) {
  insert(0);
  out8(kDir, 0x00);
  test::seabios_dma_channel2(bus, 0x10000, 512, kDmaToMemory);
  EXPECT_EQ(run({kRead, 0x00, 0, 0, 19, 2, 19, 0x1B, 0xFF}), (std::vector<uint8_t>{0x40, 0x04, 0, 0, 0, 19, 2}));
  EXPECT_EQ(run({kRead, 0x00, 0, 0, 1, 3, 1, 0x1B, 0xFF})[1], 0x04);  // 1024-byte sectors
  EXPECT_EQ(run({kRead, 0x00, 0, 1, 1, 2, 1, 0x1B, 0xFF})[1], 0x04);  // ID head 1 under head 0
}

TEST_F(FdcTest, WriteThroughDmaReachesTheImage) {
  test::PatternDisk& disk = insert(0);
  out8(kDir, 0x00);
  for (unsigned i = 0; i < 3 * 512; ++i) memory.bytes[0x40000 + i] = static_cast<uint8_t>(i * 7 + 1);
  test::seabios_dma_channel2(bus, 0x40000, 3 * 512, kDmaFromMemory);
  command({kWrite, 0x04, 2, 1, 17, 2, 18, 0x1B, 0xFF});  // head 1: 17, 18, then cylinder 3 head 0
  // MT from head 1 does not go on to the next cylinder: the third sector is never reached.
  const std::vector<uint8_t> r = result();
  EXPECT_EQ(r, (std::vector<uint8_t>{0x64, 0x80, 0, 3, 0, 1, 2}));
  const uint64_t base = ((2 * 2 + 1) * 18 + 16) * 512ull;
  for (unsigned i = 0; i < 2 * 512; ++i) ASSERT_EQ(disk.byte_at(base + i), static_cast<uint8_t>(i * 7 + 1)) << i;
  EXPECT_EQ(disk.byte_at(base + 2 * 512), test::pattern_byte(base + 2 * 512));
  EXPECT_EQ(fdc.stats().sectors_written, 2u);
}

TEST_F(FdcTest, WriteProtectedDiskRefusesWritesAndFormats) {
  test::PatternDisk& disk = insert(0, k144, true);
  out8(kDir, 0x00);
  test::seabios_dma_channel2(bus, 0x40000, 512, kDmaFromMemory);
  EXPECT_EQ(run({kWrite, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF}), (std::vector<uint8_t>{0x40, 0x02, 0, 0, 0, 1, 2}));
  EXPECT_EQ(run({0x4D, 0x00, 2, 18, 0x6C, 0xF6})[1], 0x02);
  EXPECT_EQ(disk.writes, 0);
  EXPECT_EQ(dma.channel(2).current_count, 511);  // no DMA cycle happened
}

TEST_F(FdcTest, NoDiskNoDriveOrWrongRateIsAMissingAddressMark) {
  fdc.attach(0, std::make_unique<FloppyDrive>(kFloppyFormats[3], nullptr));
  out8(kDir, 0x00);
  EXPECT_EQ(run({kRead, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF}), (std::vector<uint8_t>{0x40, 0x01, 0, 0, 0, 1, 2}));
  EXPECT_EQ(run({kRead, 0x01, 0, 0, 1, 2, 18, 0x1B, 0xFF}), (std::vector<uint8_t>{0x41, 0x01, 0, 0, 0, 1, 2}));
  EXPECT_EQ(run({0x4A, 0x00})[1], 0x01);
  EXPECT_EQ(irq_edges(), 3u);
  insert(0);
  out8(kDir, 0x02);  // 250 kb/s: a 720 KB rate on a 1.44 MB disk
  EXPECT_EQ(run({0x4A, 0x00})[0], 0x40);
  out8(kMsr, 0x00);  // the DSR sets the rate too
  EXPECT_EQ(run({0x4A, 0x00})[0], 0x00);
  EXPECT_EQ(run({0x0A, 0x00})[1], 0x01);  // READ ID in FM: no IDs on an MFM disk
}

TEST_F(FdcTest, ReadIdNamesTheCylinderUnderTheHead) {
  insert(0);
  out8(kDir, 0x00);
  command({0x0F, 0x00, 7});
  (void)run({0x08});
  EXPECT_EQ(run({0x4A, 0x04}), (std::vector<uint8_t>{0x04, 0, 0, 7, 1, 1, 2}));
  EXPECT_EQ(run({0x4A, 0x04})[5], 2);  // the next ID passing under the head
  EXPECT_EQ(irq_edges(), 3u);
}

TEST_F(FdcTest, MaskedDmaHoldsTheTransferUntilTheGuestUnmasks) {
  insert(0);
  out8(kDir, 0x00);
  test::seabios_dma_channel2(bus, 0x10000, 512, kDmaToMemory);
  out8(0x0A, 0x06);  // mask channel 2 again
  command({kRead, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF});
  EXPECT_EQ(in8(kMsr), 0x10);  // busy, no RQM: the execution phase
  EXPECT_EQ(irq_edges(), 0u);
  EXPECT_EQ(in8(0x08) & 0x40, 0x40);  // DREQ 2 shows in the DMA status
  out8(0x0A, 0x02);
  EXPECT_EQ(irq_edges(), 1u);
  EXPECT_EQ(memory_at(0x10000, 512), sectors_at(0, 0, 1, 1));
  // EOT 1 with MT: the next ID is sector 1 of head 1 (ST0 names the head that read).
  EXPECT_EQ(result(), (std::vector<uint8_t>{0x00, 0, 0, 0, 1, 1, 2}));
  EXPECT_EQ(in8(0x08) & 0x40, 0);
}

TEST_F(FdcTest, FormatTrackFillsTheSectorsItNames) {
  test::PatternDisk& disk = insert(0);
  out8(kDir, 0x00);
  command({0x0F, 0x00, 4});
  (void)run({0x08});
  for (uint8_t r = 1; r <= 18; ++r) {
    const std::array<uint8_t, 4> id{4, 1, r, 2};
    std::copy(id.begin(), id.end(), memory.bytes.begin() + 0x50000 + (r - 1) * 4);
  }
  test::seabios_dma_channel2(bus, 0x50000, 18 * 4, kDmaFromMemory);
  EXPECT_EQ(run({0x4D, 0x04, 2, 18, 0x6C, 0xF6})[0], 0x04);
  const uint64_t base = (4 * 2 + 1) * 18 * 512ull;
  for (uint64_t i = 0; i < 18 * 512; i += 97) ASSERT_EQ(disk.byte_at(base + i), 0xF6) << i;
  EXPECT_EQ(disk.byte_at(base - 1), test::pattern_byte(base - 1));
  EXPECT_EQ(disk.byte_at(base + 18 * 512), test::pattern_byte(base + 18 * 512));
}

TEST_F(FdcTest, CommandsAfterAFailedOneStillWork) {
  EXPECT_EQ(run({0x02}), std::vector<uint8_t>{0x80});  // READ TRACK: not implemented
  EXPECT_EQ(run({0x10}), std::vector<uint8_t>{0x90});
}

TEST(FloppyDriveTest, FormatsFromImageSizesAndCmosTypes) {
  for (const FloppyFormat& format : kFloppyFormats) {
    auto found = floppy_format_for_size(format.bytes(), "x.img");
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(*found, &format);
  }
  EXPECT_EQ(kFloppyFormats[3].bytes(), k144);
  auto bad = floppy_format_for_size(1474561, "odd.img");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("floppy image odd.img is 1474561 bytes"), std::string::npos);
  EXPECT_EQ(bad.error().find('\n'), std::string::npos);
  IsaDma dma(nullptr);
  FloppyController fdc(dma, IrqLine());
  EXPECT_EQ(fdc.cmos_drive_types(), 0x00);
  fdc.attach(0, std::make_unique<FloppyDrive>(kFloppyFormats[3], nullptr));
  fdc.attach(1, std::make_unique<FloppyDrive>(kFloppyFormats[2], nullptr));
  EXPECT_EQ(fdc.cmos_drive_types(), 0x43);
}

}  // namespace
}  // namespace vmm86
