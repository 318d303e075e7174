// Intel 82441FX (i440FX PMC) host bridge: identity, PAM[6:0] shadow attributes and the
// SMRAM register, with values from the 82441FX datasheet's register descriptions.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "devices/pci/i440fx_host_bridge.h"

namespace vmm86 {
namespace {

struct PamEvent {
  uint32_t base;
  uint32_t size;
  PamMode mode;
  bool operator==(const PamEvent&) const = default;
};

class I440fxTest : public ::testing::Test {
 protected:
  I440fxTest() {
    bridge.set_pam_listener([this](uint32_t base, uint32_t size, PamMode mode) {
      events.push_back({base, size, mode});
    });
  }
  I440fxHostBridge bridge;
  std::vector<PamEvent> events;
};

TEST_F(I440fxTest, Identity) {
  EXPECT_EQ(bridge.config_read(0x00, 4), 0x1237'8086u);
  EXPECT_EQ(bridge.config_read(0x08, 4), 0x0600'0002u);  // host bridge, revision 02
  EXPECT_EQ(bridge.config_read(0x04, 2), 0x0006u);       // PCICMD default
  EXPECT_EQ(bridge.config_read(0x06, 2), 0x0280u);       // PCISTS default
  EXPECT_EQ(bridge.config_read(0x0E, 1), 0x00u);
}

// The segment each PAM nibble controls (82441FX PAM table): PAM0[7:4] the BIOS area,
// then 16 KiB pieces from 0xC0000, PAMn[3:0] below PAMn[7:4].
struct PamCase {
  uint8_t reg;
  unsigned shift;
  uint32_t base;
  uint32_t size;
};
constexpr PamCase kPamTable[] = {
    {0x59, 4, 0xF0000, 0x10000}, {0x5A, 0, 0xC0000, 0x4000}, {0x5A, 4, 0xC4000, 0x4000}, {0x5B, 0, 0xC8000, 0x4000},
    {0x5B, 4, 0xCC000, 0x4000},  {0x5C, 0, 0xD0000, 0x4000}, {0x5C, 4, 0xD4000, 0x4000}, {0x5D, 0, 0xD8000, 0x4000},
    {0x5D, 4, 0xDC000, 0x4000},  {0x5E, 0, 0xE0000, 0x4000}, {0x5E, 4, 0xE4000, 0x4000}, {0x5F, 0, 0xE8000, 0x4000},
    {0x5F, 4, 0xEC000, 0x4000},
};

TEST_F(I440fxTest, EverySegmentReportsEveryMode) {
  for (const PamCase& c : kPamTable) {
    SCOPED_TRACE(testing::Message() << "PAM reg 0x" << std::hex << unsigned{c.reg} << " shift " << c.shift);
    for (uint8_t mode : {1, 2, 3, 0}) {  // RE only, WE only, both, neither
      events.clear();
      bridge.config_write(c.reg, 1, static_cast<uint32_t>(mode) << c.shift);
      ASSERT_EQ(events.size(), 1u);
      EXPECT_EQ(events[0], (PamEvent{c.base, c.size, static_cast<PamMode>(mode)}));
      EXPECT_EQ(bridge.pam_mode(c.base + c.size - 1), static_cast<PamMode>(mode));
    }
  }
}

TEST_F(I440fxTest, AWholeRegisterWriteReportsBothSegments) {
  bridge.config_write(0x5A, 1, 0x31);  // C4000 read/write, C0000 read-only
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], (PamEvent{0xC0000, 0x4000, PamMode::ReadOnly}));
  EXPECT_EQ(events[1], (PamEvent{0xC4000, 0x4000, PamMode::ReadWrite}));
  events.clear();
  // A dword write over PAM3-PAM6 (0x5C-0x5F) as firmware might do: 8 segments.
  bridge.config_write(0x5C, 4, 0x3333'3333);
  EXPECT_EQ(events.size(), 8u);
  events.clear();
  bridge.config_write(0x5C, 4, 0x3333'3333);  // unchanged: no events
  EXPECT_TRUE(events.empty());
}

TEST_F(I440fxTest, ReservedPamBitsReadZero) {
  bridge.config_write(0x59, 1, 0xFF);  // PAM0[3:0] reserved, bits 7:6 reserved
  EXPECT_EQ(bridge.config_read(0x59, 1), 0x30u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PamEvent{0xF0000, 0x10000, PamMode::ReadWrite}));
  bridge.config_write(0x5A, 1, 0xFF);  // bits 7:6 and 3:2 reserved
  EXPECT_EQ(bridge.config_read(0x5A, 1), 0x33u);
}

TEST_F(I440fxTest, PamModeOutsideTheShadowArea) {
  bridge.config_write(0x59, 1, 0x30);
  EXPECT_EQ(bridge.pam_mode(0xFFFFF), PamMode::ReadWrite);
  EXPECT_EQ(bridge.pam_mode(0xBFFFF), PamMode::Off);
  EXPECT_EQ(bridge.pam_mode(0x100000), PamMode::Off);
}

TEST_F(I440fxTest, ResetReportsSegmentsBackToOff) {
  bridge.config_write(0x59, 1, 0x10);
  events.clear();
  bridge.reset();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PamEvent{0xF0000, 0x10000, PamMode::Off}));
}

TEST_F(I440fxTest, SmramRegister) {
  EXPECT_EQ(bridge.smram(), 0x02u);    // C_BASE_SEG = 010: 0xA0000
  bridge.config_write(0x72, 1, 0x4F);  // D_OPEN | G_SMRAME; C_BASE_SEG read-only
  EXPECT_EQ(bridge.smram(), 0x4Au);
  // D_LCK: D_OPEN goes to 0, and only D_CLS stays writable until reset.
  bridge.config_write(0x72, 1, 0x5A);
  EXPECT_EQ(bridge.smram(), 0x1Au);
  bridge.config_write(0x72, 1, 0x62);  // tries D_OPEN, clears D_LCK and G_SMRAME; sets D_CLS
  EXPECT_EQ(bridge.smram(), 0x3Au);
  bridge.reset();
  EXPECT_EQ(bridge.smram(), 0x02u);
  bridge.config_write(0x72, 1, 0x4A);
  EXPECT_EQ(bridge.smram(), 0x4Au);
}

}  // namespace
}  // namespace vmm86
