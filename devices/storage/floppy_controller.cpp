#include "devices/storage/floppy_controller.h"

#include <algorithm>

namespace vmm86 {

// Registers (offsets from 0x3F0).
namespace {
constexpr unsigned kRegSra = 0;
constexpr unsigned kRegSrb = 1;
constexpr unsigned kRegDor = 2;
constexpr unsigned kRegTdr = 3;
constexpr unsigned kRegMsrDsr = 4;
constexpr unsigned kRegFifo = 5;
constexpr unsigned kRegDirCcr = 7;

constexpr uint8_t kDorSelect = 0x03;
constexpr uint8_t kDorNotReset = 0x04;
constexpr uint8_t kDorDmaGate = 0x08;
constexpr uint8_t kDsrReset = 0x80;
constexpr uint8_t kRateMask = 0x03;
constexpr uint8_t kDirDiskChange = 0x80;

constexpr uint8_t kMsrRqm = 0x80;
constexpr uint8_t kMsrDio = 0x40;
constexpr uint8_t kMsrBusy = 0x10;

// Status register bits.
constexpr uint8_t kSt0Abnormal = 0x40;
constexpr uint8_t kSt0Invalid = 0x80;
constexpr uint8_t kSt0Polled = 0xC0;  ///< IC 11: ready line changed (the reset's polling)
constexpr uint8_t kSt0SeekEnd = 0x20;
constexpr uint8_t kSt0EquipmentCheck = 0x10;
constexpr uint8_t kSt1EndOfCylinder = 0x80;
constexpr uint8_t kSt1DataError = 0x20;
constexpr uint8_t kSt1NoData = 0x04;
constexpr uint8_t kSt1NotWritable = 0x02;
constexpr uint8_t kSt1MissingAddressMark = 0x01;
constexpr uint8_t kSt2DataErrorInData = 0x20;
constexpr uint8_t kSt3WriteProtect = 0x40;
constexpr uint8_t kSt3Ready = 0x20;  ///< always 1 on the 82077AA
constexpr uint8_t kSt3Track0 = 0x10;
constexpr uint8_t kSt3TwoSide = 0x08;  ///< always 1 on the 82077AA

// Command byte bits.
constexpr uint8_t kCmdMultiTrack = 0x80;
constexpr uint8_t kCmdMfm = 0x40;
constexpr uint8_t kCmdLock = 0x80;
constexpr uint8_t kCmdRelativeInward = 0x40;
constexpr uint8_t kPerpendicularOverwrite = 0x80;

/// CONFIGURE after a hardware reset: FIFO disabled (EFIFO), polling enabled, no implied seeks.
constexpr uint8_t kConfigDefault = 0x20;
constexpr uint8_t kConfigPollDisabled = 0x10;
constexpr uint8_t kResetPolls = 4;

/// The drive select and head bits of a command's second byte.
constexpr uint8_t drive_of(uint8_t byte) { return byte & 3; }
constexpr uint8_t head_of(uint8_t byte) { return (byte >> 2) & 1; }

/// No command byte selects two rows of kFdcCommands.
constexpr bool commands_unambiguous() {
  for (unsigned byte = 0; byte < 256; ++byte) {
    int rows = 0;
    for (const FdcCommandSpec& spec : kFdcCommands) rows += (byte & spec.mask) == spec.opcode ? 1 : 0;
    if (rows > 1) return false;
  }
  return true;
}
static_assert(commands_unambiguous(), "two rows of kFdcCommands match one command byte");

}  // namespace

FloppyController::FloppyController(IsaDma& dma, IrqLine irq, unsigned dma_channel)
    : dma_(dma), irq_(irq), dma_channel_(dma_channel) {
  dma_.attach(dma_channel_, this);
  reset();
}

FloppyController::~FloppyController() { dma_.attach(dma_channel_, nullptr); }

void FloppyController::attach(unsigned index, std::unique_ptr<FloppyDrive> drive) {
  if (index < kDrives) drives_[index] = std::move(drive);
}

FloppyDrive* FloppyController::drive(unsigned index) const { return drive_at(static_cast<uint8_t>(index)); }

uint8_t FloppyController::cmos_drive_types() const {
  auto type = [this](unsigned i) { return drives_[i] ? drives_[i]->format().cmos_type : uint8_t{0}; };
  return static_cast<uint8_t>(type(0) << 4 | type(1));
}

BusStatus FloppyController::register_ports(IoBus& bus) {
  const BusStatus main = bus.add(kBase, kMainPorts, main_window_, "fdc", 1);
  if (main != BusStatus::Ok) return main;
  return bus.add(kDirPort, 1, dir_window_, "fdc-dir", 1);
}

bool FloppyController::flush_disks() {
  bool ok = true;
  for (const auto& drive : drives_) ok = (drive == nullptr || drive->flush()) && ok;
  return ok;
}

void FloppyController::reset() {
  dor_ = kDorNotReset | kDorDmaGate;
  tdr_ = 0;
  dsr_ = 0;
  rate_ = static_cast<uint8_t>(FloppyRate::Kbps500);  // QEMU's; the Bochs BIOS never sets one
  in_reset_ = false;
  specify_ = {};
  config_ = kConfigDefault;
  pretrk_ = 0;
  perpendicular_ = 0;
  lock_ = false;
  last_eot_ = 0;
  pcn_ = {};
  stats_ = {};
  clear_command_state();
}

void FloppyController::clear_command_state() {
  if (transfer_) dma_.set_dreq(dma_channel_, false);
  transfer_.reset();
  phase_ = Phase::Command;
  command_len_ = 0;
  command_spec_ = nullptr;
  result_len_ = 0;
  result_pos_ = 0;
  result_irq_ = false;
  reset_irq_ = false;
  reset_polls_ = 0;
  seek_st0_ = {};
  update_irq();
}

void FloppyController::finish_reset() {
  clear_command_state();
  if (!lock_) {
    config_ = kConfigDefault;
    pretrk_ = 0;
  }
  perpendicular_ &= 0x3C;  // a software reset clears GAP and WGATE, keeps the drive bits
  if ((config_ & kConfigPollDisabled) == 0) {
    reset_irq_ = true;
    reset_polls_ = kResetPolls;
  }
  update_irq();
}

void FloppyController::update_irq() {
  bool pending = result_irq_ || reset_irq_;
  for (const auto& st0 : seek_st0_) pending = pending || st0.has_value();
  // In PC-AT mode the DMA gate bit enables the INT pin as well as DRQ.
  irq_.set_level(pending && !in_reset_ && (dor_ & kDorDmaGate) != 0);
}

// ---- Registers ------------------------------------------------------------------------

uint32_t FloppyController::Window::read(uint16_t offset, unsigned /*size*/) {
  return fdc_.read_register(first_ + offset);
}

void FloppyController::Window::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  fdc_.write_register(first_ + offset, static_cast<uint8_t>(value));
}

