// Motorola MC146818 real-time clock with 128 bytes of CMOS RAM, at ports 0x70 (index,
// bit 7 masks NMI) and 0x71 (data); interrupts on IRQ 8.
// Time: the RTC starts from a Unix time given by the platform (normally the host's wall
// clock) and then advances with the virtual clock, so tests that drive a manual clock see
// exact seconds. Time registers are formatted on every read in BCD or binary, 12- or
// 24-hour, as register B says. UIP reads 1 during the last 244 us of every second (the
// chip raises it that long before an update), so a guest that spins on UIP sees it clear
// once virtual time passes the second boundary.
// Interrupts: update-ended (every second), alarm (checked at each update, 0xC0-0xFF
// "don't care"), periodic (rate from register A). Flags are set whether or not they are
// enabled; IRQ 8 is high while an enabled flag is set, and reading register C clears
// them all. Stopping the clock (register B SET or divider reset in register A) freezes
// the time registers for the guest to rewrite; restarting takes the new time. The
// daylight-saving bit is stored but ignored.
#pragma once

#include <array>
#include <cstdint>

#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"
#include "devices/io_device.h"
#include "devices/irq_line.h"

namespace vmm86 {

class RtcCmos final : public PortIoDevice {
 public:
  static constexpr unsigned kCmosSize = 128;
  /// CMOS RAM locations the platform fills in (IBM PC/AT layout).
  enum CmosIndex : uint8_t {
    kRegA = 0x0A,
    kRegB = 0x0B,
    kRegC = 0x0C,
    kRegD = 0x0D,
    kShutdownStatus = 0x0F,
    kFloppyTypes = 0x10,  ///< drive A's type in the high nibble, B's in the low one
    kEquipment = 0x14,
    kBaseMemLow = 0x15,  ///< base memory in KiB (640)
    kBaseMemHigh = 0x16,
    kExtMemLow = 0x17,  ///< memory above 1 MiB in KiB, at most 0xFFFF
    kExtMemHigh = 0x18,
    kChecksumHigh = 0x2E,  ///< sum of 0x10-0x2D, big-endian
    kChecksumLow = 0x2F,
    kExtMem2Low = 0x30,  ///< copy of 0x17-0x18
    kExtMem2High = 0x31,
    kCentury = 0x32,
    kHighMemLow = 0x34,  ///< memory above 16 MiB in 64 KiB units, at most 0xFFFF
    kHighMemHigh = 0x35,
    kBootOrderThird = 0x38,        ///< QEMU/SeaBIOS: high nibble the third boot device
    kBootOrderFirstSecond = 0x3D,  ///< QEMU/SeaBIOS: low nibble the first, high the second
  };

  RtcCmos(const VirtualClock& clock, TimerQueue& timers, IrqLine irq8, int64_t start_unix_ns);
  RtcCmos(const RtcCmos&) = delete;
  /// System reset (the RESET pin): the interrupt enables and the square wave in register B
  /// and the flags in register C clear; the time and the CMOS RAM stay (battery-backed).
  void reset();
  RtcCmos& operator=(const RtcCmos&) = delete;

  /// Offset 0: index port (reads 0xFF, it is write-only); offset 1: data port.
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Port 0x70 bit 7 as last written.
  [[nodiscard]] bool nmi_masked() const { return nmi_masked_; }
  /// Raw CMOS storage, without read side effects (registers A-D are kept here too).
  [[nodiscard]] uint8_t cmos_byte(uint8_t index) const { return cmos_[index & 0x7F]; }
  /// For the platform: sets a CMOS RAM byte (0x0E-0x7F) before the guest runs; the
  /// checksum (0x2E-0x2F) follows a byte it covers (0x10-0x2D).
  void set_cmos_byte(uint8_t index, uint8_t value);
  /// Fills in the memory size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35) and the checksum.
  void set_memory_size(uint64_t ram_below_4g_bytes);
  /// The time the RTC holds now, in ns since the Unix epoch.
  [[nodiscard]] int64_t unix_time_ns() const;

 private:
  [[nodiscard]] uint8_t read_register(uint8_t index);
  /// 0x2E-0x2F: the sum of 0x10-0x2D.
  void update_checksum();
  void write_register(uint8_t index, uint8_t value);
  [[nodiscard]] bool running() const;
  [[nodiscard]] bool divider_running() const;
  /// Freezes the time into the time registers (SET, divider reset, or a guest write).
  void halt();
  /// Restarts from the time registers plus halted_fraction_ns_.
  void resume();
  /// Re-evaluates run state, timers and IRQ 8 after register A or B changed.
  void reconfigure(bool was_divider_running);
  [[nodiscard]] uint8_t format_time_register(uint8_t index, int64_t unix_seconds) const;
  [[nodiscard]] int64_t parse_time_registers() const;
  [[nodiscard]] bool alarm_matches(int64_t unix_seconds) const;
  [[nodiscard]] uint64_t periodic_ticks() const;  ///< period in 32.768 kHz ticks, 0 = off
  [[nodiscard]] uint64_t periodic_index(uint64_t vns) const;
  void arm_update_timer();
  void arm_periodic_timer();
  void on_update();
  void on_periodic();
  void update_irq();

  const VirtualClock& clock_;
  IrqLine irq_;
  std::array<uint8_t, kCmosSize> cmos_{};
  uint8_t index_ = 0;
  bool nmi_masked_ = false;
  bool running_ = true;
  int64_t base_unix_ns_ = 0;  ///< running: RTC time at base_vns_; halted: the frozen time
  uint64_t base_vns_ = 0;
  int64_t halted_fraction_ns_ = 0;  ///< sub-second part to resume with
  uint64_t last_c_read_vns_ = 0;    ///< for periodic flags with PIE off
  DeviceTimer update_timer_;
  DeviceTimer periodic_timer_;
};

}  // namespace vmm86
