// The type 0 header (PCI Local Bus Specification 3.0 §6.2): BAR sizing (§6.2.5.1), the
// command register's decode enables (§6.2.2), write-1-to-clear status (§6.2.3), and
// moving a BAR's device on the buses through PciRegionMapper and PciWindows.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "devices/bus.h"
#include "devices/pci/pci_region_mapper.h"
#include "devices/pci/pci_windows.h"
#include "pci/test_function.h"

namespace vmm86 {
namespace {

constexpr uint8_t kBar0 = 0x10;
constexpr uint8_t kBar1 = 0x14;
constexpr uint8_t kBar2 = 0x18;

struct Change {
  unsigned region;
  std::optional<uint32_t> base;
  std::optional<uint32_t> previous;
};

class PciFunctionTest : public ::testing::Test {
 protected:
  PciFunctionTest() {
    function.add_region_listener([this](unsigned region, const PciRegion& now, std::optional<uint32_t> previous) {
      changes.push_back({region, now.base, previous});
    });
  }
  void set_command(uint16_t value) { function.config_write(0x04, 2, value); }

  test::TestFunction function;
  std::vector<Change> changes;
};

TEST_F(PciFunctionTest, IdentityRegisters) {
  EXPECT_EQ(function.config_read(0x00, 4), 0x5678'1234u);
  EXPECT_EQ(function.config_read(0x08, 4), 0xFF00'009Au);
  EXPECT_EQ(function.config_read(0x2C, 4), 0xEF01'ABCDu);
  EXPECT_EQ(function.config_read(0x3D, 1), 1u);
}

TEST_F(PciFunctionTest, IoBarSizing) {
  EXPECT_EQ(function.config_read(kBar0, 4), 0x1u);  // bit 0: I/O space indicator
  function.config_write(kBar0, 4, 0xFFFF'FFFF);
  // 32 bytes: address bits 4:2 hardwired 0; the upper 16 bits size too (SeaBIOS needs
  // them, as QEMU gives them).
  EXPECT_EQ(function.config_read(kBar0, 4), 0xFFFF'FFE1u);
  function.config_write(kBar0, 4, 0xC123);
  EXPECT_EQ(function.config_read(kBar0, 4), 0xC121u);
}

TEST_F(PciFunctionTest, MemoryBarSizing) {
  EXPECT_EQ(function.config_read(kBar1, 4), 0x0u);  // 32-bit, not prefetchable
  function.config_write(kBar1, 4, 0xFFFF'FFFF);
  EXPECT_EQ(function.config_read(kBar1, 4), 0xFFFF'F000u);  // 4 KiB
  function.config_write(kBar1, 4, 0xE000'0ABC);
  EXPECT_EQ(function.config_read(kBar1, 4), 0xE000'0000u);
}

TEST_F(PciFunctionTest, UnimplementedBarReadsZero) {
  function.config_write(kBar2, 4, 0xFFFF'FFFF);
  EXPECT_EQ(function.config_read(kBar2, 4), 0u);
  EXPECT_EQ(function.region(2).size, 0u);
}

TEST_F(PciFunctionTest, CommandRegisterGatesDecode) {
  function.config_write(kBar0, 4, 0xC100);
  function.config_write(kBar1, 4, 0xE000'0000);
  EXPECT_TRUE(changes.empty());
  EXPECT_FALSE(function.region(0).base);
  set_command(pci_command::kIoSpace);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].region, 0u);
  EXPECT_EQ(changes[0].base, 0xC100u);
  EXPECT_FALSE(changes[0].previous);
  EXPECT_FALSE(function.region(1).base);
  set_command(pci_command::kIoSpace | pci_command::kMemorySpace);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].region, 1u);
  EXPECT_EQ(changes[1].base, 0xE000'0000u);
  set_command(pci_command::kMemorySpace);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].region, 0u);
  EXPECT_FALSE(changes[2].base);
  EXPECT_EQ(changes[2].previous, 0xC100u);
  EXPECT_TRUE(function.memory_space_enabled());
  EXPECT_FALSE(function.io_space_enabled());
}

TEST_F(PciFunctionTest, MovingAnEnabledBarReportsOldAndNewBase) {
  set_command(pci_command::kIoSpace);
  function.config_write(kBar0, 4, 0xC100);
  function.config_write(kBar0, 4, 0xC200);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].base, 0xC200u);
  EXPECT_EQ(changes[1].previous, 0xC100u);
  // Rewriting the same value is no change.
  function.config_write(kBar0, 4, 0xC200);
  EXPECT_EQ(changes.size(), 2u);
  // Base 0 is "unassigned": not decoded.
  function.config_write(kBar0, 4, 0);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_FALSE(changes[2].base);
}

TEST_F(PciFunctionTest, ByteWritesToABarAssembleTheAddress) {
  set_command(pci_command::kMemorySpace);
  function.config_write(kBar1 + 3, 1, 0xF0);
  function.config_write(kBar1 + 2, 1, 0x12);
  EXPECT_EQ(function.region(1).base, 0xF012'0000u);
}

TEST_F(PciFunctionTest, CommandWritableBits) {
  set_command(0xFFFF);
  // I/O, memory, bus master and INTx disable are implemented here.
  EXPECT_EQ(function.command(), 0x0407u);
  EXPECT_TRUE(function.bus_master_enabled());
  EXPECT_TRUE(function.intx_disabled());
}

TEST_F(PciFunctionTest, StatusErrorBitsAreWriteOneToClear) {
  function.set_status(0xF900 | pci_status::kInterrupt);
  function.config_write(0x06, 2, 0x0000);  // writing 0 changes nothing
  EXPECT_EQ(function.config_read(0x06, 2), 0xF908u);
  function.config_write(0x06, 2, 0x2000);  // received master abort
  EXPECT_EQ(function.config_read(0x06, 2), 0xD908u);
  function.config_write(0x04, 4, 0xFFFF'0000);        // a dword write to command+status
  EXPECT_EQ(function.config_read(0x06, 2), 0x0008u);  // interrupt status is read-only
}

TEST_F(PciFunctionTest, ResetRestoresPowerOnValuesAndUnmaps) {
  set_command(pci_command::kIoSpace);
  function.config_write(kBar0, 4, 0xC100);
  function.config_write(0x3C, 1, 11);
  function.reset();
  EXPECT_EQ(function.command(), 0u);
  EXPECT_EQ(function.config_read(kBar0, 4), 1u);
  EXPECT_EQ(function.interrupt_line(), 0u);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes[1].base);
}

class PciMapperTest : public PciFunctionTest {
 protected:
  PciMapperTest() {
    EXPECT_EQ(io.add(0xC000, 0x4000, windows.add_io_window(0xC000, 0x4000), "pci-io", 4), BusStatus::Ok);
    EXPECT_EQ(
        mmio.add(GuestPhys{0xE000'0000}, 0x1000'0000, windows.add_mmio_window(0xE000'0000, 0x1000'0000), "pci-mem", 4),
        BusStatus::Ok);
    mapper.attach_io(function, 0, io_device, "test-io", 1);
    mapper.attach_mmio(function, 1, mmio_device, "test-mem", 4);
  }

  IoBus io;
  MmioBus mmio;
  PciWindows windows;
  PciRegionMapper mapper{windows};
  test::RecordingIoDevice io_device;
  test::RecordingMmioDevice mmio_device;
};

TEST_F(PciMapperTest, IoBarIsMappedMovedAndUnmapped) {
  function.config_write(kBar0, 4, 0xC100);
  EXPECT_EQ(io.read(0xC104, 1), 0xFFu);  // I/O decode off
  set_command(pci_command::kIoSpace);
  EXPECT_EQ(mapper.mapped_base(function, 0), 0xC100u);
  EXPECT_EQ(io.read(0xC104, 1), 0xA4u);
  // A word access to a byte-wide device is split as the outer bus would.
  io.write(0xC110, 2, 0xBBAA);
  ASSERT_EQ(io_device.accesses.size(), 3u);
  EXPECT_EQ(io_device.accesses[1].offset, 0x10u);
  EXPECT_EQ(io_device.accesses[1].value, 0xAAu);
  EXPECT_EQ(io_device.accesses[2].offset, 0x11u);

  function.config_write(kBar0, 4, 0xC200);
  EXPECT_EQ(io.read(0xC104, 1), 0xFFu);
  EXPECT_EQ(io.read(0xC21F, 1), 0xBFu);
  EXPECT_EQ(io.read(0xC220, 1), 0xFFu);  // past the 32-byte BAR

  set_command(0);
  EXPECT_FALSE(mapper.mapped_base(function, 0));
  EXPECT_EQ(io.read(0xC21F, 1), 0xFFu);
}

TEST_F(PciMapperTest, MemoryBarIsMappedAndMoved) {
  set_command(pci_command::kMemorySpace);
  function.config_write(kBar1, 4, 0xE000'0000);
  EXPECT_EQ(mmio.read(GuestPhys{0xE000'0010}, 4), 0x5000'0010u);
  function.config_write(kBar1, 4, 0xE100'0000);
  EXPECT_EQ(mmio.read(GuestPhys{0xE000'0010}, 4), 0xFFFF'FFFFu);
  EXPECT_EQ(mmio.read(GuestPhys{0xE100'0FFC}, 4), 0x5000'0FFCu);
}

TEST_F(PciMapperTest, BarOutsideTheWindowsIsNotMapped) {
  set_command(pci_command::kIoSpace);
  function.config_write(kBar0, 4, 0x1000);
  EXPECT_FALSE(mapper.mapped_base(function, 0));
  EXPECT_EQ(mapper.failed_mappings(), 1u);
  function.config_write(kBar0, 4, 0xC000);
  EXPECT_EQ(mapper.mapped_base(function, 0), 0xC000u);
}

TEST_F(PciMapperTest, TwoFunctionsCannotOverlap) {
  test::TestFunction other;
  test::RecordingIoDevice other_device;
  mapper.attach_io(other, 0, other_device, "other-io", 1);
  set_command(pci_command::kIoSpace);
  function.config_write(kBar0, 4, 0xC100);
  other.config_write(0x04, 2, pci_command::kIoSpace);
  other.config_write(kBar0, 4, 0xC100);
  EXPECT_FALSE(mapper.mapped_base(other, 0));
  other.config_write(kBar0, 4, 0xC120);
  EXPECT_EQ(mapper.mapped_base(other, 0), 0xC120u);
  EXPECT_EQ(io.read(0xC121, 1), 0xA1u);
  EXPECT_EQ(other_device.accesses.size(), 1u);
}

}  // namespace
}  // namespace vmm86
