#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/legacy/uart16550.h"
#include "test_util.h"

namespace vmm86 {
namespace {

constexpr uint16_t kBase = 0x3F8;
enum : uint16_t { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

class UartTest : public ::testing::Test {
 protected:
  UartTest() : uart(sink.line(4)) {
    EXPECT_EQ(bus.add(kBase, 8, uart, "com1"), BusStatus::Ok);
    uart.set_output([this](uint8_t b) { output.push_back(static_cast<char>(b)); });
  }
  void out(uint16_t reg, uint8_t value) { bus.write(static_cast<uint16_t>(kBase + reg), 1, value); }
  uint8_t in(uint16_t reg) { return static_cast<uint8_t>(bus.read(static_cast<uint16_t>(kBase + reg), 1)); }
  void push(const std::string& s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    pushed = uart.push_input(std::span<const uint8_t>(p, s.size()));
  }
  bool irq() const { return sink.levels[4]; }

  test::RecordingIrqSink sink;
  Uart16550 uart;
  IoBus bus;
  std::string output;
  size_t pushed = 0;
};

// serial8250's autoconfig() and autoconfig_16550a(), step by step.
TEST_F(UartTest, LinuxAutoconfigIdentifiesA16550A) {
  const uint8_t saved_ier = in(IER);
  out(IER, 0);
  bus.write(0x80, 1, 0xFF);  // nonsense port against bus float (unhandled here)
  const uint8_t scratch2 = in(IER)&0x0F;
  out(IER, 0x0F);
  bus.write(0x80, 1, 0);
  const uint8_t scratch3 = in(IER)&0x0F;
  out(IER, saved_ier);
  EXPECT_EQ(scratch2, 0);
  EXPECT_EQ(scratch3, 0x0F);

  const uint8_t save_mcr = in(MCR);
  const uint8_t save_lcr = in(LCR);
  out(MCR, 0x10 | 0x0A);          // loopback + RTS + OUT2
  EXPECT_EQ(in(MSR)&0xF0, 0x90);  // DCD | CTS
  out(MCR, save_mcr);

  out(LCR, 0xBF);
  out(2, 0);  // EFR on later chips: FCR here
  out(LCR, 0);
  out(FCR, 0x01);
  EXPECT_EQ(in(IIR) >> 6, 3);  // FIFOs work: 16550A

  out(LCR, 0x80);
  EXPECT_NE(in(2), 0);  // no EFR behind DLAB: this reads IIR
  out(LCR, 0xBF);
  EXPECT_NE(in(2), 0);

  out(LCR, 0);
  out(FCR, 0x21);  // 64-byte FIFO request: a TI16750 would set IIR bit 5
  const uint8_t status1 = in(IIR) >> 5;
  out(FCR, 0x01);
  out(LCR, 0x80);
  out(FCR, 0x21);
  const uint8_t status2 = in(IIR) >> 5;
  out(FCR, 0x01);
  out(LCR, 0);
  EXPECT_EQ(status1, 6);
  EXPECT_EQ(status2, 6);

  const uint8_t ier = in(IER);  // no XScale UUE bit
  out(IER, ier | 0x40);
  EXPECT_EQ(in(IER)&0x40, 0);
  out(LCR, save_lcr);

  EXPECT_EQ(in(LSR), 0x60);  // at start-up LSR must not read 0xFF
}

TEST_F(UartTest, ScratchRegisterAndFifoEnableWithTrigger14) {
  out(SCR, 0x5A);
  EXPECT_EQ(in(SCR), 0x5A);
  out(SCR, 0xA5);
  EXPECT_EQ(in(SCR), 0xA5);
  out(FCR, 0xE7);  // enable + clear both + 64-byte bit + trigger 14
  EXPECT_EQ(in(IIR), 0xC1);
  out(FCR, 0x00);
  EXPECT_EQ(in(IIR), 0x01);
}

TEST_F(UartTest, DivisorLatchBehindDlab) {
  out(LCR, 0x83);
  out(0, 0x01);
  out(1, 0x00);
  EXPECT_EQ(in(0), 0x01);
  EXPECT_EQ(in(1), 0x00);
  out(LCR, 0x03);
  EXPECT_EQ(uart.regs().dll, 1);
  out(0, 'x');
  EXPECT_EQ(output, "x");
  EXPECT_EQ(in(LCR), 0x03);
}

TEST_F(UartTest, TransmitGoesToTheSinkAndTheTransmitterIsAlwaysEmpty) {
  for (char c : std::string("hello\n")) out(0, static_cast<uint8_t>(c));
  EXPECT_EQ(output, "hello\n");
  EXPECT_EQ(in(LSR)&0x60, 0x60);
  EXPECT_EQ(uart.stats().tx_bytes, 6u);
}

TEST_F(UartTest, ThreInterruptFollowsIerIirAndThrWrites) {
  out(MCR, 0x0B);  // DTR RTS OUT2
  EXPECT_FALSE(irq());
  out(IER, 0x02);
  EXPECT_TRUE(irq());
  EXPECT_EQ(in(IIR), 0x02);
  EXPECT_FALSE(irq());  // reading IIR acknowledged THRE
  EXPECT_EQ(in(IIR), 0x01);
  out(0, 'a');
  EXPECT_TRUE(irq());
  EXPECT_EQ(sink.rising_edges[4], 2u);
  out(IER, 0);
  EXPECT_FALSE(irq());
}

TEST_F(UartTest, LinuxThreTestSeesThreReassertedOnIerToggle) {
  out(MCR, 0x0B);
  out(IER, 0x02);
  const uint8_t iir1 = in(IIR);
  out(IER, 0);
  out(IER, 0x02);
  const uint8_t iir = in(IIR);
  out(IER, 0);
  EXPECT_EQ(iir1 & 0x01, 0);
  EXPECT_EQ(iir & 0x01, 0);  // no UART_BUG_THRE
}

TEST_F(UartTest, Out2GatesTheIrqLine) {
  out(IER, 0x02);
  EXPECT_FALSE(irq());
  EXPECT_EQ(in(IIR)&0x0F, 0x02);  // pending internally
  out(IER, 0);
  out(IER, 0x02);
  out(MCR, 0x08);
  EXPECT_TRUE(irq());
}

TEST_F(UartTest, ReceiveFifoTriggerLevelAndTimeout) {
  out(MCR, 0x08);
  out(FCR, 0x81);  // FIFO, trigger 8
  out(IER, 0x01);
  push("abcd");
  EXPECT_EQ(pushed, 4u);
  EXPECT_TRUE(irq());
  EXPECT_EQ(in(IIR), 0xCC);  // below trigger: character timeout
  push("efgh");
  EXPECT_EQ(in(IIR), 0xC4);  // trigger reached: received data available
  EXPECT_EQ(in(LSR)&0x01, 0x01);
  std::string got;
  while (in(LSR)&0x01) got.push_back(static_cast<char>(in(RBR)));
  EXPECT_EQ(got, "abcdefgh");
  EXPECT_FALSE(irq());
  EXPECT_EQ(in(IIR), 0xC1);
}

TEST_F(UartTest, HostPushTakesOnlyWhatFits) {
  out(FCR, 0x01);
  push("0123456789abcdefXYZ");
  EXPECT_EQ(pushed, 16u);
  EXPECT_EQ(uart.rx_free(), 0u);
  EXPECT_EQ(in(LSR)&0x02, 0);  // no overrun from the host side
  EXPECT_EQ(in(RBR), '0');
  EXPECT_EQ(uart.rx_free(), 1u);
  out(FCR, 0x00);  // FIFOs off: one holding register (and the FIFO is cleared)
  push("pq");
  EXPECT_EQ(pushed, 1u);
  EXPECT_EQ(in(RBR), 'p');
}

TEST_F(UartTest, LoopbackReturnsWrittenBytesAndModemLines) {
  out(MCR, 0x10 | 0x08 | 0x02);     // loopback, OUT2, RTS
  EXPECT_EQ(in(MSR), 0x90 | 0x02);  // CTS DCD, and DSR dropped
  EXPECT_EQ(in(MSR), 0x90);         // deltas cleared by the read
  out(IER, 0x01);
  out(0, 'L');
  EXPECT_EQ(output, "");  // nothing left the chip
  EXPECT_EQ(in(LSR)&0x01, 0x01);
  EXPECT_EQ(in(IIR)&0x0F, 0x04);
  EXPECT_FALSE(irq());  // loopback disconnects the IRQ output
  EXPECT_EQ(in(RBR), 'L');
  EXPECT_EQ(uart.push_input(std::span<const uint8_t>()), 0u);
}

TEST_F(UartTest, LoopbackOverrunWithoutFifo) {
  out(MCR, 0x10);
  out(0, '1');
  out(0, '2');
  EXPECT_EQ(in(LSR)&0x03, 0x03);  // DR and OE
  EXPECT_EQ(in(LSR)&0x02, 0x00);  // OE clears on read
  EXPECT_EQ(in(RBR), '2');        // the holding register was overwritten
}

TEST_F(UartTest, ModemStatusInterruptOnLoopbackLineChange) {
  out(MCR, 0x10);
  (void)in(MSR);
  out(IER, 0x08);
  EXPECT_EQ(in(IIR)&0x0F, 0x01);
  out(MCR, 0x10 | 0x04);  // OUT1 -> RI
  out(MCR, 0x10);         // RI falls: trailing edge
  EXPECT_EQ(in(IIR)&0x0F, 0x00);
  EXPECT_EQ(in(MSR)&0x0F, 0x04);
  EXPECT_EQ(in(IIR)&0x0F, 0x01);
}

TEST_F(UartTest, LineStatusInterruptHasPriority) {
  out(MCR, 0x10);
  out(IER, 0x07);
  out(0, '1');
  out(0, '2');  // overrun
  EXPECT_EQ(in(IIR)&0x0F, 0x06);
  (void)in(LSR);
  EXPECT_EQ(in(IIR)&0x0F, 0x04);
  (void)in(RBR);
  EXPECT_EQ(in(IIR)&0x0F, 0x02);
}

}  // namespace
}  // namespace vmm86
