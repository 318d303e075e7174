#include "devices/storage/atapi_cdrom.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace vmm86 {
namespace {

// Packet command operation codes (SPC-3, MMC-5).
enum : uint8_t {
  TEST_UNIT_READY = 0x00,
  REQUEST_SENSE = 0x03,
  INQUIRY = 0x12,
  MODE_SENSE_6 = 0x1A,
  START_STOP_UNIT = 0x1B,
  PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E,
  READ_CAPACITY = 0x25,
  READ_10 = 0x28,
  SEEK_10 = 0x2B,
  READ_TOC = 0x43,
  GET_CONFIGURATION = 0x46,
  GET_EVENT_STATUS_NOTIFICATION = 0x4A,
  READ_DISC_INFORMATION = 0x51,
  MODE_SENSE_10 = 0x5A,
  READ_12 = 0xA8,
  SET_CD_SPEED = 0xBB,
  MECHANISM_STATUS = 0xBD,
};

// Additional sense codes / qualifiers (SPC-3 table D.1).
constexpr uint8_t kAscUnrecoveredReadError = 0x11;
constexpr uint8_t kAscInvalidCommand = 0x20;
constexpr uint8_t kAscLbaOutOfRange = 0x21;
constexpr uint8_t kAscInvalidFieldInCdb = 0x24;
constexpr uint8_t kAscMediumMayHaveChanged = 0x28;
constexpr uint8_t kAscPowerOnReset = 0x29;
constexpr uint8_t kAscSavingParametersNotSupported = 0x39;
constexpr uint8_t kAscMediumNotPresent = 0x3A;
constexpr uint8_t kAscqTrayClosed = 0x01;
constexpr uint8_t kAscqTrayOpen = 0x02;
constexpr uint8_t kAscMediumRemovalPrevented = 0x53;
constexpr uint8_t kAscqMediumRemovalPrevented = 0x02;

// Interrupt reason register (sector count) bits.
constexpr uint8_t kReasonCoD = 0x01;  // command (1) or data (0)
constexpr uint8_t kReasonIo = 0x02;   // to the host (1) or to the device (0)

constexpr uint8_t kReady = ata_status::DRDY;
constexpr size_t kPacketSize = 12;
constexpr size_t kDmaChunk = 64 * 1024;
// An 80-minute CD; anything larger is presented as a DVD.
constexpr uint64_t kCdMaxSectors = 80 * 60 * 75;
constexpr uint16_t kProfileCdRom = 0x0008;
constexpr uint16_t kProfileDvdRom = 0x0010;
// GET EVENT STATUS NOTIFICATION media event codes (MMC-5 table 135).
constexpr uint8_t kMediaEventNewMedia = 0x02;
constexpr uint8_t kMediaEventRemoval = 0x03;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
         p[3];
}
void put_be16(std::vector<uint8_t>& out, size_t at, uint32_t value) {
  out[at] = static_cast<uint8_t>(value >> 8);
  out[at + 1] = static_cast<uint8_t>(value);
}
void put_be32(std::vector<uint8_t>& out, size_t at, uint32_t value) {
  put_be16(out, at, value >> 16);
  put_be16(out, at + 2, value & 0xFFFF);
}
void append_be16(std::vector<uint8_t>& out, uint32_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}
void append_be32(std::vector<uint8_t>& out, uint32_t value) {
  append_be16(out, value >> 16);
  append_be16(out, value & 0xFFFF);
}
void append_padded(std::vector<uint8_t>& out, std::string_view text, size_t width) {
  for (size_t i = 0; i < width; ++i) out.push_back(i < text.size() ? static_cast<uint8_t>(text[i]) : uint8_t{' '});
}
// A TOC address: an LBA, or minute/second/frame counted from the 2-second pregap.
void append_address(std::vector<uint8_t>& out, uint64_t lba, bool msf) {
  if (!msf) {
    append_be32(out, static_cast<uint32_t>(lba));
    return;
  }
  const uint64_t frames = lba + 150;
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(frames / (60 * 75)));
  out.push_back(static_cast<uint8_t>(frames / 75 % 60));
  out.push_back(static_cast<uint8_t>(frames % 75));
}

}  // namespace

