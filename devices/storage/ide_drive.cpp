#include "devices/storage/ide_drive.h"

#include <algorithm>
#include <string_view>

namespace vmm86 {

IdeDrive::IdeDrive(LogFn log) : log_(log_or_stderr(std::move(log))) {}

void IdeDrive::write_register(uint16_t reg, uint8_t value) {
  // Each LBA48 register is a two-deep FIFO: the previous value moves to its HOB half.
  auto push = [value](uint8_t& current, uint8_t& previous) {
    previous = current;
    current = value;
  };
  switch (reg) {
    case ata_reg::Features: push(tf_.features, tf_.hob_features); break;
    case ata_reg::SectorCount: push(tf_.sector_count, tf_.hob_sector_count); break;
    case ata_reg::LbaLow: push(tf_.lba_low, tf_.hob_lba_low); break;
    case ata_reg::LbaMid: push(tf_.lba_mid, tf_.hob_lba_mid); break;
    case ata_reg::LbaHigh: push(tf_.lba_high, tf_.hob_lba_high); break;
    case ata_reg::Device: tf_.device = value; break;
    default: break;
  }
}

uint8_t IdeDrive::read_register(uint16_t reg, bool hob) const {
  switch (reg) {
    case ata_reg::Error: return hob ? tf_.hob_features : tf_.error;
    case ata_reg::SectorCount: return hob ? tf_.hob_sector_count : tf_.sector_count;
    case ata_reg::LbaLow: return hob ? tf_.hob_lba_low : tf_.lba_low;
    case ata_reg::LbaMid: return hob ? tf_.hob_lba_mid : tf_.lba_mid;
    case ata_reg::LbaHigh: return hob ? tf_.hob_lba_high : tf_.lba_high;
    case ata_reg::Device: return tf_.device;
    case ata_reg::Status: return tf_.status;
    default: return 0xFF;
  }
}

void IdeDrive::execute(uint8_t command) {
  if (in_reset_) return;
  // A new command replaces one still in its data phase (ATA leaves this undefined; drivers
  // that give up on a transfer and retry expect it).
  phase_ = Phase::None;
  dma_requested_ = false;
  intrq_ = false;
  tf_.error = 0;
  run_command(command);
}

std::span<uint8_t> IdeDrive::data_buffer(size_t bytes) {
  buffer_.assign(bytes + (bytes & 1), 0);
  return {buffer_.data(), bytes};
}

void IdeDrive::start_data_in(size_t bytes, uint8_t status, bool interrupt) {
  phase_ = Phase::DataIn;
  data_pos_ = 0;
  data_end_ = std::min(bytes, buffer_.size());
  tf_.status = status | ata_status::DRQ;
  if (interrupt) raise_interrupt();
}

void IdeDrive::start_data_out(size_t bytes, uint8_t status, bool interrupt) {
  buffer_.assign(bytes + (bytes & 1), 0);
  phase_ = Phase::DataOut;
  data_pos_ = 0;
  data_end_ = bytes;
  tf_.status = status | ata_status::DRQ;
  if (interrupt) raise_interrupt();
}

void IdeDrive::request_dma(uint8_t status) {
  phase_ = Phase::None;
  dma_requested_ = true;
  tf_.status = status;
}

void IdeDrive::finish(uint8_t status, bool interrupt) {
  phase_ = Phase::None;
  dma_requested_ = false;
  tf_.status = status;
  if (interrupt) raise_interrupt();
}

void IdeDrive::raise_interrupt() {
  intrq_ = true;
  interrupt_event_ = true;
}

bool IdeDrive::take_interrupt_event() {
  const bool event = interrupt_event_;
  interrupt_event_ = false;
  return event;
}

uint16_t IdeDrive::read_data() {
  if (phase_ != Phase::DataIn || data_pos_ + 2 > buffer_.size()) return 0xFFFF;
  const auto word = static_cast<uint16_t>(buffer_[data_pos_] | buffer_[data_pos_ + 1] << 8);
  data_pos_ += 2;
  if (data_pos_ >= data_end_) end_block();
  return word;
}

void IdeDrive::write_data(uint16_t value) {
  if (phase_ != Phase::DataOut || data_pos_ + 2 > buffer_.size()) return;
  buffer_[data_pos_] = static_cast<uint8_t>(value);
  buffer_[data_pos_ + 1] = static_cast<uint8_t>(value >> 8);
  data_pos_ += 2;
  if (data_pos_ >= data_end_) end_block();
}

void IdeDrive::end_block() {
  phase_ = Phase::None;
  tf_.status = static_cast<uint8_t>(tf_.status & ~ata_status::DRQ);
  pio_block_done();
}

DmaStatus IdeDrive::run_dma(DmaStream& stream) {
  if (!dma_requested_) return DmaStatus::Ok;
  dma_requested_ = false;
  return dma_transfer(stream);
}

void IdeDrive::begin_reset() {
  in_reset_ = true;
  phase_ = Phase::None;
  dma_requested_ = false;
  intrq_ = false;
  interrupt_event_ = false;
  tf_.status = ata_status::BSY;
  on_reset(false);
}

void IdeDrive::finish_reset(uint8_t diagnostic_code) {
  in_reset_ = false;
  phase_ = Phase::None;
  dma_requested_ = false;
  // The signature (ATA-6 9.12): sector count and LBA low 01h; LBA mid/high 00h/00h for ATA,
  // 14h/EBh for a PACKET device; the device register 00h.
  tf_.sector_count = 0x01;
  tf_.lba_low = 0x01;
  tf_.lba_mid = is_packet_device() ? 0x14 : 0x00;
  tf_.lba_high = is_packet_device() ? 0xEB : 0x00;
  tf_.hob_sector_count = tf_.hob_lba_low = tf_.hob_lba_mid = tf_.hob_lba_high = 0;
  tf_.device = 0;
  tf_.error = diagnostic_code;
  tf_.status = reset_status();
}

void IdeDrive::power_on_reset() {
  begin_reset();
  on_reset(true);
  tf_ = AtaTaskFile{};
  finish_reset(ata_error::DiagnosticPassed);
}

void put_ata_string(std::span<uint16_t> words, std::string_view text) {
  for (size_t i = 0; i < words.size(); ++i) {
    const auto at = [&](size_t index) {
      return index < text.size() ? static_cast<uint8_t>(text[index]) : uint8_t{' '};
    };
    words[i] = static_cast<uint16_t>(at(2 * i) << 8 | at(2 * i + 1));
  }
}

void put_identify_checksum(std::span<uint16_t, 256> words) {
  words[255] = 0x00A5;
  unsigned sum = 0;
  for (const uint16_t word : words) sum += (word & 0xFFu) + (word >> 8);
  words[255] = static_cast<uint16_t>(words[255] | ((0x100 - (sum & 0xFF)) & 0xFF) << 8);
}

}  // namespace vmm86
