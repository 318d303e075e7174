// The fw_cfg device against docs/specs/fw_cfg.rst: expected bytes are the spec's formats
// written out by hand, never the device's own output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/firmware/fw_cfg.h"
#include "fw_cfg_test_util.h"

namespace vmm86 {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kDescriptor = 0x1000;  // where the tests put their FWCfgDmaAccess
constexpr uint64_t kBuffer = 0x2000;
constexpr size_t kRamSize = 0x10000;

class FwCfgTest : public ::testing::Test {
 protected:
  FwCfgTest() : memory(kRamSize), fw_cfg(&memory), guest(fw_cfg) { EXPECT_EQ(guest.status, BusStatus::Ok); }

  /// Writes an FWCfgDmaAccess at kDescriptor and runs it; returns the control field after.
  uint32_t dma(uint32_t control, uint32_t length, uint64_t address) {
    memory.put_be32(kDescriptor, control);
    memory.put_be32(kDescriptor + 4, length);
    memory.put_be64(kDescriptor + 8, address);
    guest.start_dma(kDescriptor);
    return memory.be32(kDescriptor);
  }

  test::FlatMemory memory;
  FwCfg fw_cfg;
  test::FwCfgGuest guest;
};

TEST_F(FwCfgTest, SignatureThroughTheBytePort) { EXPECT_EQ(guest.read_item(0x0000, 4), (Bytes{'Q', 'E', 'M', 'U'})); }

TEST_F(FwCfgTest, ByteReadAtTheSelectorPortIsData) {
  guest.select(0x0000);
  EXPECT_EQ(guest.bus.read(0x510, 1), 'Q');
  EXPECT_EQ(guest.bus.read(0x511, 1), 'E');
}

TEST_F(FwCfgTest, IdHasTraditionalAndDmaBits) {
  EXPECT_EQ(guest.read_item(0x0001, 4), (Bytes{0x03, 0, 0, 0}));  // le32, bit 0 and bit 1
}

TEST(FwCfgNoDma, IdHasOnlyTheTraditionalBit) {
  FwCfg fw_cfg(nullptr);
  test::FwCfgGuest guest(fw_cfg);
  EXPECT_EQ(guest.read_item(0x0001, 4), (Bytes{0x01, 0, 0, 0}));
  EXPECT_EQ(guest.bus.read(0x514, 4), 0xFFFFFFFFu);  // no DMA register
}

TEST_F(FwCfgTest, DmaAddressRegisterReadsQemuCfg) {
  // "QEMU CFG" in big-endian: port 0x514 holds 'Q', 0x515 'E', ... 0x51B 'G'.
  EXPECT_EQ(guest.bus.read(0x514, 4), 0x554D4551u);
  EXPECT_EQ(guest.bus.read(0x518, 4), 0x47464320u);
}

TEST_F(FwCfgTest, SelectingAgainRestartsAtOffsetZero) {
  EXPECT_EQ(guest.read_item(0x0000, 2), (Bytes{'Q', 'E'}));
  EXPECT_EQ(guest.read_item(0x0000, 4), (Bytes{'Q', 'E', 'M', 'U'}));
}

TEST_F(FwCfgTest, ReadsPastTheEndAndOfMissingItemsAreZero) {
  EXPECT_EQ(guest.read_item(0x0000, 7), (Bytes{'Q', 'E', 'M', 'U', 0, 0, 0}));
  EXPECT_EQ(guest.read_item(0x0002, 3), (Bytes{0, 0, 0}));  // no UUID added
  EXPECT_EQ(guest.read_item(0x0123, 2), (Bytes{0, 0}));     // file key without a file
}

TEST_F(FwCfgTest, WriteChannelBitIsIgnoredAndDataWritesAreDropped) {
  guest.select(0x4000);
  guest.bus.write(0x511, 1, 'X');
  EXPECT_EQ(guest.read_bytes(4), (Bytes{'Q', 'E', 'M', 'U'}));
}

TEST_F(FwCfgTest, NumbersAreStoredLittleEndian) {
  ASSERT_TRUE(fw_cfg.add_u16(0x0005, 0x1234));
  ASSERT_TRUE(fw_cfg.add_u32(0x8002, 0x11223344));
  ASSERT_TRUE(fw_cfg.add_u64(0x0003, 0x0102030405060708));
  EXPECT_EQ(guest.read_item(0x0005, 2), (Bytes{0x34, 0x12}));
  EXPECT_EQ(guest.read_item(0x8002, 4), (Bytes{0x44, 0x33, 0x22, 0x11}));
  EXPECT_EQ(guest.read_item(0x0003, 8), (Bytes{8, 7, 6, 5, 4, 3, 2, 1}));
}

TEST_F(FwCfgTest, DirectoryListsFilesInNameOrderFromKey0x20) {
  ASSERT_TRUE(fw_cfg.add_file("zeta", {1, 2, 3}));
  ASSERT_TRUE(fw_cfg.add_file("alpha", Bytes(0x123, 7)));
  ASSERT_TRUE(fw_cfg.add_file("etc/e820", {}));
  guest.select(0x0019);
  EXPECT_EQ(guest.read_bytes(4), (Bytes{0, 0, 0, 3}));  // be32 count
  auto entry = [](uint32_t size, uint16_t select, const std::string& name) {
    Bytes e = {static_cast<uint8_t>(size >> 24),
               static_cast<uint8_t>(size >> 16),
               static_cast<uint8_t>(size >> 8),
               static_cast<uint8_t>(size),
               static_cast<uint8_t>(select >> 8),
               static_cast<uint8_t>(select),
               0,
               0};
    e.insert(e.end(), name.begin(), name.end());
    e.resize(64, 0);
    return e;
  };
  EXPECT_EQ(guest.read_bytes(64), entry(0x123, 0x0020, "alpha"));
  EXPECT_EQ(guest.read_bytes(64), entry(0, 0x0021, "etc/e820"));
  EXPECT_EQ(guest.read_bytes(64), entry(3, 0x0022, "zeta"));
  EXPECT_EQ(guest.read_bytes(1), (Bytes{0}));  // end of the directory
}

TEST_F(FwCfgTest, FindsAFileByNameAndReadsIt) {
  ASSERT_TRUE(fw_cfg.add_file("opt/b", {'b'}));
  ASSERT_TRUE(fw_cfg.add_file("opt/a", {'a', 'a'}));
  const auto file = guest.find_file("opt/b");
  EXPECT_EQ(file.size, 1u);
  EXPECT_EQ(file.select, 0x0021);
  EXPECT_EQ(fw_cfg.file_key("opt/b"), 0x0021);
  EXPECT_EQ(fw_cfg.file_key("opt/c"), 0);
  EXPECT_EQ(guest.read_item(file.select, 2), (Bytes{'b', 0}));
}

TEST_F(FwCfgTest, AddingAFileRenumbersTheOnesAfterIt) {
  ASSERT_TRUE(fw_cfg.add_file("b", {'b'}));
  guest.select(0x0020);
  ASSERT_TRUE(fw_cfg.add_file("a", {'a'}));
  EXPECT_EQ(guest.read_bytes(1), (Bytes{'a'}));  // the selection follows the key, as in QEMU
  EXPECT_EQ(guest.read_item(0x0021, 1), (Bytes{'b'}));
}

TEST_F(FwCfgTest, BuilderRefusesBadNamesAndKeys) {
  EXPECT_TRUE(fw_cfg.add_file(std::string(55, 'n'), {}));
  const Status too_long = fw_cfg.add_file(std::string(56, 'n'), {});
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().find("longer than 55"), std::string::npos);
  EXPECT_FALSE(fw_cfg.add_file("", {}));
  EXPECT_FALSE(fw_cfg.add_file(std::string("a\0b", 3), {}));
  ASSERT_TRUE(fw_cfg.add_file("bootorder", {}));
  const Status duplicate = fw_cfg.add_file("bootorder", {1});
  ASSERT_FALSE(duplicate);
  EXPECT_NE(duplicate.error().find("bootorder"), std::string::npos);