AtapiCdrom::AtapiCdrom(std::unique_ptr<BlockBackend> medium, AtapiCdromConfig config, LogFn log)
    : IdeDrive(std::move(log)), medium_(std::move(medium)), config_(std::move(config)) {
  power_on_reset();
}

void AtapiCdrom::on_reset(bool power_on) {
  phase_ = Phase::Idle;
  if (!power_on) return;
  sense_ = {};
  unit_attention_ = {sense_key::UnitAttention, kAscPowerOnReset, 0};
  prevent_removal_ = false;
  tray_open_ = false;
  mwdma_mode_ = 0xFF;
  udma_mode_ = 0xFF;
}

uint64_t AtapiCdrom::sector_count() const { return medium_ ? medium_->sector_count(kCdSectorSize) : 0; }

bool AtapiCdrom::is_dvd() const { return sector_count() > kCdMaxSectors; }

void AtapiCdrom::insert_medium(std::unique_ptr<BlockBackend> medium) {
  medium_ = std::move(medium);
  tray_open_ = false;
  if (medium_) {
    unit_attention_ = {sense_key::UnitAttention, kAscMediumMayHaveChanged, 0};
    media_event_ = kMediaEventNewMedia;
  }
}

std::unique_ptr<BlockBackend> AtapiCdrom::remove_medium() {
  if (medium_) media_event_ = kMediaEventRemoval;
  return std::move(medium_);
}

std::array<uint16_t, 256> AtapiCdrom::identify() const {
  // ATA/ATAPI-6 table 30, IDENTIFY PACKET DEVICE.
  std::array<uint16_t, 256> id{};
  // ATAPI (10b in 15:14), CD-ROM command set (05h in 12:8), removable (7), DRQ within 50 us
  // of PACKET (10b in 6:5), 12-byte packets (00b in 1:0).
  id[0] = 0x85C0;
  put_ata_string(std::span(id).subspan(10, 10), config_.serial);
  put_ata_string(std::span(id).subspan(23, 4), config_.firmware);
  put_ata_string(std::span(id).subspan(27, 20), config_.model);
  id[49] = (1 << 11) | (1 << 9) | (1 << 8);  // IORDY, LBA, DMA supported
  id[50] = 0x4000;
  id[53] = 0x0006;  // words 64-70 and 88 valid
  id[63] = static_cast<uint16_t>(0x0007 | (mwdma_mode_ <= 2 ? 0x0100 << mwdma_mode_ : 0));
  id[64] = 0x0003;  // PIO 3 and 4
  id[65] = 120;
  id[66] = 120;
  id[67] = 120;
  id[68] = 120;
  id[80] = 0x00F0;  // ATA/ATAPI-4 to -7
  // Words 82/85: NOP (14), DEVICE RESET (9), PACKET (4); 83/84/87: bit 14 one.
  id[82] = (1 << 14) | (1 << 9) | (1 << 4);
  id[83] = 1 << 14;
  id[84] = 1 << 14;
  id[85] = id[82];
  id[87] = 1 << 14;
  id[88] = static_cast<uint16_t>(0x0007 | (udma_mode_ <= 2 ? 0x0100 << udma_mode_ : 0));  // UDMA 0-2
  id[93] = static_cast<uint16_t>(0x6000 | (unit() == 0 ? 0x000B : 0x0300));
  put_identify_checksum(id);
  return id;
}

