// The ATAPI CD-ROM as secondary master, driven through the ports with the PACKET protocol
// (ATA/ATAPI-6 9.10). Expected values: SPC-3, MMC-5 and ATA/ATAPI-6 as cited.
#include <gtest/gtest.h>

#include "tests/devices/storage/ide_test_util.h"

namespace vmm86::test {
namespace {

constexpr uint8_t DRDY = 0x40, DRQ = 0x08, CHK = 0x01, BSY = 0x80;
// Interrupt reason (sector count register): CoD bit 0, IO bit 1.
constexpr uint8_t kReasonCommand = 0x01, kReasonDataIn = 0x02, kReasonStatus = 0x03;
constexpr uint64_t kDiscSectors = 300;  // 2048-byte sectors

struct PacketResult {
  std::vector<uint8_t> data;
  std::vector<size_t> blocks;  // byte count of each DRQ block
  uint8_t status = 0;
  uint8_t error = 0;
  uint8_t reason = 0;
  uint64_t interrupts = 0;
};

class AtapiTest : public IdeFixture {
 protected:
  AtapiTest() { insert(kDiscSectors); }

  void insert(uint64_t sectors) {
    auto medium = sectors == 0 ? nullptr : std::make_unique<PatternDisk>(sectors * 2048, true);
    auto drive = std::make_unique<AtapiCdrom>(std::move(medium));
    cd = drive.get();
    controller.attach(1, 0, std::move(drive));
  }

  uint8_t reg(uint16_t offset) { return in8(static_cast<uint16_t>(kSecondary + offset)); }
  void set(uint16_t offset, uint8_t value) { out8(static_cast<uint16_t>(kSecondary + offset), value); }

  /// Sends `cdb` with PACKET and reads every DRQ block, as a PIO driver does.
  PacketResult packet(std::vector<uint8_t> cdb, uint16_t byte_limit = 0xFFFE) {
    cdb.resize(12, 0);
    PacketResult result;
    const uint64_t edges_before = irqs.rising_edges[15];
    set(6, 0xA0);
    set(1, 0);  // PIO
    set(4, static_cast<uint8_t>(byte_limit));
    set(5, static_cast<uint8_t>(byte_limit >> 8));
    set(7, 0xA0);
    EXPECT_EQ(in8(kSecondaryControl), DRDY | DRQ);  // ready for the packet
    EXPECT_EQ(reg(2) & 0x03, kReasonCommand);
    EXPECT_EQ(irqs.rising_edges[15], edges_before);  // no interrupt for the packet (word 0 bits 6:5)
    write_data(kSecondary, cdb);
    for (int guard = 0; guard < 100000; ++guard) {
      const uint8_t status = reg(7);
      if ((status & BSY) != 0) continue;
      if ((status & DRQ) == 0) {
        result.status = status;
        break;
      }
      EXPECT_EQ(reg(2) & 0x03, kReasonDataIn);
      const size_t count = static_cast<size_t>(reg(4) | reg(5) << 8);
      result.blocks.push_back(count);
      const std::vector<uint8_t> block = read_data(kSecondary, (count + 1) / 2);
      result.data.insert(result.data.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(count));
    }
    result.error = reg(1);
    result.reason = reg(2) & 0x03;
    result.interrupts = irqs.rising_edges[15] - edges_before;
    return result;
  }

  /// Clears the power-on unit attention as a driver does (TEST UNIT READY, REQUEST SENSE).
  void clear_unit_attention() {
    (void)packet({0x00});
    (void)packet({0x03, 0, 0, 0, 18});
  }

