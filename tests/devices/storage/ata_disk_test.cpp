// The ATA disk through the primary channel's ports. Expected values: ATA/ATAPI-6 (T13/1410D)
// section and table numbers in the comments.
#include <gtest/gtest.h>

#include "tests/devices/storage/ide_test_util.h"

namespace vmm86::test {
namespace {

// Command block offsets and status bits as a driver names them.
enum : uint16_t { DATA = 0, ERROR = 1, FEATURES = 1, COUNT = 2, LBA_LOW = 3, LBA_MID = 4, LBA_HIGH = 5, DEVICE = 6 };
enum : uint16_t { STATUS = 7, COMMAND = 7 };
constexpr uint8_t BSY = 0x80, DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
constexpr uint8_t ABRT = 0x04, IDNF = 0x10;
constexpr uint8_t NIEN = 0x02, SRST = 0x04, HOB = 0x80;

constexpr uint64_t kDiskSectors = 16384;  // 8 MiB

class AtaDiskTest : public IdeFixture {
 protected:
  AtaDiskTest() : disk(attach_disk(0, 0, kDiskSectors)) {}

  uint8_t reg(uint16_t offset) { return in8(static_cast<uint16_t>(kPrimary + offset)); }
  void set(uint16_t offset, uint8_t value) { out8(static_cast<uint16_t>(kPrimary + offset), value); }
  uint8_t alt_status() { return in8(kPrimaryControl); }
  uint64_t edges() const { return irqs.rising_edges[14]; }

  std::array<uint16_t, 256> identify() {
    set(DEVICE, 0xA0);
    set(COMMAND, 0xEC);
    EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);
    std::array<uint16_t, 256> words{};
    for (auto& word : words) word = in16(kPrimary);
    return words;
  }