void AtapiCdrom::run_command(uint8_t command) {
  phase_ = Phase::Idle;
  switch (command) {
    case ata_cmd::PACKET: packet_command(); break;
    case ata_cmd::IDENTIFY_PACKET_DEVICE: identify_packet_command(); break;
    case ata_cmd::DEVICE_RESET:
      // Resets the device only; no interrupt (ATA-6 8.7).
      begin_reset();
      finish_reset(ata_error::DiagnosticPassed);
      break;
    case ata_cmd::IDENTIFY_DEVICE:
    case ata_cmd::READ_SECTORS: abort_with_signature(); break;
    case ata_cmd::SET_FEATURES:
      if (tf_.features == 0x03) {  // set transfer mode (ATA-6 table 44)
        const uint8_t mode = tf_.sector_count & 0x07;
        const unsigned kind = tf_.sector_count >> 3;
        if ((kind == 0x00 && mode <= 1) || (kind == 0x01 && mode <= 4)) {
          finish(kReady, true);
          break;
        }
        if (kind == 0x04 && mode <= 2) {
          mwdma_mode_ = mode;
          udma_mode_ = 0xFF;
          finish(kReady, true);
          break;
        }
        if (kind == 0x08 && mode <= 2) {
          udma_mode_ = mode;
          mwdma_mode_ = 0xFF;
          finish(kReady, true);
          break;
        }
      }
      tf_.error = ata_error::ABRT;
      finish(kReady | ata_status::ERR, true);
      break;
    case ata_cmd::CHECK_POWER_MODE:
      tf_.sector_count = 0xFF;
      finish(kReady, true);
      break;
    case ata_cmd::STANDBY_IMMEDIATE:
    case ata_cmd::IDLE_IMMEDIATE:
    case ata_cmd::STANDBY:
    case ata_cmd::IDLE:
    case ata_cmd::SLEEP: finish(kReady, true); break;
    case ata_cmd::NOP:
    default:
      tf_.error = ata_error::ABRT;
      finish(kReady | ata_status::ERR, true);
      break;
  }
}

void AtapiCdrom::abort_with_signature() {
  // ATA-6 8.15: a PACKET device aborts IDENTIFY DEVICE with its signature in the registers.
  tf_.sector_count = 0x01;
  tf_.lba_low = 0x01;
  tf_.lba_mid = 0x14;
  tf_.lba_high = 0xEB;
  tf_.error = ata_error::ABRT;
  finish(kReady | ata_status::ERR, true);
}

void AtapiCdrom::identify_packet_command() {
  const std::array<uint16_t, 256> id = identify();
  const std::span<uint8_t> data = data_buffer(512);
  for (size_t i = 0; i < id.size(); ++i) {
    data[2 * i] = static_cast<uint8_t>(id[i]);
    data[2 * i + 1] = static_cast<uint8_t>(id[i] >> 8);
  }
  phase_ = Phase::Identify;
  start_data_in(data.size(), kReady, true);
}

void AtapiCdrom::packet_command() {
  // Features bit 0: the data phase goes by DMA. LBA mid/high: the byte count limit for PIO.
  dma_ = (tf_.features & 0x01) != 0;
  byte_count_limit_ = static_cast<uint32_t>(tf_.lba_high) << 8 | tf_.lba_mid;
  phase_ = Phase::Packet;
  tf_.sector_count = kReasonCoD;
  // Word 0 bits 6:5 = 10b: DRQ within 50 us and no interrupt for the packet.
  start_data_out(kPacketSize, kReady, false);
}

void AtapiCdrom::pio_block_done() {
  switch (phase_) {
    case Phase::Identify:
      phase_ = Phase::Idle;
      finish(kReady, false);
      break;
    case Phase::Packet: {
      Cdb cdb{};
      std::copy_n(received().begin(), kPacketSize, cdb.begin());
      phase_ = Phase::Idle;
      execute_packet(cdb);
      break;
    }
    case Phase::Data:
      payload_sent_ += block_bytes_;
      if (payload_sent_ < payload_size_) {
        next_pio_block();
      } else {
        command_ok();
      }
      break;
    case Phase::Idle: break;
  }
}

void AtapiCdrom::check_condition(uint8_t key, uint8_t asc, uint8_t ascq) {
  sense_ = {key, asc, ascq};
  phase_ = Phase::Idle;
  // The error register carries the sense key in bits 7:4; ABRT for a refused command.
  tf_.error = static_cast<uint8_t>(key << 4 | (key == sense_key::IllegalRequest ? ata_error::ABRT : 0));
  tf_.sector_count = kReasonCoD | kReasonIo;
  finish(kReady | ata_status::ERR, true);
}

void AtapiCdrom::command_ok() {
  sense_ = {};
  phase_ = Phase::Idle;
  tf_.sector_count = kReasonCoD | kReasonIo;
  finish(kReady, true);
}

bool AtapiCdrom::check_medium() {
  if (medium_present()) return true;
  check_condition(sense_key::NotReady, kAscMediumNotPresent, tray_open_ ? kAscqTrayOpen : kAscqTrayClosed);
  return false;
}