uint8_t FloppyController::read_register(unsigned reg) {
  switch (reg) {
    case kRegDor: return dor_;
    case kRegTdr: return tdr_;
    case kRegMsrDsr: return main_status();
    case kRegFifo: return read_fifo();
    case kRegDirCcr: {
      const FloppyDrive* drive = drive_at(dor_ & kDorSelect);
      return drive != nullptr && drive->disk_changed() ? kDirDiskChange : 0;
    }
    case kRegSra:
    case kRegSrb:
    default: return 0xFF;  // SRA/SRB exist in PS/2 mode only
  }
}

void FloppyController::write_register(unsigned reg, uint8_t value) {
  if (reg == kRegDor) {
    write_dor(value);
    return;
  }
  if (in_reset_) return;  // only the DOR listens while reset is held
  switch (reg) {
    case kRegTdr: tdr_ = value & 3; break;
    case kRegMsrDsr:
      dsr_ = static_cast<uint8_t>(value & ~kDsrReset);
      rate_ = value & kRateMask;
      if ((value & kDsrReset) != 0) finish_reset();  // self-clearing software reset
      break;
    case kRegFifo: write_fifo(value); break;
    case kRegDirCcr: rate_ = value & kRateMask; break;
    default: break;
  }
}

void FloppyController::write_dor(uint8_t value) {
  const uint8_t old = dor_;
  dor_ = value;
  if ((value & kDorNotReset) == 0) {
    if ((old & kDorNotReset) != 0) {
      in_reset_ = true;
      clear_command_state();
    }
  } else if ((old & kDorNotReset) == 0) {
    in_reset_ = false;
    finish_reset();
  }
  // Opening the gate lets a transfer that waits assert DRQ.
  if (phase_ == Phase::Execution && (value & kDorDmaGate) != 0 && (old & kDorDmaGate) == 0) {
    dma_.set_dreq(dma_channel_, true);
  }
  update_irq();
}