  PatternDisk& disk;
};

TEST_F(AtaDiskTest, PowerOnSignatureIsAtaAndStatusReady) {
  // 9.12 / table 21: sector count 01h, LBA low 01h, LBA mid 00h, LBA high 00h, device 00h.
  EXPECT_EQ(reg(COUNT), 0x01);
  EXPECT_EQ(reg(LBA_LOW), 0x01);
  EXPECT_EQ(reg(LBA_MID), 0x00);
  EXPECT_EQ(reg(LBA_HIGH), 0x00);
  EXPECT_EQ(reg(DEVICE), 0x00);
  EXPECT_EQ(reg(ERROR), 0x01);  // diagnostic code: device 0 passed, device 1 absent
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
}

TEST_F(AtaDiskTest, IdentifyDeviceWordsFollowTable27) {
  const auto id = identify();
  EXPECT_EQ(id[0] & 0x8000, 0);  // word 0 bit 15: ATA device
  // Words 1, 3, 6: default translation, 16 heads x 63 sectors; 16384 / 1008 = 16 cylinders.
  EXPECT_EQ(id[1], 16);
  EXPECT_EQ(id[3], 16);
  EXPECT_EQ(id[6], 63);
  // Words 4, 5 (retired): unformatted bytes per track and sector, as QEMU and old drives
  // give them; Bochs's rombios sizes its PIO transfers from word 5.
  EXPECT_EQ(id[4], 63 * 512);
  EXPECT_EQ(id[5], 512);
  // Words 10-19: serial, two characters per word, the first in bits 15:8, space padded.
  EXPECT_EQ(id[10], ('V' << 8) | 'M');
  EXPECT_EQ(id[11], ('M' << 8) | '8');
  EXPECT_EQ(id[14], ('0' << 8) | '0');  // "VMM86-0000" fills words 10-14
  EXPECT_EQ(id[15], (' ' << 8) | ' ');
  // Words 27-46: model "VMM86 HARDDISK".
  EXPECT_EQ(id[27], ('V' << 8) | 'M');
  EXPECT_EQ(id[29], ('6' << 8) | ' ');
  EXPECT_EQ(id[46], (' ' << 8) | ' ');
  EXPECT_EQ(id[47] & 0xFF00, 0x8000);  // word 47 bits 15:8 are 80h
  EXPECT_GE(id[47] & 0xFF, 1);         // READ/WRITE MULTIPLE supported
  EXPECT_NE(id[49] & (1 << 9), 0);     // word 49 bit 9: LBA supported
  EXPECT_NE(id[49] & (1 << 8), 0);     // bit 8: DMA supported
  EXPECT_EQ(id[50] & 0xC000, 0x4000);  // word 50: bit 14 one, bit 15 zero
  EXPECT_EQ(id[53] & 0x0006, 0x0006);  // words 64-70 and 88 valid
  // Words 54-58: current translation and its capacity (16 * 16 * 63 = 16128).
  EXPECT_EQ(id[54], 16);
  EXPECT_EQ(id[55], 16);
  EXPECT_EQ(id[56], 63);
  EXPECT_EQ(id[57] | id[58] << 16, 16128);
  EXPECT_EQ(id[59] & 0x0100, 0);                   // multiple sector setting not valid until SET MULTIPLE
  EXPECT_EQ(id[60] | id[61] << 16, kDiskSectors);  // words 60-61: LBA28 capacity
  EXPECT_EQ(id[63] & 0x0007, 0x0007);              // multiword DMA 0-2
  EXPECT_EQ(id[64] & 0x0003, 0x0003);              // PIO 3 and 4
  EXPECT_EQ(id[83] & 0xC000, 0x4000);              // word 83: bit 14 one, bit 15 zero
  EXPECT_NE(id[83] & (1 << 10), 0);                // 48-bit address feature set supported
  EXPECT_NE(id[86] & (1 << 10), 0);                // ... and enabled
  EXPECT_NE(id[83] & (1 << 12), 0);                // FLUSH CACHE
  EXPECT_NE(id[83] & (1 << 13), 0);                // FLUSH CACHE EXT
  EXPECT_EQ(id[84] & 0xC000, 0x4000);
  EXPECT_EQ(id[87] & 0xC000, 0x4000);
  EXPECT_NE(id[88] & 0x0001, 0);  // Ultra DMA mode 0 at least
  EXPECT_EQ(id[93] & 0xC000, 0x4000);
  const uint64_t lba48 = uint64_t{id[100]} | uint64_t{id[101]} << 16 | uint64_t{id[102]} << 32 |
                         uint64_t{id[103]} << 48;  // words 100-103
  EXPECT_EQ(lba48, kDiskSectors);
  // Word 255 (8.15.61): A5h in bits 7:0, and all 512 bytes sum to zero.
  EXPECT_EQ(id[255] & 0xFF, 0xA5);
  unsigned sum = 0;
  for (const uint16_t word : id) sum += (word & 0xFFu) + (word >> 8);
  EXPECT_EQ(sum & 0xFF, 0u);
  // After the 512 bytes: DRQ clear, no error, no further interrupt.
  EXPECT_EQ(alt_status(), DRDY | DSC);
}

TEST_F(AtaDiskTest, IdentifyCapacityOfLargeDiskSaturatesLba28Words) {
  auto& big = attach_disk(1, 0, (uint64_t{1} << 29) + 7);  // past 2^28 sectors
  (void)big;
  out8(kSecondary + 6, 0xA0);
  out8(kSecondary + 7, 0xEC);
  std::array<uint16_t, 256> id{};
  for (auto& word : id) word = in16(kSecondary);
  EXPECT_EQ(id[60] | id[61] << 16, 0x0FFFFFFF);  // 8.15.17: at most 268,435,455
  EXPECT_EQ(id[100] | id[101] << 16, (1u << 29) + 7);
  EXPECT_EQ(id[1], 16383);  // more than 16,514,064 sectors: 16383 cylinders
}

TEST_F(AtaDiskTest, ReadSectorsLba28InterruptsOncePerSector) {
  set_lba28(kPrimary, 0, 0x1234, 2);
  set(COMMAND, 0x20);
  EXPECT_EQ(edges(), 1u);
  EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);  // acknowledges the interrupt
  EXPECT_FALSE(irqs.levels[14]);
  EXPECT_EQ(read_data(kPrimary, 256), pattern(0x1234, 1));
  EXPECT_EQ(edges(), 2u);  // 9.7 PIO data-in: an interrupt per DRQ block
  EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);
  EXPECT_EQ(read_data(kPrimary, 256), pattern(0x1235, 1));
  EXPECT_EQ(alt_status(), DRDY | DSC);  // no interrupt after the last block
  EXPECT_EQ(edges(), 2u);
  // The registers hold the last sector transferred and no sectors left.
  EXPECT_EQ(reg(LBA_LOW), 0x35);
  EXPECT_EQ(reg(LBA_MID), 0x12);
  EXPECT_EQ(reg(COUNT), 0);
}