void AtapiCdrom::execute_packet(const Cdb& cdb) {
  const uint8_t opcode = cdb[0];
  const bool reports_unit_attention = opcode != INQUIRY && opcode != REQUEST_SENSE && opcode != GET_CONFIGURATION &&
                                      opcode != GET_EVENT_STATUS_NOTIFICATION;
  if (reports_unit_attention && unit_attention_.key != sense_key::NoSense) {
    const SenseData attention = unit_attention_;
    unit_attention_ = {};
    check_condition(attention.key, attention.asc, attention.ascq);
    return;
  }
  switch (opcode) {
    case TEST_UNIT_READY:
      if (check_medium()) command_ok();
      break;
    case REQUEST_SENSE: request_sense(cdb); break;
    case INQUIRY: inquiry(cdb); break;
    case READ_CAPACITY: read_capacity(); break;
    case READ_10: read(be32(&cdb[2]), be16(&cdb[7])); break;
    case READ_12: read(be32(&cdb[2]), be32(&cdb[6])); break;
    case SEEK_10:
      if (!check_medium()) break;
      if (be32(&cdb[2]) >= sector_count()) {
        check_condition(sense_key::IllegalRequest, kAscLbaOutOfRange, 0);
        break;
      }
      command_ok();
      break;
    case MODE_SENSE_6: mode_sense(cdb, false); break;
    case MODE_SENSE_10: mode_sense(cdb, true); break;
    case START_STOP_UNIT: start_stop_unit(cdb); break;
    case PREVENT_ALLOW_MEDIUM_REMOVAL:
      prevent_removal_ = (cdb[4] & 0x01) != 0;
      command_ok();
      break;
    case READ_TOC: read_toc(cdb); break;
    case GET_CONFIGURATION: get_configuration(cdb); break;
    case GET_EVENT_STATUS_NOTIFICATION: get_event_status(cdb); break;
    case READ_DISC_INFORMATION: read_disc_information(cdb); break;
    case MECHANISM_STATUS: mechanism_status(cdb); break;
    case SET_CD_SPEED: command_ok(); break;
    default: check_condition(sense_key::IllegalRequest, kAscInvalidCommand, 0); break;
  }
}

void AtapiCdrom::send_reply(std::vector<uint8_t> reply, size_t allocation_length) {
  if (reply.size() > allocation_length) reply.resize(allocation_length);
  if (reply.empty()) {
    command_ok();
    return;
  }
  reply_ = std::move(reply);
  from_medium_ = false;
  payload_size_ = reply_.size();
  start_data_phase();
}

void AtapiCdrom::send_sectors(uint64_t lba, uint64_t count) {
  if (count == 0) {
    command_ok();
    return;
  }
  from_medium_ = true;
  medium_offset_ = lba * kCdSectorSize;
  payload_size_ = count * kCdSectorSize;
  start_data_phase();
}

void AtapiCdrom::start_data_phase() {
  phase_ = Phase::Data;
  payload_sent_ = 0;
  if (dma_) {
    tf_.sector_count = kReasonIo;
    request_dma(kReady | ata_status::DRQ);
    return;
  }
  next_pio_block();
}

void AtapiCdrom::next_pio_block() {
  // The byte count limit bounds each DRQ block; an odd limit is used as the even number
  // below it when more data follows (ATA-6 9.10). The limit 0 is taken as the largest, 1 as 2
  // (a block must move at least one word).
  const uint64_t remaining = payload_size_ - payload_sent_;
  uint32_t limit = byte_count_limit_ == 0 ? 0xFFFE : std::max<uint32_t>(byte_count_limit_, 2);
  size_t chunk = static_cast<size_t>(remaining);
  if (remaining > limit) chunk = limit & ~uint32_t{1};
  const std::span<uint8_t> data = data_buffer(chunk);
  if (!read_payload(payload_sent_, data)) {
    log_(fmt::format("atapi: read error on {} at byte {}", medium_->name(), medium_offset_ + payload_sent_));
    check_condition(sense_key::MediumError, kAscUnrecoveredReadError, 0);
    return;
  }
  block_bytes_ = chunk;
  tf_.lba_mid = static_cast<uint8_t>(chunk);
  tf_.lba_high = static_cast<uint8_t>(chunk >> 8);
  tf_.sector_count = kReasonIo;
  start_data_in(chunk, kReady, true);
}