uint8_t FloppyController::main_status() const {
  if (in_reset_) return 0;
  uint8_t msr = 0;
  for (unsigned d = 0; d < seek_st0_.size(); ++d) {
    if (seek_st0_[d]) msr |= static_cast<uint8_t>(1u << d);  // drive busy until SENSE INTERRUPT
  }
  switch (phase_) {
    case Phase::Command: return static_cast<uint8_t>(msr | kMsrRqm | (command_len_ > 0 ? kMsrBusy : 0));
    case Phase::Execution: return static_cast<uint8_t>(msr | kMsrBusy);
    case Phase::Result: return static_cast<uint8_t>(msr | kMsrRqm | kMsrDio | kMsrBusy);
  }
  return msr;
}

uint8_t FloppyController::read_fifo() {
  if (in_reset_ || phase_ != Phase::Result) return 0;
  const uint8_t value = result_[result_pos_++];
  if (result_pos_ == 1 && result_irq_) {
    result_irq_ = false;  // the first result byte clears a READ/WRITE/ID interrupt
    update_irq();
  }
  if (result_pos_ >= result_len_) command_done();
  return value;
}

void FloppyController::write_fifo(uint8_t value) {
  if (phase_ != Phase::Command) return;
  if (command_len_ == 0) {
    command_spec_ = find_fdc_command(value);
    if (command_spec_ == nullptr) {
      ++stats_.invalid_commands;
      enter_result({kSt0Invalid}, false);
      return;
    }
  }
  command_[command_len_++] = value;
  if (command_len_ == command_spec_->length) {
    ++stats_.commands;
    execute(command_spec_->command);
  }
}

void FloppyController::command_done() {
  phase_ = Phase::Command;
  command_len_ = 0;
  command_spec_ = nullptr;
}

void FloppyController::enter_result(std::initializer_list<uint8_t> bytes, bool interrupt) {
  std::copy(bytes.begin(), bytes.end(), result_.begin());
  result_len_ = static_cast<uint8_t>(bytes.size());
  result_pos_ = 0;
  phase_ = Phase::Result;
  if (interrupt) {
    result_irq_ = true;
    reset_irq_ = false;  // a new interrupt drops the reset's polling answers
    reset_polls_ = 0;
  }
  update_irq();
}

// ---- Commands without data ---------------------------------------------------------------

void FloppyController::execute(FdcCommand command) {
  const std::array<uint8_t, 9>& c = command_;
  switch (command) {
    case FdcCommand::ReadData: start_transfer(Transfer::Kind::Read); return;
    case FdcCommand::WriteData: start_transfer(Transfer::Kind::Write); return;
    case FdcCommand::FormatTrack: start_transfer(Transfer::Kind::Format); return;
    case FdcCommand::ReadId: read_id(); return;
    case FdcCommand::Seek: seek(drive_of(c[1]), head_of(c[1]), c[2]); return;
    case FdcCommand::RelativeSeek: {
      const int pcn = pcn_[drive_of(c[1])];
      const int target = (c[0] & kCmdRelativeInward) != 0 ? pcn + c[2] : pcn - c[2];
      seek(drive_of(c[1]), head_of(c[1]), static_cast<uint8_t>(std::clamp(target, 0, 255)));
      return;
    }
    case FdcCommand::Recalibrate: recalibrate(drive_of(c[1])); return;
    case FdcCommand::SenseInterrupt: sense_interrupt(); return;
    case FdcCommand::SenseDriveStatus: sense_drive_status(); return;
    case FdcCommand::DumpRegisters: dump_registers(); return;
    case FdcCommand::Version: enter_result({kVersion}, false); return;
    case FdcCommand::Lock:
      lock_ = (c[0] & kCmdLock) != 0;
      enter_result({static_cast<uint8_t>(lock_ ? 0x10 : 0)}, false);
      return;
    case FdcCommand::Specify: specify_ = {c[1], c[2]}; break;
    case FdcCommand::Configure:
      config_ = c[2] & 0x7F;
      pretrk_ = c[3];
      break;
    case FdcCommand::PerpendicularMode:
      if ((c[1] & kPerpendicularOverwrite) != 0) perpendicular_ = c[1] & 0x3C;
      perpendicular_ = static_cast<uint8_t>((perpendicular_ & 0x3C) | (c[1] & 0x03));
      break;
  }
  command_done();  // the commands without a result phase
}

void FloppyController::seek(uint8_t drive, uint8_t head, uint8_t cylinder) {
  if (FloppyDrive* d = drive_at(drive)) d->step_to(cylinder);
  pcn_[drive] = cylinder;
  seek_st0_[drive] = static_cast<uint8_t>(kSt0SeekEnd | head << 2 | drive);
  reset_irq_ = false;
  reset_polls_ = 0;
  command_done();
  update_irq();
}

