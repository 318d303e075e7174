// Bus-master DMA through the PIIX BMIDE block (82371AB datasheet 2.7: BMICx command,
// BMISx status, BMIDTPx PRD table pointer) with the PRD table in a fake guest memory.
#include <gtest/gtest.h>

#include "tests/devices/storage/ide_test_util.h"

namespace vmm86::test {
namespace {

constexpr uint8_t DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
// BMIDE registers and bits (primary channel at +0, secondary at +8).
constexpr uint16_t kCommand = kBmide + 0, kStatus = kBmide + 2, kPrdPointer = kBmide + 4;
constexpr uint8_t kStart = 0x01, kToMemory = 0x08;
constexpr uint8_t kActive = 0x01, kError = 0x02, kInterrupt = 0x04;
constexpr uint32_t kTable = 0x1000;

class IdeDmaTest : public IdeFixture {
 protected:
  IdeDmaTest() : disk(attach_disk(0, 0, 4096)) {}

  uint8_t bm_status() { return in8(kStatus); }

  PatternDisk& disk;
};

TEST_F(IdeDmaTest, ReadDmaScattersIntoThePrdBuffers) {
  memory.put_prd(kTable, 0, 0x10000, 2048, false);
  memory.put_prd(kTable, 1, 0x20000, 2048, true);
  out32(kPrdPointer, kTable);
  out8(kCommand, kToMemory);  // direction first, as Linux's ata_bmdma_setup
  set_lba28(kPrimary, 0, 33, 8);
  out8(kPrimary + 7, 0xC8);  // READ DMA
  EXPECT_EQ(in8(kPrimaryControl), DRDY | DSC | DRQ);
  EXPECT_EQ(irqs.rising_edges[14], 0u);
  out8(kCommand, kToMemory | kStart);
  const std::vector<uint8_t> expected = pattern(33, 8);
  EXPECT_TRUE(std::equal(expected.begin(), expected.begin() + 2048, memory.bytes.begin() + 0x10000));
  EXPECT_TRUE(std::equal(expected.begin() + 2048, expected.end(), memory.bytes.begin() + 0x20000));
  // The PRD table was used up: active clear; the device's interrupt is latched in bit 2.
  EXPECT_EQ(bm_status(), kInterrupt);
  EXPECT_EQ(irqs.rising_edges[14], 1u);
  EXPECT_EQ(in8(kPrimary + 7), DRDY | DSC);
  out8(kCommand, kToMemory);  // stop
  out8(kStatus, kInterrupt);  // write one to clear
  EXPECT_EQ(bm_status(), 0);
}

TEST_F(IdeDmaTest, WriteDmaGathersFromMemoryWithTheEngineStartedFirst) {
  for (size_t i = 0; i < 1024; ++i) memory.bytes[0x30000 + i] = static_cast<uint8_t>(i * 3);
  memory.put_prd(kTable, 0, 0x30000, 1024, true);
  out32(kPrdPointer, kTable);
  out8(kCommand, kStart);  // to the device; started before the command
  EXPECT_EQ(bm_status() & kActive, kActive);
  set_lba28(kPrimary, 0, 500, 2);
  out8(kPrimary + 7, 0xCA);  // WRITE DMA
  for (size_t i = 0; i < 1024; ++i) ASSERT_EQ(disk.byte_at(500 * 512 + i), static_cast<uint8_t>(i * 3)) << i;
  EXPECT_EQ(bm_status(), kInterrupt);
  EXPECT_EQ(in8(kPrimary + 7), DRDY | DSC);
}

TEST_F(IdeDmaTest, ReadDmaExtAndAZeroCountPrdMeans64K) {
  memory.put_prd(kTable, 0, 0x40000, 0, true);  // 0 = 64 KiB
  out32(kPrdPointer, kTable);
  out8(kCommand, kToMemory);
  set_lba48(kPrimary, 0, 1000, 128);
  out8(kPrimary + 7, 0x25);  // READ DMA EXT
  out8(kCommand, kToMemory | kStart);
  const std::vector<uint8_t> expected = pattern(1000, 128);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), memory.bytes.begin() + 0x40000));
  EXPECT_EQ(bm_status(), kInterrupt);
}

TEST_F(IdeDmaTest, PrdTableLongerThanTheTransferLeavesActiveSet) {
  memory.put_prd(kTable, 0, 0x10000, 4096, true);
  out32(kPrdPointer, kTable);
  set_lba28(kPrimary, 0, 0, 1);
  out8(kPrimary + 7, 0xC8);
  out8(kCommand, kToMemory | kStart);
  // 2.7.2: active clears only when the EOT region is done; the interrupt still comes.
  EXPECT_EQ(bm_status(), kActive | kInterrupt);
  EXPECT_EQ(in8(kPrimary + 7), DRDY | DSC);
  out8(kCommand, 0);
  EXPECT_EQ(bm_status(), kInterrupt);
}