TEST_F(AtaDiskTest, WriteSectorsLba28AsksForTheFirstBlockWithoutInterrupt) {
  set_lba28(kPrimary, 0, 100, 2);
  set(COMMAND, 0x30);
  EXPECT_EQ(edges(), 0u);  // 9.8 PIO data-out: DRQ for the first block, no interrupt
  EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);
  std::vector<uint8_t> first(512, 0xA5);
  std::vector<uint8_t> second(512, 0x5A);
  write_data(kPrimary, first);
  EXPECT_EQ(edges(), 1u);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);
  write_data(kPrimary, second);
  EXPECT_EQ(edges(), 2u);  // and one at the end
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(disk.byte_at(100 * 512), 0xA5);
  EXPECT_EQ(disk.byte_at(101 * 512 + 511), 0x5A);
  EXPECT_EQ(disk.byte_at(102 * 512), pattern_byte(102 * 512));
  // Read it back through the ports.
  set_lba28(kPrimary, 0, 101, 1);
  set(COMMAND, 0x20);
  EXPECT_EQ(read_data(kPrimary, 256), second);
}

TEST_F(AtaDiskTest, ReadSectorsExtUsesTheHighOrderBytes) {
  auto& big = attach_disk(1, 0, uint64_t{1} << 33);  // 4 TiB of pattern
  const uint64_t lba = 0x1'2345'6789;
  set_lba48(kSecondary, 0, lba, 1);
  out8(kSecondary + 7, 0x24);
  EXPECT_EQ(read_data(kSecondary, 256), pattern(lba, 1));
  // With HOB set, the registers read back the previous (high-order) values (6.20, 7.9.4).
  EXPECT_EQ(in8(kSecondary + 3), 0x89);
  out8(kSecondaryControl, HOB);
  EXPECT_EQ(in8(kSecondary + 3), 0x23);
  EXPECT_EQ(in8(kSecondary + 4), 0x01);
  EXPECT_EQ(in8(kSecondary + 5), 0x00);
  out8(kSecondaryControl, 0);
  // WRITE SECTORS EXT at the same address.
  set_lba48(kSecondary, 0, lba, 1);
  out8(kSecondary + 7, 0x34);
  write_data(kSecondary, std::vector<uint8_t>(512, 0x77));
  EXPECT_EQ(big.byte_at(lba * 512 + 3), 0x77);
  EXPECT_EQ(in8(kSecondary + 7), DRDY | DSC);
}

TEST_F(AtaDiskTest, LbaCountZeroMeans256And65536) {
  set_lba28(kPrimary, 0, 0, 0);  // 256 sectors
  set(COMMAND, 0x40);            // READ VERIFY: no data
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(reg(LBA_LOW), 0xFF);  // last sector verified: 255
  set_lba48(kPrimary, 0, 0, 0);   // 65536 sectors > 16384
  set(COMMAND, 0x42);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | ERR);
  EXPECT_EQ(reg(ERROR), IDNF);
}

TEST_F(AtaDiskTest, ChsAddressingUsesTheDefaultTranslation) {
  // Cylinder 1, head 2, sector 3 with 16 heads and 63 sectors: (1*16 + 2)*63 + 3 - 1 = 1136.
  set(DEVICE, 0xA2);  // CHS, device 0, head 2
  set(COUNT, 2);
  set(LBA_LOW, 3);
  set(LBA_MID, 1);
  set(LBA_HIGH, 0);
  set(COMMAND, 0x20);
  EXPECT_EQ(read_data(kPrimary, 256), pattern(1136, 1));
  EXPECT_EQ(read_data(kPrimary, 256), pattern(1137, 1));
  EXPECT_EQ(reg(LBA_LOW), 4);  // the last sector transferred, as CHS
  EXPECT_EQ(reg(DEVICE) & 0x0F, 2);
}

