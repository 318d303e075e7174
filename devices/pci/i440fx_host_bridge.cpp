#include "devices/pci/i440fx_host_bridge.h"

namespace vmm86 {
namespace {

constexpr uint32_t kHostBridgeClass = 0x060000;
// 82441FX PCICMD: memory access and bus master are hardwired on; PCISTS reports fast
// back-to-back capability and medium DEVSEL timing.
constexpr uint16_t kCommandReset = 0x0006;
constexpr uint16_t kStatusReset = 0x0280;
constexpr uint8_t kPam0Writable = 0x30;  // low nibble reserved
constexpr uint8_t kPamWritable = 0x33;   // RE and WE of both nibbles
constexpr uint8_t kPamLast = 0x5F;
constexpr uint8_t kPamNibble = 0x3;

// SMRAM (0x72): C_BASE_SEG (bits 2:0) is hardwired to 010 (0xA0000); D_LCK makes
// D_OPEN 0 and the register read-only except D_CLS, until reset.
constexpr uint8_t kSmramReset = 0x02;
constexpr uint8_t kSmramWritable = 0x78;  // D_OPEN, D_CLS, D_LCK, G_SMRAME
constexpr uint8_t kSmramOpen = 0x40;
constexpr uint8_t kSmramClose = 0x20;
constexpr uint8_t kSmramLock = 0x10;

constexpr uint32_t kShadowStart = 0xC0000;
constexpr uint32_t kShadowEnd = 0x100000;

std::array<I440fxHostBridge::PamSegment, I440fxHostBridge::kPamSegmentCount> make_segments() {
  std::array<I440fxHostBridge::PamSegment, I440fxHostBridge::kPamSegmentCount> s{};
  s[0] = {0xF0000, 0x10000, I440fxHostBridge::kPam0, 4};
  for (unsigned i = 0; i < 12; ++i) {
    s[i + 1] = {kShadowStart + i * 0x4000, 0x4000, static_cast<uint8_t>(I440fxHostBridge::kPam0 + 1 + i / 2),
                static_cast<uint8_t>((i % 2) * 4)};
  }
  return s;
}

}  // namespace

const std::array<I440fxHostBridge::PamSegment, I440fxHostBridge::kPamSegmentCount>& I440fxHostBridge::pam_segments() {
  static const auto segments = make_segments();
  return segments;
}

I440fxHostBridge::I440fxHostBridge(uint16_t subsystem_vendor_id, uint16_t subsystem_id)
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = kRevision,
                              .class_code = kHostBridgeClass,
                              .header_type = 0,
                              .subsystem_vendor_id = subsystem_vendor_id,
                              .subsystem_id = subsystem_id,
                              .interrupt_pin = 0}) {
  define_register(pci_reg::kCommand, 2, kCommandReset, 0);
  define_register(pci_reg::kStatus, 2, kStatusReset, 0, pci_status::kWriteOneToClear);
  define_register(pci_reg::kInterruptLine, 1, 0, 0);
  define_register(kPam0, 1, 0, kPam0Writable);
  for (uint8_t reg = kPam0 + 1; reg <= kPamLast; ++reg) define_register(reg, 1, 0, kPamWritable);
  define_register(kSmram, 1, kSmramReset, kSmramWritable);
}

PamMode I440fxHostBridge::segment_mode(const PamSegment& segment) const {
  return static_cast<PamMode>((config_byte(segment.reg) >> segment.shift) & kPamNibble);
}

PamMode I440fxHostBridge::pam_mode(uint32_t address) const {
  if (address < kShadowStart || address >= kShadowEnd) return PamMode::Off;
  for (const PamSegment& s : pam_segments()) {
    if (address - s.base < s.size) return segment_mode(s);
  }
  return PamMode::Off;
}

void I440fxHostBridge::config_written(uint8_t reg, unsigned size) {
  if (reg <= kPamLast && kPam0 < reg + size) report_pam_changes();
  if (reg <= kSmram && kSmram < reg + size) apply_smram_lock();
}

void I440fxHostBridge::reset_done() { report_pam_changes(); }

void I440fxHostBridge::report_pam_changes() {
  const auto& segments = pam_segments();
  for (unsigned i = 0; i < kPamSegmentCount; ++i) {
    const PamMode mode = segment_mode(segments[i]);
    if (mode == reported_[i]) continue;
    reported_[i] = mode;
    if (pam_listener_) pam_listener_(segments[i].base, segments[i].size, mode);
  }
}

void I440fxHostBridge::apply_smram_lock() {
  const uint8_t value = config_byte(kSmram);
  if ((value & kSmramLock) == 0) return;
  store(kSmram, 1, static_cast<uint8_t>(value & ~kSmramOpen));
  set_writable(kSmram, 1, kSmramClose);
}

}  // namespace vmm86