  EXPECT_FALSE(fw_cfg.add_u32(0x0000, 1));  // the signature is taken
  EXPECT_FALSE(fw_cfg.add_u32(0x0019, 1));  // the directory is built by the device
  EXPECT_FALSE(fw_cfg.add_u32(0x0020, 1));  // file keys
  EXPECT_FALSE(fw_cfg.add_u32(0x4005, 1));  // write channel
  EXPECT_TRUE(fw_cfg.add_u32(0x8003, 1));   // x86 keys above 0x8020 are not files either
  EXPECT_TRUE(fw_cfg.add_u32(0x8025, 1));
  EXPECT_FALSE(fw_cfg.add_u32(0x8003, 1));
}

TEST_F(FwCfgTest, DmaSelectAndRead) {
  memory.bytes[kBuffer + 4] = 0xAA;
  EXPECT_EQ(dma(0x0001u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, kBuffer), 0u);
  EXPECT_EQ(memory.range(kBuffer, 5), (Bytes{0x03, 0, 0, 0, 0xAA}));
}

TEST_F(FwCfgTest, DmaReadContinuesAtTheOffset) {
  guest.select(0x0000);
  EXPECT_EQ(guest.read_bytes(1), (Bytes{'Q'}));
  EXPECT_EQ(dma(FwCfg::kDmaRead, 2, kBuffer), 0u);
  EXPECT_EQ(memory.range(kBuffer, 2), (Bytes{'E', 'M'}));
  EXPECT_EQ(guest.read_bytes(1), (Bytes{'U'}));  // DMA and port share the offset
}