void FloppyController::recalibrate(uint8_t drive) {
  FloppyDrive* d = drive_at(drive);
  seek(drive, 0, 0);
  // No drive: 79 step pulses without seeing track 0.
  if (d == nullptr) seek_st0_[drive] = static_cast<uint8_t>(kSt0Abnormal | kSt0SeekEnd | kSt0EquipmentCheck | drive);
}

void FloppyController::sense_interrupt() {
  if (reset_polls_ > 0) {
    const auto drive = static_cast<uint8_t>(kResetPolls - reset_polls_--);
    reset_irq_ = false;
    enter_result({static_cast<uint8_t>(kSt0Polled | drive), pcn_[drive]}, false);
    return;
  }
  for (uint8_t drive = 0; drive < seek_st0_.size(); ++drive) {
    if (!seek_st0_[drive]) continue;
    const uint8_t st0 = *seek_st0_[drive];
    seek_st0_[drive].reset();
    enter_result({st0, pcn_[drive]}, false);
    return;
  }
  enter_result({kSt0Invalid}, false);  // no interrupt to report
}

void FloppyController::sense_drive_status() {
  const uint8_t drive = drive_of(command_[1]);
  const FloppyDrive* d = drive_at(drive);
  uint8_t st3 = kSt3Ready | kSt3TwoSide | static_cast<uint8_t>(head_of(command_[1]) << 2) | drive;
  if (d == nullptr || d->write_protected()) st3 |= kSt3WriteProtect;
  if (d != nullptr && d->cylinder() == 0) st3 |= kSt3Track0;
  enter_result({st3}, false);
}

void FloppyController::dump_registers() {
  enter_result({pcn_[0], pcn_[1], pcn_[2], pcn_[3], specify_[0], specify_[1], last_eot_,
                static_cast<uint8_t>((lock_ ? 0x80 : 0) | perpendicular_), config_, pretrk_},
               false);
}

uint8_t FloppyController::medium_error(const FloppyDrive* drive, bool writing) const {
  // Without a disk, at another data rate or in FM, the controller finds no ID address mark.
  if (drive == nullptr || !drive->has_disk() || rate_ != static_cast<uint8_t>(drive->format().rate) ||
      (command_[0] & kCmdMfm) == 0) {
    return kSt1MissingAddressMark;
  }
  if (writing && drive->write_protected()) return kSt1NotWritable;
  return 0;
}

void FloppyController::read_id() {
  const uint8_t drive = drive_of(command_[1]);
  const uint8_t head = head_of(command_[1]);
  FloppyDrive* d = drive_at(drive);
  uint8_t st1 = medium_error(d, false);
  if (st1 == 0 && (d->cylinder() >= d->format().cylinders || head >= d->format().heads)) st1 = kSt1MissingAddressMark;
  const auto st0 = static_cast<uint8_t>((st1 != 0 ? kSt0Abnormal : 0) | head << 2 | drive);
  const uint8_t sector = st1 == 0 ? d->next_sector_id() : 1;
  enter_result({st0, st1, 0, pcn_[drive], head, sector, kFloppySizeCode}, true);
}

// ---- Data transfers ---------------------------------------------------------------------

void FloppyController::start_transfer(Transfer::Kind kind) {
  const std::array<uint8_t, 9>& c = command_;
  Transfer t;
  t.kind = kind;
  t.drive = drive_of(c[1]);
  t.head = head_of(c[1]);
  t.st0_head = t.head;
  FloppyDrive* drive = drive_at(t.drive);
  if (kind == Transfer::Kind::Format) {
    t.c = pcn_[t.drive];
    t.h = t.head;
    t.r = 1;
    t.n = c[2];
    t.format_left = c[3];
    t.format_fill = c[5];
  } else {
    t.c = c[2];
    t.h = c[3];
    t.r = c[4];
    t.n = c[5];
    t.eot = c[6];
    last_eot_ = t.eot;
    t.multi_track = (c[0] & kCmdMultiTrack) != 0;
  }
  transfer_ = t;
  phase_ = Phase::Execution;
  if (const uint8_t st1 = medium_error(drive, kind != Transfer::Kind::Read)) {
    end_transfer(kSt0Abnormal, st1, 0);
    return;
  }
  if (kind != Transfer::Kind::Format && drive->cylinder() != t.c) {
    drive->step_to(t.c);  // the implied seek
    pcn_[t.drive] = t.c;
    transfer_->seeked = true;
  }
  // DMA channel 2 answers now (dma_ready) or when the guest lets it run.
  if ((dor_ & kDorDmaGate) != 0) dma_.set_dreq(dma_channel_, true);
}