bool AtapiCdrom::read_payload(uint64_t at, std::span<uint8_t> out) {
  if (from_medium_) return medium_ != nullptr && medium_->read(medium_offset_ + at, out);
  std::memcpy(out.data(), reply_.data() + at, out.size());
  return true;
}

DmaStatus AtapiCdrom::dma_transfer(DmaStream& stream) {
  if (phase_ != Phase::Data) return DmaStatus::Ok;
  std::vector<uint8_t> bounce;
  while (payload_sent_ < payload_size_) {
    bounce.resize(static_cast<size_t>(std::min<uint64_t>(payload_size_ - payload_sent_, kDmaChunk)));
    if (!read_payload(payload_sent_, bounce)) {
      check_condition(sense_key::MediumError, kAscUnrecoveredReadError, 0);
      return DmaStatus::Ok;
    }
    const DmaStatus status = stream.to_guest(bounce);
    if (status != DmaStatus::Ok) {
      check_condition(sense_key::AbortedCommand, 0, 0);
      return status;
    }
    payload_sent_ += bounce.size();
  }
  command_ok();
  return DmaStatus::Ok;
}

void AtapiCdrom::request_sense(const Cdb& cdb) {
  // A pending unit attention is the sense reported, and reporting it clears it.
  SenseData sense = sense_;
  if (unit_attention_.key != sense_key::NoSense) {
    sense = unit_attention_;
    unit_attention_ = {};
  }
  std::vector<uint8_t> reply(18, 0);  // fixed format (SPC-3 4.5.3)
  reply[0] = 0x70;                    // current error
  reply[2] = sense.key;
  reply[7] = 10;  // additional sense length
  reply[12] = sense.asc;
  reply[13] = sense.ascq;
  send_reply(std::move(reply), cdb[4]);
}

void AtapiCdrom::inquiry(const Cdb& cdb) {
  const size_t allocation = be16(&cdb[3]);
  std::vector<uint8_t> reply;
  if ((cdb[1] & 0x01) != 0) {  // EVPD: vital product data pages 00h (list) and 80h (serial)
    if (cdb[2] == 0x00) {
      reply = {0x05, 0x00, 0x00, 2, 0x00, 0x80};
    } else if (cdb[2] == 0x80) {
      reply = {0x05, 0x80, 0x00, static_cast<uint8_t>(config_.serial.size())};
      append_padded(reply, config_.serial, config_.serial.size());
    } else {
      check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0);
      return;
    }
    send_reply(std::move(reply), allocation);
    return;
  }
  // Standard data (SPC-3 6.4.2): CD/DVD device (05h), removable, ATAPI-era version fields,
  // 36 bytes.
  reply = {0x05, 0x80, 0x00, 0x32, 36 - 5, 0, 0, 0};
  append_padded(reply, config_.vendor, 8);
  append_padded(reply, config_.product, 16);
  append_padded(reply, config_.firmware, 4);
  send_reply(std::move(reply), allocation);
}

void AtapiCdrom::read_capacity() {
  if (!check_medium()) return;
  std::vector<uint8_t> reply(8, 0);
  put_be32(reply, 0, static_cast<uint32_t>(sector_count() - 1));  // the last LBA
  put_be32(reply, 4, kCdSectorSize);
  send_reply(std::move(reply), 8);
}

void AtapiCdrom::read(uint64_t lba, uint64_t count) {
  if (!check_medium()) return;
  if (lba > sector_count() || count > sector_count() - lba) {
    check_condition(sense_key::IllegalRequest, kAscLbaOutOfRange, 0);
    return;
  }
  send_sectors(lba, count);
}