TEST_F(FwCfgTest, DmaSkipThenRead) {
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaSkip, 2, 0), 0u);
  EXPECT_EQ(dma(FwCfg::kDmaRead, 2, kBuffer), 0u);
  EXPECT_EQ(memory.range(kBuffer, 2), (Bytes{'M', 'U'}));
}

TEST_F(FwCfgTest, DmaReadPastTheEndFillsZeros) {
  std::fill(memory.bytes.begin() + kBuffer, memory.bytes.begin() + kBuffer + 8, 0xAA);
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 7, kBuffer), 0u);
  EXPECT_EQ(memory.range(kBuffer, 8), (Bytes{'Q', 'E', 'M', 'U', 0, 0, 0, 0xAA}));
}

TEST_F(FwCfgTest, DmaSelectAloneSelects) {
  EXPECT_EQ(dma(0x0001u << 16 | FwCfg::kDmaSelect, 4, kBuffer), 0u);
  EXPECT_EQ(guest.read_bytes(1), (Bytes{0x03}));
}

TEST_F(FwCfgTest, DmaReadToAnAddressOutsideMemorySetsError) {
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, kRamSize - 2), FwCfg::kDmaError);
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, uint64_t{1} << 40), FwCfg::kDmaError);
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, ~uint64_t{0}), FwCfg::kDmaError);
}

TEST_F(FwCfgTest, DescriptorOutsideMemoryIsDroppedSafely) {
  Bytes expected = memory.bytes;
  guest.start_dma(uint64_t{0x12345678} << 32);
  EXPECT_EQ(memory.bytes, expected);
  // Runs off the end of RAM: unreadable, but its control field is there to take the error.
  guest.start_dma(kRamSize - 8);
  expected[kRamSize - 5] = FwCfg::kDmaError;
  EXPECT_EQ(memory.bytes, expected);
  EXPECT_EQ(guest.read_item(0x0000, 1), (Bytes{'Q'}));  // still works
}

TEST_F(FwCfgTest, DmaWriteIsRefused) {
  EXPECT_EQ(dma(0x0000u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaWrite, 4, kBuffer), FwCfg::kDmaError);
  EXPECT_EQ(guest.read_item(0x0000, 4), (Bytes{'Q', 'E', 'M', 'U'}));
}

TEST_F(FwCfgTest, HighHalfOfTheAddressClearsAfterAnOperation) {
  memory.put_be32(kDescriptor, 0x0001u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead);
  memory.put_be32(kDescriptor + 4, 4);
  memory.put_be64(kDescriptor + 8, kBuffer);
  guest.bus.write(0x514, 4, test::port_value_of_be32(1));  // 4 GiB up: not memory
  guest.bus.write(0x518, 4, test::port_value_of_be32(kDescriptor));
  EXPECT_EQ(memory.be32(kDescriptor), 0x0001u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead);  // untouched
  guest.bus.write(0x518, 4, test::port_value_of_be32(kDescriptor));  // low half only, as SeaBIOS does
  EXPECT_EQ(memory.be32(kDescriptor), 0u);
  EXPECT_EQ(memory.range(kBuffer, 4), (Bytes{0x03, 0, 0, 0}));
}

TEST_F(FwCfgTest, ItemsAreVisibleThroughTheAccessor) {
  ASSERT_TRUE(fw_cfg.add_file("etc/x", {9}));
  ASSERT_NE(fw_cfg.item(0x0020), nullptr);
  EXPECT_EQ(*fw_cfg.item(0x0020), (Bytes{9}));
  EXPECT_EQ(fw_cfg.item(0x0021), nullptr);
  EXPECT_EQ(fw_cfg.item(0x0019)->size(), 4u + 64u);
}

}  // namespace
}  // namespace vmm86