TEST_F(AtaDiskTest, InitializeDeviceParametersChangesTheTranslation) {
  set(DEVICE, 0xA3);  // 4 heads (heads - 1 in bits 3:0)
  set(COUNT, 17);     // 17 sectors per track
  set(COMMAND, 0x91);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  // Cylinder 2, head 1, sector 5: (2*4 + 1)*17 + 4 = 157.
  set(DEVICE, 0xA1);
  set(COUNT, 1);
  set(LBA_LOW, 5);
  set(LBA_MID, 2);
  set(LBA_HIGH, 0);
  set(COMMAND, 0x20);
  EXPECT_EQ(read_data(kPrimary, 256), pattern(157, 1));
  // Head 4 does not exist now: ID not found.
  set(DEVICE, 0xA4);
  set(COMMAND, 0x20);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | ERR);
  EXPECT_EQ(reg(ERROR), IDNF);
  const auto id = identify();
  EXPECT_EQ(id[55], 4);  // words 54-58 follow the current translation
  EXPECT_EQ(id[56], 17);
  EXPECT_EQ(id[54], kDiskSectors / (4 * 17));
}

TEST_F(AtaDiskTest, ReadMultipleNeedsSetMultipleModeAndMovesBlocks) {
  set_lba28(kPrimary, 0, 0, 10);
  set(COMMAND, 0xC4);  // multiple mode disabled: aborted (8.24)
  EXPECT_EQ(reg(STATUS), DRDY | DSC | ERR);
  EXPECT_EQ(reg(ERROR), ABRT);
  set(COUNT, 3);  // not a power of two
  set(COMMAND, 0xC6);
  EXPECT_EQ(reg(ERROR), ABRT);
  set(COUNT, 4);
  set(COMMAND, 0xC6);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(identify()[59], 0x0104);  // word 59: bit 8 valid, 4 sectors
  const uint64_t before = edges();
  set_lba28(kPrimary, 0, 40, 10);
  set(COMMAND, 0xC4);
  // Blocks of 4, 4 and 2 sectors, an interrupt each (acknowledged by the status read, as
  // an interrupt handler does).
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);
  EXPECT_EQ(read_data(kPrimary, 4 * 256), pattern(40, 4));
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);
  EXPECT_EQ(read_data(kPrimary, 4 * 256), pattern(44, 4));
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);
  EXPECT_EQ(read_data(kPrimary, 2 * 256), pattern(48, 2));
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(edges() - before, 3u);
  // WRITE MULTIPLE EXT: blocks of 4 and 1.
  set_lba48(kPrimary, 0, 200, 5);
  set(COMMAND, 0x39);
  write_data(kPrimary, std::vector<uint8_t>(4 * 512, 0x11));
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);
  write_data(kPrimary, std::vector<uint8_t>(512, 0x22));
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(disk.byte_at(203 * 512), 0x11);
  EXPECT_EQ(disk.byte_at(204 * 512), 0x22);
}

TEST_F(AtaDiskTest, DataPortTakes32BitAccesses) {
  set_lba28(kPrimary, 0, 7, 1);
  set(COMMAND, 0x20);
  const std::vector<uint8_t> expected = pattern(7, 1);
  for (size_t i = 0; i < 512; i += 4) {
    const uint32_t dword = in32(kPrimary);
    ASSERT_EQ(dword,
              static_cast<uint32_t>(expected[i] | expected[i + 1] << 8 | expected[i + 2] << 16 | expected[i + 3] << 24))
        << i;
  }
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  set_lba28(kPrimary, 0, 8, 1);
  set(COMMAND, 0x30);
  for (int i = 0; i < 128; ++i) out32(kPrimary, 0xDEADBEEF);
  EXPECT_EQ(disk.byte_at(8 * 512 + 4), 0xEF);
  EXPECT_EQ(disk.byte_at(8 * 512 + 7), 0xDE);
}

