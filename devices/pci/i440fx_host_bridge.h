// Intel 82441FX PMC, the i440FX host bridge at 00:00.0 (8086:1237, revision 02, class
// 0x060000). What firmware and Linux need of it:
//   * PAM0-PAM6 (0x59-0x5F): read/write enables for the 13 shadow segments between
//     0xC0000 and 0xFFFFF (82441FX datasheet, PAM[6:0] register). PAM0's high nibble is the
//     64 KiB system BIOS area 0xF0000-0xFFFFF (its low nibble is reserved); each further
//     nibble is a 16 KiB piece from 0xC0000 up, low nibble first. In each nibble bit 0 is
//     RE, bit 1 WE; bits 2-3 are reserved (caching is the CPU's MTRRs' business). The
//     machine remaps memory when a segment's mode changes (listener).
//   * SMRAM (0x72): stored with its lock semantics; SMM itself is not implemented.
// Every other device-specific register (DRB, DRAM timing, error command) is storage.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "devices/pci/pci_function.h"

namespace vmm86 {

/// Where a shadow segment's accesses go: bit 0 RE (reads hit DRAM), bit 1 WE (writes).
/// The other direction goes to PCI (the BIOS ROM, or nothing).
enum class PamMode : uint8_t { Off = 0, ReadOnly = 1, WriteOnly = 2, ReadWrite = 3 };

class I440fxHostBridge final : public PciFunction {
 public:
  static constexpr uint16_t kVendorId = 0x8086;
  static constexpr uint16_t kDeviceId = 0x1237;
  static constexpr uint8_t kRevision = 0x02;
  static constexpr uint8_t kPam0 = 0x59;
  static constexpr uint8_t kSmram = 0x72;
  static constexpr unsigned kPamSegmentCount = 13;

  struct PamSegment {
    uint32_t base;
    uint32_t size;
    uint8_t reg;    ///< PAM register offset
    uint8_t shift;  ///< 0: low nibble, 4: high nibble
  };
  [[nodiscard]] static const std::array<PamSegment, kPamSegmentCount>& pam_segments();

  /// Called for each segment whose mode changed (a PAM write or reset).
  using PamListener = std::function<void(uint32_t base, uint32_t size, PamMode mode)>;

  /// The 82441FX has no subsystem IDs (0); QEMU's gives 1AF4:1100, which SeaBIOS takes as
  /// "running on QEMU" and then reads the machine from fw_cfg (bootorder, sercon-port...).
  static constexpr uint16_t kQemuSubsystemVendorId = 0x1AF4;
  static constexpr uint16_t kQemuSubsystemId = 0x1100;
  explicit I440fxHostBridge(uint16_t subsystem_vendor_id = 0, uint16_t subsystem_id = 0);

  void set_pam_listener(PamListener listener) { pam_listener_ = std::move(listener); }
  /// The mode of the segment that holds `address` (Off outside 0xC0000-0xFFFFF).
  [[nodiscard]] PamMode pam_mode(uint32_t address) const;
  [[nodiscard]] uint8_t smram() const { return config_byte(kSmram); }

 private:
  void config_written(uint8_t reg, unsigned size) override;
  void reset_done() override;
  void report_pam_changes();
  void apply_smram_lock();
  [[nodiscard]] PamMode segment_mode(const PamSegment& segment) const;

  std::array<PamMode, kPamSegmentCount> reported_{};
  PamListener pam_listener_;
};

}  // namespace vmm86
