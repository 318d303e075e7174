// Intel 82371AB PIIX4 function 3, power management at 00:01.3 (8086:7113, revision 03,
// class 0x068000), the ACPI hardware that SeaBIOS programs and Linux drives through
// the FADT. Configuration registers (82371AB datasheet, function 3):
//   * PMBA (0x40): base of the 64-byte PM I/O block (bits 15:6; bit 0 reads 1, "I/O").
//     The block decodes while PMREGMISC (0x80) bit 0 is set, independent of PCICMD.
//     It is region pm_io_region(): attach pm_io() there with a PciRegionMapper.
//   * SMBBA (0x90) and SMBHSTCFG (0xD2): the SMBus base, stored only (no SMBus here).
//   * DEVACTB (0x58): byte 0x5B resets to 0x02, APMC_EN set, as QEMU's pc machine with
//     SMM off does: SeaBIOS's piix4_apmc_smm_setup() (fw/smm.c) takes APMC_EN as "SMM
//     is already initialised" and returns; clear, it would raise an SMI through port
//     0xB2 and spin until the (absent) SMI handler writes 0xB3.
// The PM I/O block (offsets from PMBA):
//   0x00 PMSTS: TMROF_STS (0), BM_STS (4), GBL_STS (5), PWRBTN_STS (8), RTC_STS (10),
//        PWRBTNOR_STS (11), RSM_STS (15); write 1 to clear.
//   0x02 PMEN: TMROF_EN (0), GBL_EN (5), PWRBTN_EN (8), RTC_EN (10).
//   0x04 PMCNTRL: SCI_EN (0), BRLD_EN_BM (1), SUS_TYP (12:10), SUS_EN (13, write-only).
//        SUS_EN with SUS_TYP 000 (soft off, ACPI S5: SeaBIOS's ssdt-misc.dsl has \_S5 = 0) calls
//        the power-off callback; the other sleep types are not implemented.
//   0x08 PMTMR: the 24-bit ACPI PM timer, 3.579545 MHz, from the virtual clock.
//        TMROF_STS is set each time bit 23 changes (every 2^23 ticks, 2.34 s).
//   0x0C GPSTS (write 1 to clear) and 0x0E GPEN: general-purpose events (GPE0).
//   0x10-0x3F: processor, global and device control; storage (status parts read 0).
// SCI: IRQ 9 (PIIX4 routes SCI there), level, high while SCI_EN is set and an enabled
// PMSTS or GPSTS event is pending. The overflow timer is armed only while TMROF_EN and
// SCI_EN are both set; otherwise TMROF_STS is brought up to date when PMSTS is read.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"
#include "devices/io_device.h"
#include "devices/irq_line.h"
#include "devices/pci/pci_function.h"

namespace vmm86 {

class Piix4Pm final : public PciFunction {
 public:
  static constexpr uint16_t kVendorId = 0x8086;
  static constexpr uint16_t kDeviceId = 0x7113;
  static constexpr uint8_t kRevision = 0x03;
  static constexpr uint8_t kPmBase = 0x40;           ///< PMBA
  static constexpr uint8_t kDeviceActivityB = 0x58;  ///< DEVACTB
  static constexpr uint8_t kPmRegMisc = 0x80;        ///< PMREGMISC
  static constexpr uint8_t kSmbusBase = 0x90;        ///< SMBBA
  static constexpr uint8_t kSmbusHostConfig = 0xD2;  ///< SMBHSTCFG
  static constexpr uint32_t kPmIoSize = 64;
  static constexpr uint64_t kTimerHz = 3'579'545;
  static constexpr uint32_t kTimerMask = 0x00FF'FFFF;
  static constexpr unsigned kSciIrq = 9;
  /// SeaBIOS's FADT ACPI_ENABLE / ACPI_DISABLE values for the SMI command port (0xB2).
  static constexpr uint8_t kAcpiEnable = 0xF1;
  static constexpr uint8_t kAcpiDisable = 0xF0;

  /// PM I/O block offsets.
  enum PmRegister : uint8_t { PMSTS = 0x00, PMEN = 0x02, PMCNTRL = 0x04, PMTMR = 0x08, GPSTS = 0x0C, GPEN = 0x0E };
  /// PMSTS / PMEN bits.
  static constexpr uint16_t kTimerOverflow = 1u << 0;
  static constexpr uint16_t kGlobal = 1u << 5;
  static constexpr uint16_t kPowerButton = 1u << 8;
  static constexpr uint16_t kRtcAlarm = 1u << 10;
  /// PMCNTRL bits.
  static constexpr uint16_t kSciEnable = 1u << 0;
  static constexpr unsigned kSleepTypeShift = 10;
  static constexpr uint16_t kSleepEnable = 1u << 13;