TEST_F(AtaDiskTest, OutOfRangeAndUnknownCommandsAbort) {
  set_lba28(kPrimary, 0, kDiskSectors - 1, 2);
  set(COMMAND, 0x20);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | ERR);
  EXPECT_EQ(reg(ERROR), IDNF);
  const uint64_t before = edges();
  set(COMMAND, 0xFF);  // no such command
  EXPECT_EQ(edges(), before + 1);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | ERR);
  EXPECT_EQ(reg(ERROR), ABRT);
  set(COMMAND, 0x00);  // NOP always aborts (8.21)
  EXPECT_EQ(reg(ERROR), ABRT);
  set(COMMAND, 0xA1);  // IDENTIFY PACKET DEVICE: an ATA device aborts it
  EXPECT_EQ(reg(ERROR), ABRT);
}

TEST_F(AtaDiskTest, WritesToAReadOnlyImageAbort) {
  auto& readonly = attach_disk(1, 1, 64, true);
  out8(kSecondary + 6, 0xF0);  // LBA, device 1
  out8(kSecondary + 2, 1);
  out8(kSecondary + 3, 5);
  out8(kSecondary + 7, 0x30);
  write_data(kSecondary, std::vector<uint8_t>(512, 1));
  EXPECT_EQ(in8(kSecondary + 7), DRDY | DSC | ERR);
  EXPECT_EQ(in8(kSecondary + 1), ABRT);
  EXPECT_TRUE(readonly.written.empty());
}

TEST_F(AtaDiskTest, FlushCacheReachesTheBackend) {
  set(COMMAND, 0xE7);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  set(COMMAND, 0xEA);
  EXPECT_EQ(disk.flushes, 2);
  // With the write cache disabled (SET FEATURES 82h), every write command is flushed.
  set(FEATURES, 0x82);
  set(COMMAND, 0xEF);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(identify()[85] & (1 << 5), 0);  // word 85 bit 5: write cache disabled
  const int flushes = disk.flushes;
  set_lba28(kPrimary, 0, 1, 1);
  set(COMMAND, 0x30);
  write_data(kPrimary, std::vector<uint8_t>(512, 3));
  EXPECT_EQ(disk.flushes, flushes + 1);
}

TEST_F(AtaDiskTest, SetFeaturesTransferModeShowsInIdentify) {
  set(FEATURES, 0x03);
  set(COUNT, 0x42);  // Ultra DMA mode 2 (table 44: 01000xxx)
  set(COMMAND, 0xEF);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  auto id = identify();
  EXPECT_EQ(id[88] & 0xFF00, 0x0400);  // word 88 bit 10: mode 2 selected
  EXPECT_EQ(id[63] & 0xFF00, 0);
  set(FEATURES, 0x03);
  set(COUNT, 0x22);  // multiword DMA mode 2
  set(COMMAND, 0xEF);
  id = identify();
  EXPECT_EQ(id[63] & 0xFF00, 0x0400);
  EXPECT_EQ(id[88] & 0xFF00, 0);
  set(FEATURES, 0x03);
  set(COUNT, 0x47);  // Ultra DMA mode 7 is not supported
  set(COMMAND, 0xEF);
  EXPECT_EQ(reg(ERROR), ABRT);
  set(FEATURES, 0x99);  // no such subcommand
  set(COMMAND, 0xEF);
  EXPECT_EQ(reg(ERROR), ABRT);
}

TEST_F(AtaDiskTest, PowerCommandsAndCheckPowerMode) {
  set(COMMAND, 0xE0);  // STANDBY IMMEDIATE
  set(COMMAND, 0xE5);  // CHECK POWER MODE: 00h standby (8.6)
  EXPECT_EQ(reg(COUNT), 0x00);
  set(COMMAND, 0xE1);  // IDLE IMMEDIATE
  set(COMMAND, 0xE5);
  EXPECT_EQ(reg(COUNT), 0xFF);  // FFh active or idle
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
}

TEST_F(AtaDiskTest, SoftwareResetShowsBusyThenTheSignature) {
  auto& slave = attach_disk(0, 1, 64);
  (void)slave;
  set_lba28(kPrimary, 1, 77, 5);  // select device 1, scribble the registers
  out8(kPrimaryControl, SRST);
  EXPECT_EQ(alt_status() & BSY, BSY);
  out8(kPrimaryControl, 0);
  // 9.2 software reset: device 0 selected, both show the signature and "passed".
  EXPECT_EQ(reg(DEVICE), 0x00);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(reg(COUNT), 0x01);
  EXPECT_EQ(reg(LBA_LOW), 0x01);
  EXPECT_EQ(reg(ERROR), 0x01);
  set(DEVICE, 0xB0);
  EXPECT_EQ(reg(COUNT), 0x01);
  EXPECT_EQ(reg(LBA_MID), 0x00);
  EXPECT_EQ(reg(ERROR), 0x01);
}

