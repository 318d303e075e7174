// Configuration mechanism #1 (PCI Local Bus Specification 3.0 §3.2.2.3.2; 82441FX
// CONFADD/CONFDATA; PIIX3 Reset Control register at 0xCF9).
#include <gtest/gtest.h>

#include "devices/bus.h"
#include "devices/pci/pci_bus.h"
#include "pci/test_function.h"

namespace vmm86 {
namespace {

class PciBusTest : public ::testing::Test {
 protected:
  PciBusTest() {
    EXPECT_TRUE(pci.attach(3, 0, function));
    EXPECT_EQ(io.add(PciBus::kBasePort, PciBus::kPortCount, pci, "pci", PciBus::kRegisterWidth), BusStatus::Ok);
  }
  void select(unsigned device, unsigned fn, uint8_t reg) { io.write(0xCF8, 4, PciBus::address(device, fn, reg)); }

  IoBus io;
  PciBus pci;
  test::TestFunction function;
};

TEST_F(PciBusTest, ConfigAddressIsADwordRegisterWithReservedBitsZero) {
  io.write(0xCF8, 4, 0xFFFF'FFFF);
  // Bits 30:24 and 1:0 are reserved and read 0.
  EXPECT_EQ(io.read(0xCF8, 4), 0x80FF'FFFCu);
  io.write(0xCF8, 4, 0x8000'1800);
  EXPECT_EQ(io.read(0xCF8, 4), 0x8000'1800u);
}

TEST_F(PciBusTest, NonDwordAccessToCf8IsNotTheConfigAddress) {
  select(3, 0, 0x00);
  io.write(0xCF8, 1, 0x00);
  io.write(0xCF8, 2, 0x0000);
  io.write(0xCFA, 2, 0x0000);
  EXPECT_EQ(io.read(0xCF8, 4), PciBus::address(3, 0, 0));
  EXPECT_EQ(io.read(0xCF8, 1), 0xFFu);
  EXPECT_EQ(io.read(0xCFA, 2), 0xFFFFu);
}

TEST_F(PciBusTest, EnableBitClearReadsAllOnesAndDropsWrites) {
  io.write(0xCF8, 4, PciBus::address(3, 0, 0x40) & ~PciBus::kEnable);
  EXPECT_EQ(io.read(0xCFC, 4), 0xFFFF'FFFFu);
  io.write(0xCFC, 4, 0x1122'3344);
  select(3, 0, 0x40);
  EXPECT_EQ(io.read(0xCFC, 4), 0u);
}

TEST_F(PciBusTest, DwordWordAndByteReadsAtEveryOffset) {
  select(3, 0, 0x00);
  EXPECT_EQ(io.read(0xCFC, 4), 0x5678'1234u);
  EXPECT_EQ(io.read(0xCFC, 2), 0x1234u);
  EXPECT_EQ(io.read(0xCFD, 2), 0x7812u);
  EXPECT_EQ(io.read(0xCFE, 2), 0x5678u);
  EXPECT_EQ(io.read(0xCFC, 1), 0x34u);
  EXPECT_EQ(io.read(0xCFD, 1), 0x12u);
  EXPECT_EQ(io.read(0xCFE, 1), 0x78u);
  EXPECT_EQ(io.read(0xCFF, 1), 0x56u);
  select(3, 0, 0x08);  // revision, class code
  EXPECT_EQ(io.read(0xCFC, 4), 0xFF00'009Au);
  select(3, 0, 0x3C);  // interrupt line, pin
  EXPECT_EQ(io.read(0xCFD, 1), 1u);
}

TEST_F(PciBusTest, ByteAndWordWritesReachOnlyTheirBytes) {
  select(3, 0, 0x40);
  io.write(0xCFC, 1, 0x11);
  io.write(0xCFD, 1, 0x22);
  io.write(0xCFE, 1, 0x33);
  io.write(0xCFF, 1, 0x44);
  EXPECT_EQ(io.read(0xCFC, 4), 0x4433'2211u);
  io.write(0xCFE, 2, 0xBEEF);
  EXPECT_EQ(io.read(0xCFC, 4), 0xBEEF'2211u);
  io.write(0xCFD, 2, 0x5566);
  EXPECT_EQ(io.read(0xCFC, 4), 0xBE55'6611u);
  io.write(0xCFC, 4, 0xCAFE'F00D);
  EXPECT_EQ(io.read(0xCFC, 4), 0xCAFE'F00Du);
  EXPECT_EQ(function.config_dword(0x40), 0xCAFE'F00Du);
}

TEST_F(PciBusTest, ReadOnlyRegistersIgnoreWrites) {
  select(3, 0, 0x00);
  io.write(0xCFC, 4, 0);
  EXPECT_EQ(io.read(0xCFC, 4), 0x5678'1234u);
  select(3, 0, 0x3C);
  io.write(0xCFC, 2, 0xFF0B);  // line writable, pin read-only
  EXPECT_EQ(io.read(0xCFC, 2), 0x010Bu);
}

TEST_F(PciBusTest, AbsentFunctionsReadAllOnes) {
  select(3, 1, 0x00);
  EXPECT_EQ(io.read(0xCFC, 4), 0xFFFF'FFFFu);
  EXPECT_EQ(io.read(0xCFE, 2), 0xFFFFu);
  EXPECT_EQ(io.read(0xCFF, 1), 0xFFu);
  select(4, 0, 0x00);
  EXPECT_EQ(io.read(0xCFC, 4), 0xFFFF'FFFFu);
  io.write(0xCF8, 4, PciBus::kEnable | (1u << 16) | (3u << 11));  // bus 1: no bridges
  EXPECT_EQ(io.read(0xCFC, 4), 0xFFFF'FFFFu);
  io.write(0xCFC, 4, 0);  // dropped, no crash
}

TEST_F(PciBusTest, AttachRejectsTakenOrInvalidSlots) {
  test::TestFunction other;
  EXPECT_FALSE(pci.attach(3, 0, other));
  EXPECT_FALSE(pci.attach(32, 0, other));
  EXPECT_FALSE(pci.attach(0, 8, other));
  EXPECT_TRUE(pci.attach(31, 7, other));
  EXPECT_EQ(pci.function(31, 7), &other);
}

TEST_F(PciBusTest, FunctionZeroOfAMultiFunctionDeviceSetsHeaderTypeBit7) {
  select(3, 0, 0x0C);
  EXPECT_EQ(io.read(0xCFE, 1), 0x00u);
  test::TestFunction second;
  ASSERT_TRUE(pci.attach(3, 2, second));
  EXPECT_EQ(io.read(0xCFE, 1), 0x80u);
  EXPECT_EQ(io.read(0xCFC, 4) >> 16, 0x0080u);
  select(3, 2, 0x0C);  // bit 7 is function 0's
  EXPECT_EQ(io.read(0xCFE, 1), 0x00u);
}

TEST_F(PciBusTest, ResetControlAtCf9RequestsResetOnRcpuRisingEdge) {
  int resets = 0;
  pci.set_reset_request([&] { ++resets; });
  io.write(0xCF9, 1, 0x02);  // SRST: hard reset selected
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(io.read(0xCF9, 1), 0x02u);
  io.write(0xCF9, 1, 0x06);  // RCPU 0 -> 1
  EXPECT_EQ(resets, 1);
  io.write(0xCF9, 1, 0x06);  // no new edge
  EXPECT_EQ(resets, 1);
  io.write(0xCF9, 1, 0xFF);  // reserved bits read 0
  EXPECT_EQ(io.read(0xCF9, 1), 0x06u);
  EXPECT_EQ(io.read(0xCF8, 4), 0u);  // CONFIG_ADDRESS untouched
}

TEST_F(PciBusTest, ResetClearsAddressAndFunctions) {
  select(3, 0, 0x40);
  io.write(0xCFC, 4, 0x1234'5678);
  pci.reset();
  EXPECT_EQ(io.read(0xCF8, 4), 0u);
  EXPECT_EQ(function.config_dword(0x40), 0u);
}

}  // namespace
}  // namespace vmm86