  AtapiCdrom* cd = nullptr;
};

TEST_F(AtapiTest, SignatureIdentifiesAPacketDevice) {
  // ATA-6 9.12: 01h/01h/14h/EBh; a PACKET device shows status 00h after reset.
  EXPECT_EQ(reg(2), 0x01);
  EXPECT_EQ(reg(3), 0x01);
  EXPECT_EQ(reg(4), 0x14);
  EXPECT_EQ(reg(5), 0xEB);
  EXPECT_EQ(reg(7), 0x00);
  // IDENTIFY DEVICE is aborted and leaves the signature (8.15).
  set(7, 0xEC);
  EXPECT_EQ(reg(7) & CHK, CHK);
  EXPECT_EQ(reg(1) & 0x04, 0x04);
  EXPECT_EQ(reg(4), 0x14);
  EXPECT_EQ(reg(5), 0xEB);
  // So does a software reset.
  out8(kSecondaryControl, 0x04);
  out8(kSecondaryControl, 0x00);
  EXPECT_EQ(reg(4), 0x14);
  EXPECT_EQ(reg(5), 0xEB);
}

TEST_F(AtapiTest, IdentifyPacketDeviceWords) {
  set(7, 0xA1);
  EXPECT_EQ(reg(7), DRDY | DRQ);
  std::array<uint16_t, 256> id{};
  for (auto& word : id) word = in16(kSecondary);
  // Word 0 (table 30): 10b ATAPI, 05h CD-ROM, removable, 12-byte packets.
  EXPECT_EQ(id[0] >> 14, 2);
  EXPECT_EQ((id[0] >> 8) & 0x1F, 0x05);
  EXPECT_NE(id[0] & 0x0080, 0);
  EXPECT_EQ(id[0] & 0x0003, 0);
  EXPECT_NE(id[49] & (1 << 9), 0);  // LBA
  EXPECT_NE(id[49] & (1 << 8), 0);  // DMA
  EXPECT_NE(id[82] & (1 << 4), 0);  // PACKET feature set
  EXPECT_EQ(id[27], ('V' << 8) | 'M');
  EXPECT_EQ(id[255] & 0xFF, 0xA5);
  unsigned sum = 0;
  for (const uint16_t word : id) sum += (word & 0xFFu) + (word >> 8);
  EXPECT_EQ(sum & 0xFF, 0u);
  EXPECT_EQ(reg(7), DRDY);
}

TEST_F(AtapiTest, PowerOnUnitAttentionIsReportedOnceThenCleared) {
  // SPC-3 5.8.7: INQUIRY does not report it...
  PacketResult inquiry = packet({0x12, 0, 0, 0, 36});
  EXPECT_EQ(inquiry.status & CHK, 0);
  // ...TEST UNIT READY does: CHECK CONDITION, sense key 6 in the error register bits 7:4.
  PacketResult tur = packet({0x00});
  EXPECT_EQ(tur.status, DRDY | CHK);
  EXPECT_EQ(tur.error >> 4, 0x6);
  EXPECT_EQ(tur.reason, kReasonStatus);
  EXPECT_EQ(tur.interrupts, 1u);
  PacketResult sense = packet({0x03, 0, 0, 0, 18});
  ASSERT_EQ(sense.data.size(), 18u);
  EXPECT_EQ(sense.data[0], 0x70);
  EXPECT_EQ(sense.data[2] & 0x0F, 0x6);  // UNIT ATTENTION
  EXPECT_EQ(sense.data[12], 0x29);       // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
  tur = packet({0x00});
  EXPECT_EQ(tur.status, DRDY);
  EXPECT_EQ(tur.reason, kReasonStatus);
}

TEST_F(AtapiTest, InquiryStandardData) {
  const PacketResult r = packet({0x12, 0, 0, 0, 96});
  ASSERT_EQ(r.data.size(), 36u);      // additional length + 5
  EXPECT_EQ(r.data[0], 0x05);         // peripheral device type: CD/DVD
  EXPECT_EQ(r.data[1] & 0x80, 0x80);  // RMB
  EXPECT_EQ(r.data[4], 31);
  EXPECT_EQ(std::string(r.data.begin() + 8, r.data.begin() + 16), "VMM86   ");
  // The allocation length cuts the reply.
  EXPECT_EQ(packet({0x12, 0, 0, 0, 5}).data.size(), 5u);
}

TEST_F(AtapiTest, ReadCapacityAndRead10) {
  clear_unit_attention();
  const PacketResult capacity = packet({0x25});
  ASSERT_EQ(capacity.data.size(), 8u);
  const std::vector<uint8_t> expected_capacity = {0, 0, 0x01, 0x2B, 0, 0, 0x08, 0x00};  // last LBA 299, 2048
  EXPECT_EQ(capacity.data, expected_capacity);
  const PacketResult r = packet({0x28, 0, 0, 0, 0, 2, 0, 0, 3});  // READ(10) LBA 2, 3 sectors
  EXPECT_EQ(r.status, DRDY);
  EXPECT_EQ(r.data, pattern(2, 3, 2048));
  ASSERT_EQ(r.blocks.size(), 1u);
  EXPECT_EQ(r.blocks[0], 6144u);
  EXPECT_EQ(r.interrupts, 2u);                                            // the data block and the status
  const PacketResult r12 = packet({0xA8, 0, 0, 0, 1, 0x2B, 0, 0, 0, 1});  // READ(12) LBA 299, 1 sector
  EXPECT_EQ(r12.data, pattern(299, 1, 2048));
}

TEST_F(AtapiTest, ByteCountLimitSplitsTheTransfer) {
  clear_unit_attention();
  PacketResult r = packet({0x28, 0, 0, 0, 0, 10, 0, 0, 3}, 2048);
  EXPECT_EQ(r.blocks, (std::vector<size_t>{2048, 2048, 2048}));
  EXPECT_EQ(r.data, pattern(10, 3, 2048));
  EXPECT_EQ(r.interrupts, 4u);  // one per DRQ block and one for the status
  r = packet({0x28, 0, 0, 0, 0, 10, 0, 0, 3}, 5000);
  EXPECT_EQ(r.blocks, (std::vector<size_t>{5000, 1144}));
  EXPECT_EQ(r.data, pattern(10, 3, 2048));
  // An odd limit with more data to follow is used as the even number below it (ATA-6 9.10).
  r = packet({0x28, 0, 0, 0, 0, 10, 0, 0, 1}, 1001);
  EXPECT_EQ(r.blocks, (std::vector<size_t>{1000, 1000, 48}));
  EXPECT_EQ(r.data, pattern(10, 1, 2048));
  // A limit of 1 still moves a word per block.
  r = packet({0x12, 0, 0, 0, 6}, 1);
  EXPECT_EQ(r.blocks, (std::vector<size_t>{2, 2, 2}));
  EXPECT_EQ(r.status, DRDY);
}

TEST_F(AtapiTest, OddLengthReplyPadsTheLastWord) {
  const PacketResult r = packet({0x12, 0, 0, 0, 35});
  EXPECT_EQ(r.blocks, (std::vector<size_t>{35}));
  EXPECT_EQ(r.status, DRDY);
}

TEST_F(AtapiTest, RequestSenseAfterAnErrorThenClearedBySuccess) {
  clear_unit_attention();
  const PacketResult bad = packet({0x28, 0, 0, 0, 1, 0x2B, 0, 0, 2});  // LBA 299 + 2 sectors: past the end
  EXPECT_EQ(bad.status, DRDY | CHK);
  EXPECT_EQ(bad.error >> 4, 0x5);     // ILLEGAL REQUEST
  EXPECT_EQ(bad.error & 0x04, 0x04);  // ABRT
  EXPECT_TRUE(bad.data.empty());
  PacketResult sense = packet({0x03, 0, 0, 0, 18});
  EXPECT_EQ(sense.data[2], 0x05);
  EXPECT_EQ(sense.data[7], 10);     // additional sense length
  EXPECT_EQ(sense.data[12], 0x21);  // LOGICAL BLOCK ADDRESS OUT OF RANGE
  EXPECT_EQ(sense.data[13], 0x00);
  const PacketResult unknown = packet({0xFF});
  EXPECT_EQ(unknown.error >> 4, 0x5);
  sense = packet({0x03, 0, 0, 0, 18});
  EXPECT_EQ(sense.data[12], 0x20);  // INVALID COMMAND OPERATION CODE
  // The REQUEST SENSE above succeeded: the sense is gone.
  sense = packet({0x03, 0, 0, 0, 18});
  EXPECT_EQ(sense.data[2], 0x00);
  EXPECT_EQ(sense.data[12], 0x00);
}

TEST_F(AtapiTest, EmptyDriveIsNotReadyMediumNotPresent) {
  insert(0);
  clear_unit_attention();
  const PacketResult tur = packet({0x00});
  EXPECT_EQ(tur.status, DRDY | CHK);
  EXPECT_EQ(tur.error >> 4, 0x2);  // NOT READY
  const PacketResult sense = packet({0x03, 0, 0, 0, 18});
  EXPECT_EQ(sense.data[2], 0x02);
  EXPECT_EQ(sense.data[12], 0x3A);  // MEDIUM NOT PRESENT
  EXPECT_EQ(packet({0x25}).error >> 4, 0x2);
  EXPECT_EQ(packet({0x43, 0, 0, 0, 0, 0, 0, 0, 12}).error >> 4, 0x2);
  // GET CONFIGURATION still works: no current profile.
  const PacketResult config = packet({0x46, 0, 0, 0, 0, 0, 0, 0, 8});
  ASSERT_EQ(config.data.size(), 8u);
  EXPECT_EQ(config.data[6] << 8 | config.data[7], 0);
}

TEST_F(AtapiTest, InsertedMediumRaisesUnitAttentionAndAMediaEvent) {
  clear_unit_attention();
  cd->insert_medium(std::make_unique<PatternDisk>(100 * 2048, true));
  // GET EVENT STATUS NOTIFICATION (polled, media class): a new-media event, once.
  PacketResult event = packet({0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8});
  ASSERT_EQ(event.data.size(), 8u);
  EXPECT_EQ(event.data[2] & 0x07, 4);  // media class
  EXPECT_EQ(event.data[4] & 0x0F, 2);  // NewMedia
  EXPECT_EQ(event.data[5] & 0x02, 2);  // media present
  event = packet({0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8});
  EXPECT_EQ(event.data[4] & 0x0F, 0);
  EXPECT_EQ(packet({0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8}).error >> 4, 0x5);  // asynchronous: refused
  const PacketResult tur = packet({0x00});
  EXPECT_EQ(tur.error >> 4, 0x6);
  EXPECT_EQ(packet({0x03, 0, 0, 0, 18}).data[12], 0x28);  // NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
  const PacketResult capacity = packet({0x25});
  EXPECT_EQ(capacity.data[3], 99);
}

TEST_F(AtapiTest, ModeSenseCapabilitiesPage) {
  clear_unit_attention();
  const PacketResult r = packet({0x5A, 0, 0x2A, 0, 0, 0, 0, 0x01, 0x00});
  ASSERT_GE(r.data.size(), 8u + 22u);
  EXPECT_EQ((r.data[0] << 8 | r.data[1]) + 2, static_cast<int>(r.data.size()));  // mode data length
  EXPECT_EQ(r.data[6] << 8 | r.data[7], 0);                                      // no block descriptors
  EXPECT_EQ(r.data[8] & 0x3F, 0x2A);
  EXPECT_EQ(r.data[9], 0x14);
  EXPECT_EQ(r.data[8 + 6] >> 5, 1);    // tray loading mechanism
  EXPECT_NE(r.data[8 + 6] & 0x08, 0);  // eject supported
  // Saved values are not supported (SPC-3: SAVING PARAMETERS NOT SUPPORTED).
  const PacketResult saved = packet({0x5A, 0, 0xEA, 0, 0, 0, 0, 0x01, 0x00});
  EXPECT_EQ(saved.error >> 4, 0x5);
  EXPECT_EQ(packet({0x03, 0, 0, 0, 18}).data[12], 0x39);
}

TEST_F(AtapiTest, ReadTocFormats) {
  clear_unit_attention();
  PacketResult toc = packet({0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x24});             // format 0, LBA
  const std::vector<uint8_t> expected = {0, 18,   1,    1,                     // length, first and last track
                                         0, 0x14, 1,    0, 0, 0, 0,    0,      // track 1: data, LBA 0
                                         0, 0x14, 0xAA, 0, 0, 0, 0x01, 0x2C};  // lead-out at 300
  EXPECT_EQ(toc.data, expected);
  toc = packet({0x43, 0x02, 0, 0, 0, 0, 0xAA, 0x03, 0x24});  // MSF, lead-out only
  // 300 + 150 frames = 00:06:00.
  const std::vector<uint8_t> msf = {0, 10, 1, 1, 0, 0x14, 0xAA, 0, 0, 0, 6, 0};
  EXPECT_EQ(toc.data, msf);
  toc = packet({0x43, 0, 0x01, 0, 0, 0, 0, 0, 12});  // format 1: multisession information
  const std::vector<uint8_t> session = {0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(toc.data, session);
  EXPECT_EQ(packet({0x43, 0, 0, 0, 0, 0, 2, 0, 12}).error >> 4, 0x5);  // no track 2
}

TEST_F(AtapiTest, GetConfigurationReportsTheCdRomProfile) {
  clear_unit_attention();
  const PacketResult r = packet({0x46, 0x00, 0, 0, 0, 0, 0, 0x04, 0x00});
  ASSERT_GE(r.data.size(), 8u);
  EXPECT_EQ(r.data[6] << 8 | r.data[7], 0x0008);  // current profile: CD-ROM (MMC-5 table 81)
  const uint32_t length = static_cast<uint32_t>(r.data[0] << 24 | r.data[1] << 16 | r.data[2] << 8 | r.data[3]);
  EXPECT_EQ(length + 4, r.data.size());
  EXPECT_EQ(r.data[8] << 8 | r.data[9], 0x0000);  // the profile list comes first
  // RT = 2: only the feature named (Core, 0001h).
  const PacketResult core = packet({0x46, 0x02, 0x00, 0x01, 0, 0, 0, 0x01, 0x00});
  ASSERT_GE(core.data.size(), 12u);
  EXPECT_EQ(core.data[8] << 8 | core.data[9], 0x0001);
  EXPECT_EQ(core.data.size(), 8u + 4u + core.data[11]);
}

TEST_F(AtapiTest, EjectIsRefusedWhileRemovalIsPrevented) {
  clear_unit_attention();
  EXPECT_EQ(packet({0x1E, 0, 0, 0, 0x01}).status, DRDY);  // PREVENT
  const PacketResult eject = packet({0x1B, 0, 0, 0, 0x02});
  EXPECT_EQ(eject.error >> 4, 0x5);
  const PacketResult sense = packet({0x03, 0, 0, 0, 18});
  EXPECT_EQ(sense.data[12], 0x53);  // MEDIUM REMOVAL PREVENTED
  EXPECT_EQ(sense.data[13], 0x02);
  EXPECT_EQ(packet({0x1E, 0, 0, 0, 0x00}).status, DRDY);  // ALLOW
  EXPECT_EQ(packet({0x1B, 0, 0, 0, 0x02}).status, DRDY);
  EXPECT_TRUE(cd->tray_open());
  EXPECT_EQ(packet({0x00}).error >> 4, 0x2);
  EXPECT_EQ(packet({0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8}).data[1] & 0x10, 0x10);  // MECHANISM STATUS: door open
  EXPECT_EQ(packet({0x1B, 0, 0, 0, 0x03}).status, DRDY);                      // load
  EXPECT_EQ(packet({0x00}).error >> 4, 0x6);                                  // medium may have changed
}

TEST_F(AtapiTest, ReadDiscInformation) {
  clear_unit_attention();
  const PacketResult r = packet({0x51, 0, 0, 0, 0, 0, 0, 0, 34});
  ASSERT_EQ(r.data.size(), 34u);
  EXPECT_EQ(r.data[0] << 8 | r.data[1], 32);
  EXPECT_EQ(r.data[2] & 0x03, 0x02);  // disc status: complete
  EXPECT_EQ(r.data[3], 1);            // first track
  EXPECT_EQ(r.data[4], 1);            // one session
}

TEST_F(AtapiTest, DeviceResetRestoresTheSignatureWithoutInterrupt) {
  clear_unit_attention();
  const uint64_t edges = irqs.rising_edges[15];
  set(7, 0x08);
  EXPECT_EQ(irqs.rising_edges[15], edges);
  EXPECT_EQ(reg(4), 0x14);
  EXPECT_EQ(reg(5), 0xEB);
  EXPECT_EQ(reg(7), 0x00);
}

TEST_F(AtapiTest, DiskAndCdShareAChannel) {
  attach_disk(1, 1, 64);
  set(6, 0xB0);  // the disk, device 1
  EXPECT_EQ(reg(4), 0x00);
  EXPECT_EQ(reg(5), 0x00);
  set(6, 0xA0);  // the CD, device 0
  EXPECT_EQ(reg(4), 0x14);
  EXPECT_EQ(reg(5), 0xEB);
}

}  // namespace
}  // namespace vmm86::test
