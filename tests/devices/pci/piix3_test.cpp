// PIIX3 (82371SB) function 0 interrupt routing (PIRQRC[A:D]) and function 1's IDE
// configuration space, with values from the 82371SB datasheet.
#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/piix3_ide.h"
#include "devices/pci/piix3_isa_bridge.h"
#include "test_util.h"

namespace vmm86 {
namespace {

class Piix3IsaTest : public ::testing::Test {
 protected:
  void route(unsigned pirq, uint8_t value) { bridge.config_write(static_cast<uint8_t>(0x60 + pirq), 1, value); }

  test::RecordingIrqSink pic;
  Piix3IsaBridge bridge{pic};
};

TEST_F(Piix3IsaTest, Identity) {
  EXPECT_EQ(bridge.config_read(0x00, 4), 0x7000'8086u);
  EXPECT_EQ(bridge.config_read(0x08, 4) >> 8, 0x060100u);
  EXPECT_EQ(bridge.config_read(0x0E, 1), 0x80u);  // multi-function
  EXPECT_EQ(bridge.config_read(0x4C, 1), 0x4Du);  // IORT default
}

TEST_F(Piix3IsaTest, PirqRegistersResetDisabled) {
  EXPECT_EQ(bridge.config_read(0x60, 4), 0x8080'8080u);
  for (unsigned pirq = 0; pirq < 4; ++pirq) EXPECT_FALSE(bridge.pirq_route(pirq));
  bridge.config_write(0x60, 4, 0xFFFF'FFFF);  // bits 6:4 reserved
  EXPECT_EQ(bridge.config_read(0x60, 4), 0x8F8F'8F8Fu);
}

TEST_F(Piix3IsaTest, SwizzleMapsDevicePinToPirq) {
  // (device + pin - 2) mod 4, pin 1 = INTA#: QEMU's piix3 (pci_slot_get_pirq), the
  // interrupt line SeaBIOS writes (pci_slot_get_irq) and QEMU's _PRT (slot 2 INTA# on LNKB).
  EXPECT_EQ(Piix3IsaBridge::pirq_of(0, 1), 3u);
  EXPECT_EQ(Piix3IsaBridge::pirq_of(1, 1), 0u);
  EXPECT_EQ(Piix3IsaBridge::pirq_of(1, 4), 3u);  // the PIIX3's USB function: PIRQD
  EXPECT_EQ(Piix3IsaBridge::pirq_of(2, 1), 1u);  // the first NIC: PIRQB, IRQ 10 under SeaBIOS
  EXPECT_EQ(Piix3IsaBridge::pirq_of(4, 1), 3u);
  EXPECT_EQ(Piix3IsaBridge::pirq_of(5, 1), 0u);
  EXPECT_EQ(Piix3IsaBridge::pirq_of(3, 2), 3u);
  EXPECT_EQ(Piix3IsaBridge::pirq_of(5, 4), 3u);
}

TEST_F(Piix3IsaTest, RoutedPinDrivesTheIsaIrq) {
  route(3, 11);                    // PIRQD -> IRQ 11
  bridge.set_pci_irq(4, 1, true);  // 00:04 INTA# -> PIRQD
  EXPECT_TRUE(pic.levels[11]);
  EXPECT_EQ(pic.rising_edges[11], 1u);
  bridge.set_pci_irq(4, 1, false);
  EXPECT_FALSE(pic.levels[11]);
}

TEST_F(Piix3IsaTest, DisabledOrReservedRoutingDrivesNothing) {
  bridge.set_pci_irq(5, 1, true);  // PIRQA, disabled at reset
  for (bool level : pic.levels) EXPECT_FALSE(level);
  for (uint8_t reserved : {0, 1, 2, 8, 13}) {
    route(0, reserved);
    for (bool level : pic.levels) EXPECT_FALSE(level);
  }
  route(0, 0x8A);  // bit 7 disables even with an IRQ named
  EXPECT_FALSE(pic.levels[10]);
  route(0, 0x0A);
  EXPECT_TRUE(pic.levels[10]);
}

TEST_F(Piix3IsaTest, SharedIrqStaysHighWhileAnySourceIs) {
  // SeaBIOS's layout: PIRQA/B -> 10, PIRQC/D -> 11.
  route(0, 10);
  route(1, 10);
  route(2, 11);
  route(3, 11);
  bridge.set_pci_irq(5, 1, true);  // PIRQA
  bridge.set_pci_irq(6, 1, true);  // PIRQB
  bridge.set_pci_irq(9, 1, true);  // PIRQA again: same PIRQ, another device
  EXPECT_TRUE(pic.levels[10]);
  EXPECT_EQ(pic.rising_edges[10], 1u);
  bridge.set_pci_irq(5, 1, false);
  EXPECT_TRUE(pic.levels[10]);
  bridge.set_pci_irq(6, 1, false);
  EXPECT_TRUE(pic.levels[10]);
  bridge.set_pci_irq(9, 1, false);
  EXPECT_FALSE(pic.levels[10]);
  EXPECT_FALSE(pic.levels[11]);
}

TEST_F(Piix3IsaTest, ReroutingAnAssertedPirqMovesTheLevel) {
  route(1, 10);
  bridge.set_pci_irq(2, 1, true);  // PIRQB
  EXPECT_TRUE(pic.levels[10]);
  route(1, 11);
  EXPECT_FALSE(pic.levels[10]);
  EXPECT_TRUE(pic.levels[11]);
  bridge.reset();  // PIRQRC back to 0x80
  EXPECT_FALSE(pic.levels[11]);
}

TEST(Piix3IdeTest, Identity) {
  Piix3Ide ide;
  EXPECT_EQ(ide.config_read(0x00, 4), 0x7010'8086u);
  EXPECT_EQ(ide.config_read(0x08, 4) >> 8, 0x010180u);
  EXPECT_EQ(ide.config_read(0x04, 2), 0x0000u);
  EXPECT_EQ(ide.config_read(0x06, 2), 0x0280u);
  EXPECT_EQ(ide.config_read(0x3D, 1), 0u);  // legacy IRQ 14/15, no INTx
  for (uint8_t bar = 0x10; bar < 0x20; bar += 4) EXPECT_EQ(ide.config_read(bar, 4), 0u);
}

TEST(Piix3IdeTest, BusMasterBarSizingAndDecode) {
  Piix3Ide ide;
  EXPECT_EQ(ide.config_read(0x20, 4), 0x1u);  // BMIBA: bit 0 = I/O
  ide.config_write(0x20, 4, 0xFFFF'FFFF);
  EXPECT_EQ(ide.config_read(0x20, 4), 0xFFFF'FFF1u);  // 16 bytes, bits 31:4
  ide.config_write(0x20, 4, 0xC040);
  EXPECT_FALSE(ide.bus_master_base());
  ide.config_write(0x04, 2, 0xFFFF);
  EXPECT_EQ(ide.config_read(0x04, 2), 0x0005u);  // IOSE and BME only
  EXPECT_EQ(ide.bus_master_base(), 0xC040u);
  EXPECT_EQ(ide.region(Piix3Ide::kBusMasterBar).size, 16u);
}

TEST(Piix3IdeTest, TimingRegistersAndDecodeEnable) {
  Piix3Ide ide;
  EXPECT_EQ(ide.config_read(0x40, 4), 0u);
  EXPECT_FALSE(ide.channel_decode_enabled(0));
  ide.config_write(0x40, 2, 0x8000);  // what SeaBIOS writes
  ide.config_write(0x42, 2, 0x8000);
  EXPECT_TRUE(ide.channel_decode_enabled(0));
  EXPECT_TRUE(ide.channel_decode_enabled(1));
  EXPECT_EQ(ide.config_read(0x40, 4), 0x8000'8000u);
  ide.config_write(0x43, 1, 0x00);
  EXPECT_FALSE(ide.channel_decode_enabled(1));
}

TEST(Piix3MachineTest, ScanSeesTheMultiFunctionDevice) {
  test::RecordingIrqSink pic;
  Piix3IsaBridge isa(pic);
  Piix3Ide ide;
  PciBus pci;
  ASSERT_TRUE(pci.attach(1, 0, isa));
  ASSERT_TRUE(pci.attach(1, 1, ide));
  EXPECT_EQ(pci.config_read(1, 0, 0x0E, 1), 0x80u);
  EXPECT_EQ(pci.config_read(1, 1, 0x00, 4), 0x7010'8086u);
  EXPECT_EQ(pci.config_read(1, 2, 0x00, 4), 0xFFFF'FFFFu);
}

}  // namespace
}  // namespace vmm86
