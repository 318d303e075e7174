// An ATAPI CD/DVD-ROM drive (ATA/ATAPI-6 PACKET feature set, SFF-8020i/MMC commands) with a
// read-only medium of 2048-byte sectors, or none. ATA commands: IDENTIFY PACKET DEVICE,
// PACKET, DEVICE RESET, SET FEATURES (transfer mode), the power commands, CHECK POWER MODE;
// IDENTIFY DEVICE and READ SECTORS abort with the PACKET signature in the registers (how
// drivers tell ATAPI from ATA). Packet commands: TEST UNIT READY, REQUEST SENSE, INQUIRY,
// READ CAPACITY, READ(10), READ(12), SEEK(10), MODE SENSE(6/10) (pages 01h, 2Ah, 3Fh),
// START STOP UNIT (eject/load, refused while locked), PREVENT ALLOW MEDIUM REMOVAL, READ TOC
// (formats 0 and 1, LBA or MSF), GET CONFIGURATION, GET EVENT STATUS NOTIFICATION (media
// class, polled), READ DISC INFORMATION, MECHANISM STATUS, SET CD SPEED; anything else is
// ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.
//
// Sense: a failed command leaves its sense data (key, ASC, ASCQ) for REQUEST SENSE and shows
// the key in the error register's bits 7:4 with CHK in the status; a command that succeeds
// clears it. Unit attention (power on 29h/00h, medium changed 28h/00h) is reported once by
// the first command other than INQUIRY, REQUEST SENSE, GET CONFIGURATION and GET EVENT STATUS
// NOTIFICATION (SPC-3 5.8.7, MMC-5 4.1.6.1). Without a medium (or with the tray open) the
// media commands fail with NOT READY / MEDIUM NOT PRESENT (3Ah).
//
// A medium larger than a CD (over 360000 sectors, an 80-minute CD) is presented as a DVD-ROM
// (profile 0010h), a smaller one as a CD-ROM (0008h). Single-session, one data track.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "devices/storage/block_backend.h"
#include "devices/storage/ide_drive.h"

namespace vmm86 {

struct AtapiCdromConfig {
  std::string serial = "VMM86-CD00";    ///< IDENTIFY words 10-19
  std::string model = "VMM86 DVD-ROM";  ///< IDENTIFY words 27-46
  std::string firmware = "1.0";         ///< IDENTIFY words 23-26, INQUIRY revision
  std::string vendor = "VMM86";         ///< INQUIRY bytes 8-15
  std::string product = "DVD-ROM";      ///< INQUIRY bytes 16-31
};

/// SCSI sense keys used here (SPC-3 table 27).
namespace sense_key {
constexpr uint8_t NoSense = 0x0;
constexpr uint8_t NotReady = 0x2;
constexpr uint8_t MediumError = 0x3;
constexpr uint8_t IllegalRequest = 0x5;
constexpr uint8_t UnitAttention = 0x6;
constexpr uint8_t AbortedCommand = 0xB;
}  // namespace sense_key

struct SenseData {
  uint8_t key = sense_key::NoSense;
  uint8_t asc = 0;
  uint8_t ascq = 0;
};

class AtapiCdrom final : public IdeDrive {
 public:
  /// `medium` may be null (an empty drive). Its size need not be a multiple of 2048.
  explicit AtapiCdrom(std::unique_ptr<BlockBackend> medium, AtapiCdromConfig config = {}, LogFn log = {});

  [[nodiscard]] bool is_packet_device() const override { return true; }

  /// Host side: a new disc in a closed tray (unit attention 28h, a NewMedia event).
  void insert_medium(std::unique_ptr<BlockBackend> medium);
  /// Host side: takes the disc out (a MediaRemoval event); returns it.
  std::unique_ptr<BlockBackend> remove_medium();
  /// A disc is in and the tray is closed.
  [[nodiscard]] bool medium_present() const { return medium_ != nullptr && !tray_open_; }
  [[nodiscard]] bool tray_open() const { return tray_open_; }
  [[nodiscard]] bool removal_prevented() const { return prevent_removal_; }
  /// 2048-byte sectors on the disc (0 without one).
  [[nodiscard]] uint64_t sector_count() const;
  [[nodiscard]] const SenseData& sense() const { return sense_; }
  /// The IDENTIFY PACKET DEVICE data.
  [[nodiscard]] std::array<uint16_t, 256> identify() const;

 private:
  void run_command(uint8_t command) override;
  void pio_block_done() override;
  DmaStatus dma_transfer(DmaStream& stream) override;
  [[nodiscard]] uint8_t reset_status() const override { return 0; }
  void on_reset(bool power_on) override;

  using Cdb = std::array<uint8_t, 12>;

  void packet_command();
  void identify_packet_command();
  void abort_with_signature();
  void execute_packet(const Cdb& cdb);
  [[nodiscard]] bool check_medium();
  void check_condition(uint8_t key, uint8_t asc, uint8_t ascq);
  void command_ok();
  /// Sends `reply`, cut to `allocation_length`, to the guest (PIO or DMA).
  void send_reply(std::vector<uint8_t> reply, size_t allocation_length);
  /// Sends `count` sectors of the medium from `lba`.
  void send_sectors(uint64_t lba, uint64_t count);
  void start_data_phase();
  void next_pio_block();
  [[nodiscard]] bool read_payload(uint64_t at, std::span<uint8_t> out);

  void request_sense(const Cdb& cdb);
  void inquiry(const Cdb& cdb);
  void read_capacity();
  void read(uint64_t lba, uint64_t count);
  void mode_sense(const Cdb& cdb, bool ten_byte);
  void start_stop_unit(const Cdb& cdb);
  void read_toc(const Cdb& cdb);
  void get_configuration(const Cdb& cdb);
  void get_event_status(const Cdb& cdb);
  void read_disc_information(const Cdb& cdb);
  void mechanism_status(const Cdb& cdb);
  [[nodiscard]] bool is_dvd() const;

  std::unique_ptr<BlockBackend> medium_;
  AtapiCdromConfig config_;
  bool tray_open_ = false;
  bool prevent_removal_ = false;
  SenseData sense_;
  SenseData unit_attention_;  ///< key NoSense: none pending
  uint8_t media_event_ = 0;   ///< GET EVENT STATUS media event code, reported once
  uint8_t mwdma_mode_ = 0xFF;
  uint8_t udma_mode_ = 0xFF;

  // The packet command in progress.
  enum class Phase : uint8_t { Idle, Identify, Packet, Data };
  Phase phase_ = Phase::Idle;
  bool dma_ = false;  ///< features bit 0 of the PACKET command
  uint32_t byte_count_limit_ = 0;
  std::vector<uint8_t> reply_;  ///< payload of a non-read command
  bool from_medium_ = false;    ///< payload is medium bytes from medium_offset_
  uint64_t medium_offset_ = 0;
  uint64_t payload_size_ = 0;
  uint64_t payload_sent_ = 0;
  size_t block_bytes_ = 0;
};

}  // namespace vmm86