TEST_F(AtaDiskTest, SoftwareResetAbandonsATransfer) {
  set_lba28(kPrimary, 0, 0, 4);
  set(COMMAND, 0x20);
  out8(kPrimaryControl, SRST);
  out8(kPrimaryControl, 0);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
  EXPECT_EQ(in16(kPrimary), 0xFFFF);  // no data phase any more
}

TEST_F(AtaDiskTest, AbsentSlaveReadsZero) {
  set(DEVICE, 0xB0);
  EXPECT_EQ(reg(STATUS), 0x00);
  EXPECT_EQ(alt_status(), 0x00);
  set(COMMAND, 0xEC);  // nobody executes it
  EXPECT_EQ(edges(), 0u);
  set(DEVICE, 0xA0);
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
}

TEST_F(AtaDiskTest, ExecuteDeviceDiagnosticReportsPassAndSignature) {
  set_lba28(kPrimary, 0, 0x55, 9);
  set(COMMAND, 0x90);
  EXPECT_EQ(edges(), 1u);
  EXPECT_EQ(reg(ERROR), 0x01);  // table 23: device 0 passed, device 1 absent
  EXPECT_EQ(reg(COUNT), 0x01);
  EXPECT_EQ(reg(LBA_LOW), 0x01);
  EXPECT_EQ(reg(LBA_MID), 0x00);
  EXPECT_EQ(reg(LBA_HIGH), 0x00);
}

TEST_F(AtaDiskTest, NienMasksTheInterruptLine) {
  out8(kPrimaryControl, NIEN);
  set_lba28(kPrimary, 0, 0, 1);
  set(COMMAND, 0x20);
  EXPECT_EQ(edges(), 0u);  // 7.9: INTRQ released while NIEN is one
  EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);
  out8(kPrimaryControl, 0);  // the pending interrupt now shows
  EXPECT_EQ(edges(), 1u);
  EXPECT_TRUE(irqs.levels[14]);
  EXPECT_EQ(alt_status(), DRDY | DSC | DRQ);  // the alternate status does not acknowledge
  EXPECT_TRUE(irqs.levels[14]);
  EXPECT_EQ(reg(STATUS), DRDY | DSC | DRQ);  // the status register does
  EXPECT_FALSE(irqs.levels[14]);
}

TEST_F(AtaDiskTest, InterruptLineFollowsTheSelectedDevice) {
  attach_disk(0, 1, 64);
  set(DEVICE, 0xA0);
  set(COMMAND, 0xE5);  // device 0 interrupts
  EXPECT_TRUE(irqs.levels[14]);
  set(DEVICE, 0xB0);  // device 1 selected: device 0 no longer drives INTRQ
  EXPECT_FALSE(irqs.levels[14]);
  set(DEVICE, 0xA0);
  EXPECT_TRUE(irqs.levels[14]);
  (void)reg(STATUS);
  EXPECT_FALSE(irqs.levels[14]);
}

TEST_F(AtaDiskTest, NewCommandDuringATransferReplacesIt) {
  set_lba28(kPrimary, 0, 0, 4);
  set(COMMAND, 0x20);
  (void)read_data(kPrimary, 10);
  set_lba28(kPrimary, 0, 9, 1);
  set(COMMAND, 0x20);
  EXPECT_EQ(read_data(kPrimary, 256), pattern(9, 1));
  EXPECT_EQ(reg(STATUS), DRDY | DSC);
}

TEST_F(AtaDiskTest, ControllerResetRestoresPowerOnSettings) {
  set(COUNT, 8);
  set(COMMAND, 0xC6);
  EXPECT_EQ(identify()[59], 0x0108);
  controller.reset();
  EXPECT_EQ(identify()[59] & 0x0100, 0);
}

}  // namespace
}  // namespace vmm86::test