  /// `clock`, `timers` and the device behind `sci` (normally IRQ 9) must outlive it.
  Piix4Pm(const VirtualClock& clock, TimerQueue& timers, IrqLine sci);

  /// The PM I/O block device and its region index (for PciRegionMapper::attach_io).
  [[nodiscard]] PortIoDevice& pm_io() { return pm_io_; }
  /// GPE0 status and enable (the block's GPSTS/GPEN) where QEMU's FADT, which SeaBIOS
  /// copies, says they are: 4 ports at kQemuGpeBlockPort, fixed.
  static constexpr uint16_t kQemuGpeBlockPort = 0xAFE0;
  static constexpr uint32_t kGpeBlockSize = 4;
  [[nodiscard]] PortIoDevice& gpe_block() { return gpe_io_; }
  [[nodiscard]] unsigned pm_io_region() const { return pm_region_; }
  [[nodiscard]] std::optional<uint32_t> pm_io_base() const { return region(pm_region_).base; }
  /// SMBBA's base while SMBHSTCFG bit 0 and PCICMD I/O are on (nothing decodes it).
  [[nodiscard]] std::optional<uint32_t> smbus_base() const;

  /// Called from inside the guest's write that enters S5; should only set a flag.
  void set_power_off(std::function<void()> callback) { power_off_ = std::move(callback); }
  /// A byte written to the APM command port 0xB2 (ApmControl's handler): ACPI enable and
  /// disable set and clear SCI_EN, which is what the firmware's SMI handler would do.
  void apm_command(uint8_t command);
  /// The power button: sets PWRBTN_STS (an SCI if PWRBTN_EN), for an ACPI shutdown.
  void press_power_button();
  /// Sets GPSTS bits (general-purpose events).
  void raise_gpe(uint16_t bits);

  [[nodiscard]] uint32_t timer_value() const { return static_cast<uint32_t>(ticks_now()) & kTimerMask; }
  [[nodiscard]] uint16_t pm_status() const { return pm1_status_; }
  [[nodiscard]] uint16_t pm_control() const { return pm1_control_; }
  [[nodiscard]] bool sci_level() const { return sci_.level(); }

 private:
  /// The PM block, or a part of it seen from elsewhere, from offset `first` on.
  class PmIo final : public PortIoDevice {
   public:
    PmIo(Piix4Pm& pm, uint16_t first) : pm_(pm), first_(first) {}
    uint32_t read(uint16_t offset, unsigned size) override {
      return pm_.pm_read(static_cast<uint16_t>(first_ + offset), size);
    }
    void write(uint16_t offset, unsigned size, uint32_t value) override {
      pm_.pm_write(static_cast<uint16_t>(first_ + offset), size, value);
    }

   private:
    Piix4Pm& pm_;
    uint16_t first_;
  };

  [[nodiscard]] std::optional<uint32_t> custom_region_base(unsigned region) const override;
  void reset_done() override;

  uint32_t pm_read(uint16_t offset, unsigned size);
  void pm_write(uint16_t offset, unsigned size, uint32_t value);
  [[nodiscard]] uint8_t read_byte(uint16_t offset, uint32_t timer) const;
  void write_byte(uint16_t offset, uint8_t value);

  [[nodiscard]] uint64_t ticks_now() const;
  /// Sets TMROF_STS if bit 23 of the counter changed since the last look.
  void sync_timer_status(uint64_t now_ns);
  void arm_overflow_timer();
  void update_sci();
  void on_overflow_timer(uint64_t now_ns);

  const VirtualClock& clock_;
  IrqLine sci_;
  DeviceTimer overflow_timer_;
  PmIo pm_io_;
  PmIo gpe_io_;
  unsigned pm_region_;
  uint64_t timer_start_ns_;
  uint64_t overflow_count_ = 0;  ///< counter >> 23 when TMROF_STS was last brought up to date
  uint16_t pm1_status_ = 0;
  uint16_t pm1_enable_ = 0;
  uint16_t pm1_control_ = 0;
  uint16_t gp_status_ = 0;
  uint16_t gp_enable_ = 0;
  std::array<uint8_t, kPmIoSize> storage_{};
  std::function<void()> power_off_;
};

}  // namespace vmm86