void AtapiCdrom::mode_sense(const Cdb& cdb, bool ten_byte) {
  const uint8_t page = cdb[2] & 0x3F;
  const uint8_t control = cdb[2] >> 6;  // 0 current, 1 changeable, 2 default, 3 saved
  if (control == 3) {
    check_condition(sense_key::IllegalRequest, kAscSavingParametersNotSupported, 0);
    return;
  }
  const bool changeable = control == 1;
  std::vector<uint8_t> pages;
  auto add_error_recovery = [&] {  // read error recovery parameters (MMC-5 7.3)
    const std::vector<uint8_t> body = {0x01, 0x0A, 0, static_cast<uint8_t>(changeable ? 0 : 5), 0, 0, 0, 0, 0, 0, 0, 0};
    pages.insert(pages.end(), body.begin(), body.end());
  };
  auto add_capabilities = [&] {  // CD/DVD capabilities and mechanical status (MMC-3 5.5.10)
    std::vector<uint8_t> body(22, 0);
    body[0] = 0x2A;
    body[1] = 0x14;
    if (!changeable) {
      body[2] = 0x08;  // reads DVD-ROM
      body[4] = 0x70;  // mode 2 form 1 and 2, multisession
      // Tray loading (001b in 7:5), eject, lock, and the lock state.
      body[6] = static_cast<uint8_t>(0x29 | (prevent_removal_ ? 0x02 : 0));
      put_be16(body, 8, 4234);   // maximum read speed, kB/s (24x)
      put_be16(body, 12, 512);   // buffer size, KiB
      put_be16(body, 14, 4234);  // current read speed
    }
    pages.insert(pages.end(), body.begin(), body.end());
  };
  switch (page) {
    case 0x01: add_error_recovery(); break;
    case 0x2A: add_capabilities(); break;
    case 0x3F:
      add_error_recovery();
      add_capabilities();
      break;
    default: check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0); return;
  }
  // Medium type: 120 mm data disc (01h), or door closed, no disc (70h).
  const uint8_t medium_type = medium_present() ? 0x01 : 0x70;
  std::vector<uint8_t> reply;
  if (ten_byte) {
    reply.assign(8, 0);
    put_be16(reply, 0, static_cast<uint32_t>(6 + pages.size()));  // mode data length
    reply[2] = medium_type;
  } else {
    reply.assign(4, 0);
    reply[0] = static_cast<uint8_t>(3 + pages.size());
    reply[1] = medium_type;
  }
  reply.insert(reply.end(), pages.begin(), pages.end());
  send_reply(std::move(reply), ten_byte ? be16(&cdb[7]) : cdb[4]);
}

void AtapiCdrom::start_stop_unit(const Cdb& cdb) {
  const bool start = (cdb[4] & 0x01) != 0;
  const bool load_eject = (cdb[4] & 0x02) != 0;
  if (load_eject && !start) {
    if (prevent_removal_) {
      check_condition(sense_key::IllegalRequest, kAscMediumRemovalPrevented, kAscqMediumRemovalPrevented);
      return;
    }
    if (!tray_open_ && medium_) media_event_ = kMediaEventRemoval;
    tray_open_ = true;
  } else if (load_eject && start && tray_open_) {
    tray_open_ = false;
    if (medium_) {
      unit_attention_ = {sense_key::UnitAttention, kAscMediumMayHaveChanged, 0};
      media_event_ = kMediaEventNewMedia;
    }
  }
  command_ok();
}

void AtapiCdrom::read_toc(const Cdb& cdb) {
  if (!check_medium()) return;
  const bool msf = (cdb[1] & 0x02) != 0;
  // The format is in byte 2; SFF-8020i drivers put it in bits 7:6 of byte 9.
  uint8_t format = cdb[2] & 0x0F;
  if (format == 0) format = cdb[9] >> 6;
  const uint8_t track = cdb[6];
  std::vector<uint8_t> reply = {0, 0, 1, 1};  // length (below), first and last track/session
  auto add_descriptor = [&](uint8_t number, uint64_t lba) {
    reply.insert(reply.end(), {0, 0x14, number, 0});  // ADR 1 (Q position), control 4 (data)
    append_address(reply, lba, msf);
  };
  switch (format) {
    case 0:  // formatted TOC: track 1 and the lead-out (AAh) from `track` on
      if (track > 1 && track != 0xAA) {
        check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0);
        return;
      }
      if (track <= 1) add_descriptor(1, 0);
      add_descriptor(0xAA, sector_count());
      break;
    case 1:  // multisession information: one session, its first track at LBA 0
      add_descriptor(1, 0);
      break;
    default: check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0); return;
  }
  put_be16(reply, 0, static_cast<uint32_t>(reply.size() - 2));
  send_reply(std::move(reply), be16(&cdb[7]));
}