TEST_F(IdeDmaTest, PrdTableShorterThanTheTransferFailsTheCommand) {
  memory.put_prd(kTable, 0, 0x10000, 512, true);
  out32(kPrdPointer, kTable);
  set_lba28(kPrimary, 0, 0, 4);
  out8(kPrimary + 7, 0xC8);
  out8(kCommand, kToMemory | kStart);
  EXPECT_EQ(bm_status() & (kActive | kError), 0);
  EXPECT_EQ(in8(kPrimary + 7), DRDY | DSC | ERR);
  EXPECT_EQ(irqs.rising_edges[14], 1u);
}

TEST_F(IdeDmaTest, PrdTableOutsideMemorySetsTheErrorBit) {
  out32(kPrdPointer, 0xFFFF0000);  // far past the 1 MiB of RAM
  set_lba28(kPrimary, 0, 0, 1);
  out8(kPrimary + 7, 0xC8);
  out8(kCommand, kToMemory | kStart);
  EXPECT_EQ(bm_status(), kError | kInterrupt);
  EXPECT_EQ(in8(kPrimary + 7), DRDY | DSC | ERR);
  out8(kStatus, kError | kInterrupt);
  EXPECT_EQ(bm_status(), 0);
}

TEST_F(IdeDmaTest, PrdBufferOutsideMemorySetsTheErrorBit) {
  memory.put_prd(kTable, 0, 0x10000, 512, false);
  memory.put_prd(kTable, 1, 0x7FFFF000, 512, true);
  out32(kPrdPointer, kTable);
  set_lba28(kPrimary, 0, 0, 2);
  out8(kPrimary + 7, 0xC8);
  out8(kCommand, kToMemory | kStart);
  EXPECT_EQ(bm_status() & kError, kError);
  EXPECT_EQ(in8(kPrimary + 7) & ERR, ERR);
}

TEST_F(IdeDmaTest, PrdTableWithoutEndOfTableStopsAt64K) {
  // 8192 entries of 2 bytes and no EOT: the walk stops at the 64 KiB the table may span.
  for (unsigned i = 0; i < 8192; ++i) memory.put_prd(0x80000, i, 0x10000, 2, false);
  out32(kPrdPointer, 0x80000);
  set_lba28(kPrimary, 0, 0, 128);  // 64 KiB wanted, 16 KiB described
  out8(kPrimary + 7, 0xC8);
  out8(kCommand, kToMemory | kStart);
  EXPECT_EQ(in8(kPrimary + 7) & ERR, ERR);
  EXPECT_EQ(bm_status() & kActive, 0);
}

TEST_F(IdeDmaTest, RegistersReadBackAsWritten) {
  out32(kPrdPointer, 0x12345677);
  EXPECT_EQ(in32(kPrdPointer), 0x12345674u);  // dword aligned
  out8(kStatus, 0x60);                        // drive 0 and 1 DMA capable: software's bits
  EXPECT_EQ(bm_status(), 0x60);
  out8(kCommand, 0xFF);
  EXPECT_EQ(in8(kCommand), kStart | kToMemory);
  EXPECT_EQ(in8(kBmide + 8 + 2), 0);  // the secondary channel's status is separate
}

TEST_F(IdeDmaTest, AtapiRead10ByDma) {
  auto cd_owner = std::make_unique<AtapiCdrom>(std::make_unique<PatternDisk>(64 * 2048, true));
  controller.attach(1, 0, std::move(cd_owner));
  memory.put_prd(kTable, 0, 0x50000, 4096, true);
  out32(kBmide + 8 + 4, kTable);
  out8(kBmide + 8, kToMemory);
  // The power-on unit attention first (TEST UNIT READY by PIO).
  auto send_packet = [&](std::vector<uint8_t> cdb, bool dma) {
    cdb.resize(12);
    out8(kSecondary + 6, 0xA0);
    out8(kSecondary + 1, dma ? 1 : 0);
    out8(kSecondary + 4, 0xFE);
    out8(kSecondary + 5, 0xFF);
    out8(kSecondary + 7, 0xA0);
    write_data(kSecondary, cdb);
  };
  send_packet({0x00}, false);
  EXPECT_EQ(in8(kSecondary + 7) & ERR, ERR);
  send_packet({0x28, 0, 0, 0, 0, 5, 0, 0, 2}, true);
  EXPECT_EQ(in8(kSecondaryControl) & DRQ, DRQ);  // waiting for the engine
  out8(kBmide + 8, kToMemory | kStart);
  const std::vector<uint8_t> expected = pattern(5, 2, 2048);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), memory.bytes.begin() + 0x50000));
  EXPECT_EQ(in8(kBmide + 8 + 2), kInterrupt);
  EXPECT_EQ(in8(kSecondary + 7), DRDY);
  EXPECT_EQ(in8(kSecondary + 2) & 0x03, 0x03);  // status phase
}

}  // namespace
}  // namespace vmm86::test