void FloppyController::dma_ready(unsigned /*channel*/) {
  if (!transfer_ || phase_ != Phase::Execution) {
    dma_.set_dreq(dma_channel_, false);
    return;
  }
  if (transfer_->kind == Transfer::Kind::Format) {
    run_format();
  } else {
    run_sectors();
  }
}

void FloppyController::run_sectors() {
  Transfer& t = *transfer_;
  FloppyDrive& drive = *drives_[t.drive];
  std::array<uint8_t, kFloppySectorSize> sector{};
  for (;;) {
    // The sector's ID must be on the track under the head.
    if (t.n != kFloppySizeCode || t.h != t.head || !drive.has_sector(t.c, t.h, t.r)) {
      end_transfer(kSt0Abnormal, kSt1NoData, 0);
      return;
    }
    IsaDmaTransfer moved;
    if (t.kind == Transfer::Kind::Read) {
      if (!drive.read_sector(t.c, t.h, t.r, sector)) {
        end_transfer(kSt0Abnormal, kSt1DataError, kSt2DataErrorInData);
        return;
      }
      moved = dma_.to_memory(dma_channel_, sector);
      if (moved.bytes == 0 && !moved.terminal_count) return;  // the channel stopped: wait for it
      ++stats_.sectors_read;
    } else {
      sector.fill(0);  // a count that ends inside the sector writes zeros after it
      moved = dma_.from_memory(dma_channel_, sector);
      if (moved.bytes == 0 && !moved.terminal_count) return;
      if (!drive.write_sector(t.c, t.h, t.r, sector)) {
        end_transfer(kSt0Abnormal, kSt1DataError, kSt2DataErrorInData);
        return;
      }
      ++stats_.sectors_written;
    }
    t.st0_head = t.head;
    const bool end_of_cylinder = advance(t);
    if (moved.terminal_count) {
      end_transfer(0, 0, 0);
      return;
    }
    if (end_of_cylinder) {
      end_transfer(kSt0Abnormal, kSt1EndOfCylinder, 0);
      return;
    }
  }
}

bool FloppyController::advance(Transfer& t) const {
  const FloppyFormat& format = drives_[t.drive]->format();
  if (t.r != t.eot && t.r < format.sectors) {
    ++t.r;
    return false;
  }
  t.r = 1;
  if (t.multi_track) {
    t.h ^= 1;  // the result shows the other side's H either way
    if (t.head == 0 && format.heads > 1) {
      t.head = 1;
      return false;
    }
  }
  ++t.c;
  return true;
}

void FloppyController::run_format() {
  Transfer& t = *transfer_;
  FloppyDrive& drive = *drives_[t.drive];
  std::array<uint8_t, kFloppySectorSize> sector{};
  sector.fill(t.format_fill);
  while (t.format_left > 0) {
    std::array<uint8_t, 4> id{};  // C, H, R, N of the sector to format, from memory
    const IsaDmaTransfer moved = dma_.from_memory(dma_channel_, id);
    if (moved.bytes == 0 && !moved.terminal_count) return;
    t.c = id[0];
    t.h = id[1];
    t.r = id[2];
    t.n = id[3];
    // Only sectors of the image's own layout can be stored.
    if (t.n == kFloppySizeCode && t.c == drive.cylinder() && t.h == t.head && drive.has_sector(t.c, t.h, t.r)) {
      if (!drive.write_sector(t.c, t.h, t.r, sector)) {
        end_transfer(kSt0Abnormal, kSt1DataError, 0);
        return;
      }
      ++stats_.sectors_written;
    }
    --t.format_left;
    if (moved.terminal_count) break;
  }
  end_transfer(0, 0, 0);
}

void FloppyController::end_transfer(uint8_t st0, uint8_t st1, uint8_t st2) {
  const Transfer t = *transfer_;
  transfer_.reset();
  dma_.set_dreq(dma_channel_, false);
  const auto status0 = static_cast<uint8_t>(st0 | (t.seeked ? kSt0SeekEnd : 0) | t.st0_head << 2 | t.drive);
  enter_result({status0, st1, st2, t.c, t.h, t.r, t.n}, true);
}

}  // namespace vmm86
