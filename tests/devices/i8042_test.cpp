#include <gtest/gtest.h>

#include <vector>

#include "devices/bus.h"
#include "devices/legacy/i8042.h"
#include "test_util.h"

namespace vmm86 {
namespace {

constexpr uint8_t kObf = 0x01;
constexpr uint8_t kAuxData = 0x20;

class I8042Test : public ::testing::Test {
 protected:
  I8042Test() : kbc(sink.line(1), sink.line(12)) {
    EXPECT_EQ(bus.add(0x60, 1, kbc.data_port(), "kbd-data"), BusStatus::Ok);
    EXPECT_EQ(bus.add(0x64, 1, kbc.command_port(), "kbd-cmd"), BusStatus::Ok);
  }
  uint8_t status() { return static_cast<uint8_t>(bus.read(0x64, 1)); }
  uint8_t data() { return static_cast<uint8_t>(bus.read(0x60, 1)); }
  void command(uint8_t c) { bus.write(0x64, 1, c); }
  void send(uint8_t d) { bus.write(0x60, 1, d); }
  // i8042_command(): write the command and its parameter, read the result if any.
  int run(uint8_t c, int param = -1) {
    EXPECT_EQ(status() & 0x02, 0);  // IBF never holds us up
    command(c);
    if (param >= 0) send(static_cast<uint8_t>(param));
    if (!(status() & kObf)) return -1;
    return data();
  }
  void flush() {
    for (int i = 0; i < 16 && (status() & kObf); ++i) (void)data();
    EXPECT_EQ(status() & kObf, 0);
  }

