#include "devices/storage/ata_disk.h"

#include <fmt/format.h>

#include <algorithm>

namespace vmm86 {
namespace {

using namespace ata_cmd;  // NOLINT(google-build-using-namespace): the shared codes beside the disk's own

// The disk's own command codes (ATA/ATAPI-6 table B.2).
enum : uint8_t {
  RECALIBRATE = 0x10,  // 10h-1Fh, obsolete
  READ_SECTORS_NO_RETRY = 0x21,
  READ_SECTORS_EXT = 0x24,
  READ_DMA_EXT = 0x25,
  READ_MULTIPLE_EXT = 0x29,
  WRITE_SECTORS = 0x30,
  WRITE_SECTORS_NO_RETRY = 0x31,
  WRITE_SECTORS_EXT = 0x34,
  WRITE_DMA_EXT = 0x35,
  WRITE_MULTIPLE_EXT = 0x39,
  READ_VERIFY_SECTORS = 0x40,
  READ_VERIFY_SECTORS_NO_RETRY = 0x41,
  READ_VERIFY_SECTORS_EXT = 0x42,
  SEEK = 0x70,
  INITIALIZE_DEVICE_PARAMETERS = 0x91,
  STANDBY_IMMEDIATE_OLD = 0x94,
  IDLE_IMMEDIATE_OLD = 0x95,
  STANDBY_OLD = 0x96,
  IDLE_OLD = 0x97,
  CHECK_POWER_MODE_OLD = 0x98,
  SLEEP_OLD = 0x99,
  READ_MULTIPLE = 0xC4,
  WRITE_MULTIPLE = 0xC5,
  SET_MULTIPLE_MODE = 0xC6,
  READ_DMA = 0xC8,
  READ_DMA_NO_RETRY = 0xC9,
  WRITE_DMA = 0xCA,
  WRITE_DMA_NO_RETRY = 0xCB,
  FLUSH_CACHE = 0xE7,
  FLUSH_CACHE_EXT = 0xEA,
};

// SET FEATURES subcommands (features register).
enum : uint8_t {
  FEATURE_ENABLE_WRITE_CACHE = 0x02,
  FEATURE_SET_TRANSFER_MODE = 0x03,
  FEATURE_DISABLE_REVERTING = 0x66,
  FEATURE_DISABLE_LOOK_AHEAD = 0x55,
  FEATURE_DISABLE_WRITE_CACHE = 0x82,
  FEATURE_ENABLE_LOOK_AHEAD = 0xAA,
  FEATURE_ENABLE_REVERTING = 0xCC,
};

constexpr uint64_t kLba28Limit = 0x0FFFFFFF;  // IDENTIFY words 60-61 saturate here
constexpr uint32_t kMaxDefaultCylinders = 16383;
constexpr unsigned kDmaChunkSectors = 128;  // 64 KiB through the bounce buffer at a time

}  // namespace

AtaDisk::AtaDisk(std::unique_ptr<BlockBackend> backend, AtaDiskConfig config, LogFn log)
    : IdeDrive(std::move(log)),
      backend_(std::move(backend)),
      config_(std::move(config)),
      sectors_(backend_->sector_count(kAtaSectorSize)) {
  // The usual BIOS-compatible translation: 16 heads, 63 sectors, at most 16383 cylinders.
  const uint64_t per_cylinder = 16 * 63;
  default_chs_ = {static_cast<uint32_t>(std::clamp<uint64_t>(sectors_ / per_cylinder, 1, kMaxDefaultCylinders)), 16,
                  63};
  power_on_reset();
}

void AtaDisk::on_reset(bool power_on) {
  transfer_ = Transfer::None;
  if (!power_on) return;
  current_chs_ = default_chs_;
  chs_valid_ = true;
  multiple_ = 0;
  write_cache_ = true;
  look_ahead_ = true;
  pio_mode_ = 0;
  mwdma_mode_ = 0xFF;
  udma_mode_ = 0xFF;
  power_mode_ = 0xFF;
}

std::array<uint16_t, 256> AtaDisk::identify() const {
  // Word numbers and meanings: ATA/ATAPI-6 (T13/1410D) table 27, IDENTIFY DEVICE.
  std::array<uint16_t, 256> id{};
  id[0] = 0x0040;  // ATA device (bit 15 = 0), fixed (bit 6)
  id[1] = static_cast<uint16_t>(default_chs_.cylinders);
  id[3] = static_cast<uint16_t>(default_chs_.heads);
  // Words 4 and 5, retired since ATA-2: unformatted bytes per track and per sector. Old
  // BIOSes size their PIO transfers from word 5 (Bochs's rombios reads 0 sectors without it).
  id[4] = static_cast<uint16_t>(kAtaSectorSize * default_chs_.sectors);
  id[5] = kAtaSectorSize;
  id[6] = static_cast<uint16_t>(default_chs_.sectors);
  put_ata_string(std::span(id).subspan(10, 10), config_.serial);
  put_ata_string(std::span(id).subspan(23, 4), config_.firmware);
  put_ata_string(std::span(id).subspan(27, 20), config_.model);
  id[47] = 0x8000 | kMaxMultiple;            // bits 15:8 80h; max sectors per READ/WRITE MULTIPLE
  id[48] = 0x0001;                           // ATA-1..3: can do doubleword I/O (the data port takes 32-bit accesses)
  id[49] = (1 << 11) | (1 << 9) | (1 << 8);  // IORDY supported, LBA supported, DMA supported
  id[50] = 0x4000;                           // bit 14 shall be one
  id[51] = 0x0200;                           // obsolete: PIO timing mode 2
  id[53] = 0x0007;                           // words 54-58, 64-70 and 88 are valid
  const uint64_t current_capacity = chs_valid_
                                        ? uint64_t{current_chs_.cylinders} * current_chs_.heads * current_chs_.sectors
                                        : 0;
  id[54] = static_cast<uint16_t>(current_chs_.cylinders);
  id[55] = static_cast<uint16_t>(current_chs_.heads);
  id[56] = static_cast<uint16_t>(current_chs_.sectors);
  id[57] = static_cast<uint16_t>(current_capacity);
  id[58] = static_cast<uint16_t>(current_capacity >> 16);
  id[59] = static_cast<uint16_t>(multiple_ != 0 ? 0x0100 | multiple_ : 0);  // bit 8: setting valid
  const uint64_t lba28 = std::min(sectors_, kLba28Limit);
  id[60] = static_cast<uint16_t>(lba28);
  id[61] = static_cast<uint16_t>(lba28 >> 16);
  id[63] = static_cast<uint16_t>(0x0007 | (mwdma_mode_ <= 2 ? 0x0100 << mwdma_mode_ : 0));  // MWDMA 0-2
  id[64] = 0x0003;                                                                          // PIO 3 and 4
  id[65] = 120;     // minimum multiword DMA cycle time (ns)
  id[66] = 120;     // recommended multiword DMA cycle time
  id[67] = 120;     // minimum PIO cycle time without flow control
  id[68] = 120;     // minimum PIO cycle time with IORDY
  id[80] = 0x00F0;  // major version: ATA/ATAPI-4 to -7
  // Word 82/85: NOP (14), write cache (5), power management (3); 83/86: bit 14 one (83 only),
  // FLUSH CACHE EXT (13), FLUSH CACHE (12), 48-bit addresses (10); 84/87: bit 14 one.
  id[82] = (1 << 14) | (1 << 5) | (1 << 3);
  id[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10);
  id[84] = 1 << 14;
  id[85] = static_cast<uint16_t>((1 << 14) | (write_cache_ ? 1 << 5 : 0) | (1 << 3));
  id[86] = (1 << 13) | (1 << 12) | (1 << 10);
  id[87] = 1 << 14;
  id[88] = static_cast<uint16_t>(0x003F | (udma_mode_ <= 5 ? 0x0100 << udma_mode_ : 0));  // UDMA 0-5
  // Hardware reset result: bit 14 one, bit 13 an 80-conductor cable; the device's own half
  // says it was jumpered (bits 2:1 / 10:9 = 01) and passed diagnostics (device 0: bit 3).
  id[93] = static_cast<uint16_t>(0x6000 | (unit() == 0 ? 0x000B : 0x0300));
  id[100] = static_cast<uint16_t>(sectors_);
  id[101] = static_cast<uint16_t>(sectors_ >> 16);
  id[102] = static_cast<uint16_t>(sectors_ >> 32);
  id[103] = static_cast<uint16_t>(sectors_ >> 48);
  id[106] = 0x4000;  // word valid; one 512-byte logical sector per physical sector
  put_identify_checksum(id);
  return id;
}

bool AtaDisk::decode_range(bool ext) {
  uint64_t count = 0;
  if (ext) {
    count = static_cast<uint64_t>(tf_.hob_sector_count) << 8 | tf_.sector_count;
    if (count == 0) count = 65536;
    lba_ = static_cast<uint64_t>(tf_.hob_lba_high) << 40 | static_cast<uint64_t>(tf_.hob_lba_mid) << 32 |
           static_cast<uint64_t>(tf_.hob_lba_low) << 24 | static_cast<uint64_t>(tf_.lba_high) << 16 |
           static_cast<uint64_t>(tf_.lba_mid) << 8 | tf_.lba_low;
  } else {
    count = tf_.sector_count == 0 ? 256 : tf_.sector_count;
    if ((tf_.device & ata_device::LBA) != 0) {
      lba_ = static_cast<uint64_t>(tf_.device & 0x0F) << 24 | static_cast<uint64_t>(tf_.lba_high) << 16 |
             static_cast<uint64_t>(tf_.lba_mid) << 8 | tf_.lba_low;
    } else {
      const uint32_t cylinder = static_cast<uint32_t>(tf_.lba_high) << 8 | tf_.lba_mid;
      const uint32_t head = tf_.device & 0x0Fu;
      const uint32_t sector = tf_.lba_low;
      if (!chs_valid_ || sector == 0 || sector > current_chs_.sectors || head >= current_chs_.heads ||
          cylinder >= current_chs_.cylinders) {
        fail(ata_error::IDNF);
        return false;
      }
      lba_ = (uint64_t{cylinder} * current_chs_.heads + head) * current_chs_.sectors + sector - 1;
    }
  }
  if (lba_ >= sectors_ || count > sectors_ - lba_) {
    fail(ata_error::IDNF);
    return false;
  }
  remaining_ = static_cast<uint32_t>(count);
  return true;
}

void AtaDisk::set_address(uint64_t lba) {
  if (ext_) {
    tf_.lba_low = static_cast<uint8_t>(lba);
    tf_.lba_mid = static_cast<uint8_t>(lba >> 8);
    tf_.lba_high = static_cast<uint8_t>(lba >> 16);
    tf_.hob_lba_low = static_cast<uint8_t>(lba >> 24);
    tf_.hob_lba_mid = static_cast<uint8_t>(lba >> 32);
    tf_.hob_lba_high = static_cast<uint8_t>(lba >> 40);
  } else if ((tf_.device & ata_device::LBA) != 0) {
    tf_.lba_low = static_cast<uint8_t>(lba);
    tf_.lba_mid = static_cast<uint8_t>(lba >> 8);
    tf_.lba_high = static_cast<uint8_t>(lba >> 16);
    tf_.device = static_cast<uint8_t>((tf_.device & 0xF0) | ((lba >> 24) & 0x0F));
  } else if (chs_valid_) {
    const uint64_t per_cylinder = uint64_t{current_chs_.heads} * current_chs_.sectors;
    const uint64_t cylinder = lba / per_cylinder;
    const uint64_t head = lba % per_cylinder / current_chs_.sectors;
    tf_.lba_low = static_cast<uint8_t>(lba % current_chs_.sectors + 1);
    tf_.lba_mid = static_cast<uint8_t>(cylinder);
    tf_.lba_high = static_cast<uint8_t>(cylinder >> 8);
    tf_.device = static_cast<uint8_t>((tf_.device & 0xF0) | (head & 0x0F));
  }
}

void AtaDisk::set_remaining_count(uint32_t count) {
  tf_.sector_count = static_cast<uint8_t>(count);
  if (ext_) tf_.hob_sector_count = static_cast<uint8_t>(count >> 8);
}

void AtaDisk::complete() { finish(kReady, true); }

void AtaDisk::fail(uint8_t error) {
  transfer_ = Transfer::None;
  tf_.error = error;
  finish(kReady | ata_status::ERR, true);
}

void AtaDisk::run_command(uint8_t command) {
  transfer_ = Transfer::None;
  ext_ = false;
  if (command >= RECALIBRATE && command <= 0x1F) {
    complete();
    return;
  }
  switch (command) {
    case READ_SECTORS:
    case READ_SECTORS_NO_RETRY: begin_transfer(Transfer::PioRead, false, 1); break;
    case READ_SECTORS_EXT: begin_transfer(Transfer::PioRead, true, 1); break;
    case WRITE_SECTORS:
    case WRITE_SECTORS_NO_RETRY: begin_transfer(Transfer::PioWrite, false, 1); break;
    case WRITE_SECTORS_EXT: begin_transfer(Transfer::PioWrite, true, 1); break;
    case READ_MULTIPLE:
    case READ_MULTIPLE_EXT:
    case WRITE_MULTIPLE:
    case WRITE_MULTIPLE_EXT:
      if (multiple_ == 0) {  // multiple mode disabled: ATA-6 8.24
        fail(ata_error::ABRT);
        break;
      }
      begin_transfer(command == READ_MULTIPLE || command == READ_MULTIPLE_EXT ? Transfer::PioRead : Transfer::PioWrite,
                     command == READ_MULTIPLE_EXT || command == WRITE_MULTIPLE_EXT, multiple_);
      break;
    case READ_DMA:
    case READ_DMA_NO_RETRY: begin_transfer(Transfer::DmaRead, false, 0); break;
    case READ_DMA_EXT: begin_transfer(Transfer::DmaRead, true, 0); break;
    case WRITE_DMA:
    case WRITE_DMA_NO_RETRY: begin_transfer(Transfer::DmaWrite, false, 0); break;
    case WRITE_DMA_EXT: begin_transfer(Transfer::DmaWrite, true, 0); break;
    case READ_VERIFY_SECTORS:
    case READ_VERIFY_SECTORS_NO_RETRY: read_verify(false); break;
    case READ_VERIFY_SECTORS_EXT: read_verify(true); break;
    case SEEK:
      if (decode_range(false)) complete();
      break;
    case SET_MULTIPLE_MODE: set_multiple_mode(); break;
    case INITIALIZE_DEVICE_PARAMETERS: initialize_device_parameters(); break;
    case IDENTIFY_DEVICE: identify_command(); break;
    case SET_FEATURES: set_features(); break;
    case FLUSH_CACHE:
    case FLUSH_CACHE_EXT: flush_command(); break;
    case STANDBY_IMMEDIATE:
    case STANDBY_IMMEDIATE_OLD:
    case STANDBY:
    case STANDBY_OLD:
    case SLEEP:
    case SLEEP_OLD:
      power_mode_ = 0x00;
      complete();
      break;
    case IDLE_IMMEDIATE:
    case IDLE_IMMEDIATE_OLD:
    case IDLE:
    case IDLE_OLD:
      power_mode_ = 0xFF;
      complete();
      break;
    case CHECK_POWER_MODE:
    case CHECK_POWER_MODE_OLD:
      tf_.sector_count = power_mode_;
      complete();
      break;
    case NOP:  // NOP always aborts (ATA-6 8.21)
    default: fail(ata_error::ABRT); break;
  }
}

void AtaDisk::begin_transfer(Transfer transfer, bool ext, unsigned block_sectors) {
  ext_ = ext;
  if (!decode_range(ext)) return;
  power_mode_ = 0xFF;
  transfer_ = transfer;
  block_sectors_ = block_sectors;
  switch (transfer) {
    case Transfer::PioRead: next_read_block(); break;
    case Transfer::PioWrite:
      // The first block is asked for without an interrupt (ATA-6 9.8, PIO data-out).
      block_in_flight_ = std::min(remaining_, block_sectors_);
      start_data_out(size_t{block_in_flight_} * kAtaSectorSize, kReady, false);
      break;
    case Transfer::DmaRead:
    case Transfer::DmaWrite: request_dma(kReady | ata_status::DRQ); break;
    case Transfer::None: break;
  }
}

void AtaDisk::next_read_block() {
  block_in_flight_ = std::min(remaining_, block_sectors_);
  const std::span<uint8_t> data = data_buffer(size_t{block_in_flight_} * kAtaSectorSize);
  if (!backend_->read_sectors(lba_, kAtaSectorSize, data)) {
    log_(fmt::format("ata: read error on {} at sector {}", backend_->name(), lba_));
    set_address(lba_);
    fail(ata_error::UNC);
    return;
  }
  start_data_in(data.size(), kReady, true);
}

void AtaDisk::pio_block_done() {
  if (transfer_ == Transfer::PioWrite) {
    if (!backend_->write_sectors(lba_, kAtaSectorSize, received())) {
      log_(fmt::format("ata: write error on {} at sector {}{}", backend_->name(), lba_,
                       backend_->read_only() ? " (read-only image)" : ""));
      set_address(lba_);
      fail(ata_error::ABRT);
      return;
    }
  } else if (transfer_ != Transfer::PioRead) {
    return;
  }
  lba_ += block_in_flight_;
  remaining_ -= block_in_flight_;
  set_address(lba_ - 1);
  set_remaining_count(remaining_);
  if (remaining_ > 0) {
    if (transfer_ == Transfer::PioRead) {
      next_read_block();
    } else {
      block_in_flight_ = std::min(remaining_, block_sectors_);
      start_data_out(size_t{block_in_flight_} * kAtaSectorSize, kReady, true);
    }
    return;
  }
  if (transfer_ == Transfer::PioWrite && !write_cache_ && !backend_->flush()) {
    fail(ata_error::ABRT);
    return;
  }
  // Data-in ends without an interrupt (the last block's was the command's); data-out with one.
  const bool interrupt = transfer_ == Transfer::PioWrite;
  transfer_ = Transfer::None;
  finish(kReady, interrupt);
}

DmaStatus AtaDisk::dma_transfer(DmaStream& stream) {
  const bool reading = transfer_ == Transfer::DmaRead;
  if (!reading && transfer_ != Transfer::DmaWrite) return DmaStatus::Ok;
  std::vector<uint8_t> bounce;
  while (remaining_ > 0) {
    const uint32_t chunk = std::min<uint32_t>(remaining_, kDmaChunkSectors);
    bounce.resize(size_t{chunk} * kAtaSectorSize);
    DmaStatus status = DmaStatus::Ok;
    if (reading) {
      if (!backend_->read_sectors(lba_, kAtaSectorSize, bounce)) {
        log_(fmt::format("ata: read error on {} at sector {}", backend_->name(), lba_));
        set_address(lba_);
        fail(ata_error::UNC);
        return DmaStatus::Ok;
      }
      status = stream.to_guest(bounce);
    } else {
      status = stream.from_guest(bounce);
      if (status == DmaStatus::Ok && !backend_->write_sectors(lba_, kAtaSectorSize, bounce)) {
        log_(fmt::format("ata: write error on {} at sector {}{}", backend_->name(), lba_,
                         backend_->read_only() ? " (read-only image)" : ""));
        set_address(lba_);
        fail(ata_error::ABRT);
        return DmaStatus::Ok;
      }
    }
    if (status != DmaStatus::Ok) {
      // The scatter list ended early or pointed outside RAM: the command fails, so the
      // guest gets its interrupt instead of waiting for data that never comes.
      set_address(lba_);
      fail(ata_error::ABRT);
      return status;
    }
    lba_ += chunk;
    remaining_ -= chunk;
  }
  set_address(lba_ - 1);
  set_remaining_count(0);
  if (!reading && !write_cache_ && !backend_->flush()) {
    fail(ata_error::ABRT);
    return DmaStatus::Ok;
  }
  transfer_ = Transfer::None;
  complete();
  return DmaStatus::Ok;
}

void AtaDisk::read_verify(bool ext) {
  ext_ = ext;
  if (!decode_range(ext)) return;
  set_address(lba_ + remaining_ - 1);
  set_remaining_count(0);
  complete();
}

void AtaDisk::identify_command() {
  const std::array<uint16_t, 256> id = identify();
  const std::span<uint8_t> data = data_buffer(kAtaSectorSize);
  for (size_t i = 0; i < id.size(); ++i) {
    data[2 * i] = static_cast<uint8_t>(id[i]);
    data[2 * i + 1] = static_cast<uint8_t>(id[i] >> 8);
  }
  start_data_in(data.size(), kReady, true);
}

void AtaDisk::set_features() {
  switch (tf_.features) {
    case FEATURE_ENABLE_WRITE_CACHE: write_cache_ = true; break;
    case FEATURE_DISABLE_WRITE_CACHE:
      write_cache_ = false;
      if (!backend_->flush()) {
        fail(ata_error::ABRT);
        return;
      }
      break;
    case FEATURE_ENABLE_LOOK_AHEAD: look_ahead_ = true; break;
    case FEATURE_DISABLE_LOOK_AHEAD: look_ahead_ = false; break;
    case FEATURE_ENABLE_REVERTING:
    case FEATURE_DISABLE_REVERTING: break;  // settings already survive a software reset
    case FEATURE_SET_TRANSFER_MODE: {
      // Sector count: 00000xxx PIO default, 00001xxx PIO flow control mode x,
      // 00100xxx multiword DMA mode x, 01000xxx Ultra DMA mode x (ATA-6 table 44).
      const uint8_t mode = tf_.sector_count & 0x07;
      switch (tf_.sector_count >> 3) {
        case 0x00:
          if (mode > 1) return fail(ata_error::ABRT);
          pio_mode_ = 0;
          break;
        case 0x01:
          if (mode > 4) return fail(ata_error::ABRT);
          pio_mode_ = mode;
          break;
        case 0x04:
          if (mode > 2) return fail(ata_error::ABRT);
          mwdma_mode_ = mode;
          udma_mode_ = 0xFF;
          break;
        case 0x08:
          if (mode > 5) return fail(ata_error::ABRT);
          udma_mode_ = mode;
          mwdma_mode_ = 0xFF;
          break;
        default: return fail(ata_error::ABRT);
      }
      break;
    }
    default: return fail(ata_error::ABRT);
  }
  complete();
}

void AtaDisk::initialize_device_parameters() {
  // Sectors per track in the sector count register, heads - 1 in device bits 3:0.
  const uint32_t sectors = tf_.sector_count;
  const uint32_t heads = (tf_.device & 0x0Fu) + 1;
  if (sectors == 0) {
    // No usable translation: CHS accesses fail with IDNF until a valid one is set (ATA-6 8.16).
    chs_valid_ = false;
    fail(ata_error::ABRT);
    return;
  }
  current_chs_ = {static_cast<uint32_t>(std::min<uint64_t>(sectors_ / (uint64_t{heads} * sectors), 65535)), heads,
                  sectors};
  chs_valid_ = current_chs_.cylinders > 0;
  complete();
}

void AtaDisk::set_multiple_mode() {
  // A power of two up to word 47's maximum; 0 disables multiple mode.
  const unsigned count = tf_.sector_count;
  if (count > kMaxMultiple || (count & (count - 1)) != 0) {
    fail(ata_error::ABRT);
    return;
  }
  multiple_ = count;
  complete();
}

void AtaDisk::flush_command() {
  if (!backend_->flush()) {
    log_(fmt::format("ata: flush failed on {}", backend_->name()));
    fail(ata_error::ABRT);
    return;
  }
  complete();
}

}  // namespace vmm86
