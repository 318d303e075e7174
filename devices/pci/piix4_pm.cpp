#include "devices/pci/piix4_pm.h"

namespace vmm86 {
namespace {

constexpr uint32_t kBridgeOtherClass = 0x068000;
constexpr uint8_t kIntA = 1;  // INTPN reads 01h
// PCICMD: only IOSE (which gates the SMBus registers) is writable; PCISTS: fast
// back-to-back capable, medium DEVSEL.
constexpr uint16_t kCommandWritable = pci_command::kIoSpace;
constexpr uint16_t kStatusReset = 0x0280;

constexpr uint32_t kIoIndicator = 0x1;  // bit 0 of PMBA and SMBBA
constexpr uint32_t kPmBaseMask = 0xFFC0;
constexpr uint32_t kSmbusBaseMask = 0xFFF0;
constexpr uint32_t kSmbusSize = 16;
constexpr uint32_t kDeviceActivityBReset = 0x0200'0000;  // byte 0x5B = 0x02: APMC_EN
constexpr uint8_t kPmIoEnable = 0x01;                    // PMREGMISC.PMIOSE
constexpr uint8_t kSmbusHostEnable = 0x01;               // SMBHSTCFG.SMB_HST_EN

constexpr uint16_t kPmStatusBits = 0x8D31;  // the PMSTS bits that exist, all write-1-to-clear
constexpr uint16_t kPmEnableBits = Piix4Pm::kTimerOverflow | Piix4Pm::kGlobal | Piix4Pm::kPowerButton |
                                   Piix4Pm::kRtcAlarm;
constexpr uint16_t kPmControlBits = 0x1C03;  // SCI_EN, BRLD_EN_BM, SUS_TYP; SUS_EN and GBL_RLS read 0
constexpr unsigned kSleepTypeMask = 0x7;
constexpr unsigned kSoftOff = 0;  // SUS_TYP 000

// Offsets 0x10-0x3F: processor control (PCNTRL, P_LVL2/3 read 0 and are not honoured),
// global and device status (no event sources: read 0), the rest storage.
constexpr uint16_t kProcessorLevel2 = 0x14;
constexpr uint16_t kProcessorLevel3 = 0x15;
constexpr uint16_t kGlobalStatus = 0x18;     // GLBSTS, 0x18-0x19
constexpr uint16_t kDeviceStatusEnd = 0x20;  // DEVSTS ends at 0x1F

constexpr unsigned kOverflowShift = 23;  // TMROF_STS: the counter's bit 23 changed
constexpr uint64_t kNsPerSecond = 1'000'000'000;

// Exact in 64 bits: the whole seconds and the remainder are scaled separately.
constexpr uint64_t ticks_after(uint64_t ns) {
  return ns / kNsPerSecond * Piix4Pm::kTimerHz + ns % kNsPerSecond * Piix4Pm::kTimerHz / kNsPerSecond;
}
// The first ns at which ticks_after() reaches `ticks`.
constexpr uint64_t ns_until(uint64_t ticks) {
  const uint64_t rest = ticks % Piix4Pm::kTimerHz * kNsPerSecond;
  return ticks / Piix4Pm::kTimerHz * kNsPerSecond + (rest + Piix4Pm::kTimerHz - 1) / Piix4Pm::kTimerHz;
}

constexpr uint8_t byte_of(uint32_t value, unsigned i) { return static_cast<uint8_t>(value >> (8 * i)); }

// Replaces byte `i` of a 16-bit register.
constexpr uint16_t with_byte(uint16_t reg, unsigned i, uint8_t value) {
  const unsigned shift = 8 * i;
  return static_cast<uint16_t>((reg & ~(0xFFu << shift)) | (unsigned{value} << shift));
}

}  // namespace

Piix4Pm::Piix4Pm(const VirtualClock& clock, TimerQueue& timers, IrqLine sci)
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = kRevision,
                              .class_code = kBridgeOtherClass,
                              .header_type = 0,
                              .subsystem_vendor_id = 0,
                              .subsystem_id = 0,
                              .interrupt_pin = kIntA}),
      clock_(clock),
      sci_(sci),
      overflow_timer_(timers, [this](uint64_t now_ns) { on_overflow_timer(now_ns); }),
      pm_io_(*this, 0),
      gpe_io_(*this, GPSTS),
      pm_region_(add_custom_region(PciSpace::Io, kPmIoSize)),
      timer_start_ns_(clock.now_ns()) {
  define_register(pci_reg::kCommand, 2, 0, kCommandWritable);
  define_register(pci_reg::kStatus, 2, kStatusReset, 0, pci_status::kWriteOneToClear);
  define_register(kPmBase, 4, kIoIndicator, kPmBaseMask);
  define_register(kDeviceActivityB, 4, kDeviceActivityBReset, 0xFFFF'FFFF);
  define_register(kPmRegMisc, 1, 0, kPmIoEnable);
  define_register(kSmbusBase, 4, kIoIndicator, kSmbusBaseMask);
}

std::optional<uint32_t> Piix4Pm::custom_region_base(unsigned region) const {
  if (region != pm_region_ || (config_byte(kPmRegMisc) & kPmIoEnable) == 0) return std::nullopt;
  const uint32_t base = config_dword(kPmBase) & kPmBaseMask;
  if (base == 0) return std::nullopt;
  return base;
}

std::optional<uint32_t> Piix4Pm::smbus_base() const {
  if ((config_byte(kSmbusHostConfig) & kSmbusHostEnable) == 0 || !io_space_enabled()) return std::nullopt;
  const uint32_t base = config_dword(kSmbusBase) & kSmbusBaseMask & ~(kSmbusSize - 1);
  if (base == 0) return std::nullopt;
  return base;
}

void Piix4Pm::reset_done() {
  pm1_status_ = pm1_enable_ = pm1_control_ = gp_status_ = gp_enable_ = 0;
  storage_.fill(0);
  update_sci();
  arm_overflow_timer();
}

void Piix4Pm::apm_command(uint8_t command) {
  if (command == kAcpiEnable) {
    pm1_control_ |= kSciEnable;
  } else if (command == kAcpiDisable) {
    pm1_control_ &= static_cast<uint16_t>(~kSciEnable);
  } else {
    return;
  }
  sync_timer_status(clock_.now_ns());
  update_sci();
  arm_overflow_timer();
}

void Piix4Pm::press_power_button() {
  pm1_status_ |= kPowerButton;
  update_sci();
}

void Piix4Pm::raise_gpe(uint16_t bits) {
  gp_status_ |= bits;
  update_sci();
}

uint64_t Piix4Pm::ticks_now() const { return ticks_after(clock_.now_ns() - timer_start_ns_); }

void Piix4Pm::sync_timer_status(uint64_t now_ns) {
  const uint64_t count = ticks_after(now_ns - timer_start_ns_) >> kOverflowShift;
  if (count == overflow_count_) return;
  overflow_count_ = count;
  pm1_status_ |= kTimerOverflow;
}

void Piix4Pm::arm_overflow_timer() {
  if ((pm1_enable_ & kTimerOverflow) == 0 || (pm1_control_ & kSciEnable) == 0) {
    overflow_timer_.disarm();
    return;
  }
  overflow_timer_.arm(timer_start_ns_ + ns_until((overflow_count_ + 1) << kOverflowShift));
}

void Piix4Pm::on_overflow_timer(uint64_t now_ns) {
  sync_timer_status(now_ns);
  update_sci();
  arm_overflow_timer();
}

void Piix4Pm::update_sci() {
  const bool pending = (pm1_status_ & pm1_enable_) != 0 || (gp_status_ & gp_enable_) != 0;
  sci_.set_level((pm1_control_ & kSciEnable) != 0 && pending);
}

uint32_t Piix4Pm::pm_read(uint16_t offset, unsigned size) {
  sync_timer_status(clock_.now_ns());
  update_sci();
  const uint32_t timer = timer_value();  // one sample for all bytes of the access
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint32_t{read_byte(static_cast<uint16_t>(offset + i), timer)} << (8 * i);
  return value;
}

void Piix4Pm::pm_write(uint16_t offset, unsigned size, uint32_t value) {
  sync_timer_status(clock_.now_ns());
  for (unsigned i = 0; i < size; ++i) write_byte(static_cast<uint16_t>(offset + i), byte_of(value, i));
  update_sci();
  arm_overflow_timer();
}

uint8_t Piix4Pm::read_byte(uint16_t offset, uint32_t timer) const {
  const unsigned lane = offset & 1u;
  switch (offset & ~1u) {
    case PMSTS: return byte_of(pm1_status_, lane);
    case PMEN: return byte_of(pm1_enable_, lane);
    case PMCNTRL: return byte_of(pm1_control_, lane);
    case PMTMR:
    case PMTMR + 2: return byte_of(timer, offset - PMTMR);
    case GPSTS: return byte_of(gp_status_, lane);
    case GPEN: return byte_of(gp_enable_, lane);
    default: break;
  }
  if (offset == kProcessorLevel2 || offset == kProcessorLevel3) return 0;
  if (offset >= kGlobalStatus && offset < kDeviceStatusEnd) return 0;
  return offset < kPmIoSize ? storage_[offset] : 0xFF;
}

void Piix4Pm::write_byte(uint16_t offset, uint8_t value) {
  const unsigned lane = offset & 1u;
  switch (offset & ~1u) {
    case PMSTS: pm1_status_ &= static_cast<uint16_t>(~(with_byte(0, lane, value) & kPmStatusBits)); return;
    case PMEN: pm1_enable_ = with_byte(pm1_enable_, lane, value) & kPmEnableBits; return;
    case PMCNTRL: {
      const uint16_t written = with_byte(pm1_control_, lane, value);
      pm1_control_ = written & kPmControlBits;
      if (lane == 1 && (written & kSleepEnable) != 0 && ((written >> kSleepTypeShift) & kSleepTypeMask) == kSoftOff &&
          power_off_) {
        power_off_();
      }
      return;
    }
    case PMTMR:
    case PMTMR + 2: return;  // read-only
    case GPSTS: gp_status_ &= static_cast<uint16_t>(~with_byte(0, lane, value)); return;
    case GPEN: gp_enable_ = with_byte(gp_enable_, lane, value); return;
    default: break;
  }
  if (offset == kProcessorLevel2 || offset == kProcessorLevel3) return;
  if (offset >= kGlobalStatus && offset < kDeviceStatusEnd) return;
  if (offset < kPmIoSize) storage_[offset] = value;
}

}  // namespace vmm86