  test::RecordingIrqSink sink;
  I8042 kbc;
  IoBus bus;
};

TEST_F(I8042Test, ControllerSelfTest) {
  command(0xAA);
  EXPECT_EQ(status() & kObf, kObf);
  EXPECT_EQ(data(), 0x55);
  EXPECT_EQ(status() & kObf, 0);
  EXPECT_EQ(status() & 0x04, 0x04);  // system flag
}

TEST_F(I8042Test, LinuxProbeSequenceSucceeds) {
  flush();
  // i8042_controller_init(): a stable CTR, then keyboard disabled and its IRQ off.
  const int ctr = run(0x20);
  ASSERT_GE(ctr, 0);
  EXPECT_EQ(run(0x20), ctr);
  EXPECT_EQ(status() & 0x10, 0x10);  // keylock not engaged
  const uint8_t new_ctr = static_cast<uint8_t>((ctr | 0x10) & ~0x01);
  EXPECT_EQ(run(0x60, new_ctr), -1);
  EXPECT_EQ(kbc.command_byte(), new_ctr);
  flush();
  // i8042_check_mux(): the loop echoes, so there is no active multiplexer.
  for (uint8_t probe : {0xF0, 0x56, 0xA4}) {
    command(0xD3);
    send(probe);
    EXPECT_EQ(status() & (kObf | kAuxData), kObf | kAuxData);
    EXPECT_EQ(data(), probe);
  }
  // i8042_check_aux(): AUX loop, then the CTR bit follows enable/disable.
  EXPECT_EQ(run(0xD3, 0x5A), 0x5A);
  EXPECT_EQ(run(0xA7), -1);
  EXPECT_EQ(run(0x20) & 0x20, 0x20);
  EXPECT_EQ(run(0xA8), -1);
  EXPECT_EQ(run(0x20) & 0x20, 0x00);
  EXPECT_EQ(run(0xA9), 0x00);
  EXPECT_EQ(run(0xAB), 0x00);
}

TEST_F(I8042Test, AuxLoopRaisesIrq12WhenEnabled) {
  (void)run(0x60, 0x47);  // KBDINT | AUXINT | SYS | XLATE
  command(0xD3);
  send(0xA5);
  EXPECT_TRUE(sink.levels[12]);
  EXPECT_FALSE(sink.levels[1]);
  EXPECT_EQ(data(), 0xA5);
  EXPECT_FALSE(sink.levels[12]);
}

// The keyboard answers (IBM PS/2 reference: FF -> FA AA, F2 -> FA AB 83); the absent mouse
// asks for a resend.
TEST_F(I8042Test, KeyboardAnswersAndAbsentMouseAsksForResend) {
  (void)run(0x60, 0x47);
  send(0xF2);  // atkbd: GET ID
  EXPECT_TRUE(sink.levels[1]);
  EXPECT_EQ(status() & kAuxData, 0);
  EXPECT_EQ(data(), 0xFA);
  EXPECT_EQ(data(), 0xAB);
  EXPECT_EQ(data(), 0x83);
  EXPECT_FALSE(sink.levels[1]);
  send(0xFF);  // reset: acknowledge, then the self-test result
  EXPECT_EQ(data(), 0xFA);
  EXPECT_EQ(data(), 0xAA);
  send(0xED);  // LEDs take an argument byte
  EXPECT_EQ(data(), 0xFA);
  send(0x07);
  EXPECT_EQ(data(), 0xFA);
  send(0xF0);  // scancode set: 0 asks which
  EXPECT_EQ(data(), 0xFA);
  send(0x00);
  EXPECT_EQ(data(), 0xFA);
  EXPECT_EQ(data(), 0x02);
  send(0xEE);  // echo
  EXPECT_EQ(data(), 0xEE);
  send(0x01);  // no such command
  EXPECT_EQ(data(), 0xFE);
  command(0xD4);  // psmouse: to the aux device
  send(0xFF);
  EXPECT_EQ(status() & kAuxData, kAuxData);
  EXPECT_EQ(data(), 0xFE);
  EXPECT_EQ(sink.rising_edges[12], 1u);
}

TEST_F(I8042Test, EveryQueuedByteIsANewInterruptEdge) {
  (void)run(0x60, 0x45);
  command(0xD2);
  send(0x11);
  command(0xD2);
  send(0x22);
  EXPECT_EQ(sink.rising_edges[1], 1u);
  EXPECT_EQ(data(), 0x11);
  EXPECT_EQ(sink.rising_edges[1], 2u);
  EXPECT_EQ(data(), 0x22);
  EXPECT_FALSE(sink.levels[1]);
  EXPECT_EQ(data(), 0x22);  // an empty buffer repeats the last byte
}

TEST_F(I8042Test, PulseCommandRequestsReset) {
  int resets = 0;
  kbc.set_reset_request([&] { ++resets; });
  command(0xFE);
  EXPECT_EQ(resets, 1);
  command(0xFF);  // pulses nothing
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(kbc.reset_requests(), 1u);
}

TEST_F(I8042Test, OutputPortCarriesA20AndReset) {
  int resets = 0;
  std::vector<bool> a20;
  kbc.set_reset_request([&] { ++resets; });
  kbc.set_a20_listener([&](bool on) { a20.push_back(on); });
  EXPECT_TRUE(kbc.a20_enabled());
  EXPECT_EQ(run(0xD0) & 0x03, 0x03);
  command(0xD1);
  send(0xDD);  // A20 off
  EXPECT_FALSE(kbc.a20_enabled());
  command(0xDF);  // A20 on (controller command)
  EXPECT_TRUE(kbc.a20_enabled());
  EXPECT_EQ(a20, (std::vector<bool>{false, true}));
  EXPECT_EQ(resets, 0);
  command(0xD1);
  send(0xDE);  // bit 0 low: reset
  EXPECT_EQ(resets, 1);
}

// Typed keys (IBM PS/2 technical reference scan codes): set 2 make/break as the keyboard
// sends them, set 1 when the controller translates; one byte in the buffer at a time.
TEST_F(I8042Test, TypedKeysComeOutTranslatedToSet1ByDefault) {
  flush();
  kbc.key_event(PcKey{0x1E, false}, true);  // A
  kbc.key_event(PcKey{0x1E, false}, false);
  kbc.key_event(PcKey{0x48, true}, true);  // Up
  EXPECT_EQ(data(), 0x1E);
  EXPECT_EQ(data(), 0x9E);
  EXPECT_EQ(data(), 0xE0);
  EXPECT_EQ(data(), 0x48);
  EXPECT_EQ(status() & kObf, 0);
}

TEST_F(I8042Test, TypedKeysInSet2WithoutTranslation) {
  flush();
  EXPECT_EQ(run(0x60, 0x01), -1);  // command byte: keyboard interrupt, no translation
  kbc.key_event(PcKey{0x1E, false}, true);
  kbc.key_event(PcKey{0x48, true}, false);
  std::vector<int> got;
  while (status() & kObf) got.push_back(data());
  EXPECT_EQ(got, (std::vector<int>{0x1C, 0xE0, 0xF0, 0x75}));
}

TEST_F(I8042Test, TypedKeysWaitWhileTheKeyboardPortIsDisabled) {
  flush();
  EXPECT_EQ(run(0xAD), -1);  // disable the keyboard port
  kbc.key_event(PcKey{0x10, false}, true);
  EXPECT_EQ(status() & kObf, 0);
  EXPECT_EQ(run(0xAE), 0x10);  // enabled: Q arrives
}

}  // namespace
}  // namespace vmm86