void AtapiCdrom::get_configuration(const Cdb& cdb) {
  const uint8_t request_type = cdb[1] & 0x03;  // 0 all, 1 current, 2 the one named
  const uint16_t starting = be16(&cdb[2]);
  if (request_type == 3) {
    check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0);
    return;
  }
  const bool present = medium_present();
  const bool dvd = present && is_dvd();
  const uint16_t profile = present ? (dvd ? kProfileDvdRom : kProfileCdRom) : 0;
  std::vector<uint8_t> reply(8, 0);
  put_be16(reply, 6, profile);
  // A feature descriptor (MMC-5 5.2.2): code, version/persistent/current, length, data.
  auto add = [&](uint16_t code, uint8_t version, bool persistent, bool current, std::vector<uint8_t> data) {
    if (code < starting && request_type != 2) return;
    if (request_type == 2 && code != starting) return;
    if (request_type == 1 && !current) return;
    append_be16(reply, code);
    reply.push_back(static_cast<uint8_t>(version << 2 | (persistent ? 0x02 : 0) | (current ? 0x01 : 0)));
    reply.push_back(static_cast<uint8_t>(data.size()));
    reply.insert(reply.end(), data.begin(), data.end());
  };
  add(0x0000, 0, true, true,  // profile list, highest first
      {0x00, 0x10, static_cast<uint8_t>(dvd ? 1 : 0), 0, 0x00, 0x08, static_cast<uint8_t>(present && !dvd ? 1 : 0), 0});
  add(0x0001, 1, true, true, {0, 0, 0, 2, 0x01, 0, 0, 0});  // core: ATAPI interface, DBE
  add(0x0002, 1, true, true, {0, 0, 0, 0});                 // morphing: polled events only
  add(0x0003, 0, true, true, {0x29, 0, 0, 0});              // removable medium: tray, eject, lock
  add(0x0010, 0, false, present,                            // random readable
      {0, 0, 0x08, 0x00, 0, static_cast<uint8_t>(dvd ? 16 : 1), 0, 0});
  add(0x001E, 0, false, present && !dvd, {0, 0, 0, 0});  // CD read
  add(0x001F, 0, false, dvd, {});                        // DVD read
  put_be32(reply, 0, static_cast<uint32_t>(reply.size() - 4));
  send_reply(std::move(reply), be16(&cdb[7]));
}

void AtapiCdrom::get_event_status(const Cdb& cdb) {
  if ((cdb[1] & 0x01) == 0) {  // only polled operation
    check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0);
    return;
  }
  constexpr uint8_t kMediaClass = 0x10;  // class 4 in the request/support bit masks
  std::vector<uint8_t> reply;
  if ((cdb[4] & kMediaClass) != 0) {
    const uint8_t media_status = static_cast<uint8_t>((medium_present() ? 0x02 : 0) | (tray_open_ ? 0x01 : 0));
    reply = {0, 6, 4, kMediaClass, media_event_, media_status, 0, 0};
    media_event_ = 0;
  } else {
    reply = {0, 2, 0x80, kMediaClass};  // no event available (NEA) for the classes asked
  }
  send_reply(std::move(reply), be16(&cdb[7]));
}

void AtapiCdrom::read_disc_information(const Cdb& cdb) {
  if ((cdb[1] & 0x07) != 0) {  // only standard disc information
    check_condition(sense_key::IllegalRequest, kAscInvalidFieldInCdb, 0);
    return;
  }
  if (!check_medium()) return;
  std::vector<uint8_t> reply(34, 0);  // MMC-5 6.22.3
  put_be16(reply, 0, 32);
  reply[2] = 0x0E;  // last session complete (11b in 3:2), disc finalized (10b in 1:0)
  reply[3] = 1;     // first track on the disc
  reply[4] = 1;     // sessions
  reply[5] = 1;     // first track in the last session
  reply[6] = 1;     // last track in the last session
  std::fill(reply.begin() + 16, reply.begin() + 24, uint8_t{0xFF});  // no lead-in / lead-out to write
  send_reply(std::move(reply), be16(&cdb[7]));
}

void AtapiCdrom::mechanism_status(const Cdb& cdb) {
  std::vector<uint8_t> reply(8, 0);  // header only: no changer, no slot tables
  reply[1] = tray_open_ ? 0x10 : 0;  // door open
  send_reply(std::move(reply), be16(&cdb[8]));
}

}  // namespace vmm86
