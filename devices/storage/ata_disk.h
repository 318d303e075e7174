// An ATA hard disk (ATA/ATAPI-6, with the LBA48 feature set) over a BlockBackend of 512-byte
// sectors. Commands: IDENTIFY DEVICE; READ/WRITE SECTORS, READ/WRITE MULTIPLE and their EXT
// forms; READ VERIFY (EXT); READ/WRITE DMA (EXT); SET MULTIPLE MODE; FLUSH CACHE (EXT);
// SET FEATURES (transfer mode, write cache, look-ahead); INITIALIZE DEVICE PARAMETERS;
// RECALIBRATE, SEEK; IDLE, STANDBY, SLEEP (the immediate and timer forms), CHECK POWER MODE;
// NOP. Anything else is aborted (ERR, ABRT). Addressing: CHS (the current translation), LBA28
// and LBA48. After a transfer the address registers hold the last sector transferred and the
// sector count what was left (0), as ATA-2 defines and old drivers read.
//
// The write cache is the host's page cache: with it enabled (the default) a write completes
// when pwrite returns and FLUSH CACHE calls fdatasync; a guest that disables it gets a flush
// after every write command. Power modes are only remembered for CHECK POWER MODE; a disk in
// SLEEP still answers (nothing spins down).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "devices/storage/block_backend.h"
#include "devices/storage/ide_drive.h"

namespace vmm86 {

struct AtaDiskConfig {
  std::string serial = "VMM86-0000";     ///< words 10-19, 20 characters
  std::string model = "VMM86 HARDDISK";  ///< words 27-46, 40 characters
  std::string firmware = "1.0";          ///< words 23-26, 8 characters
};

/// Cylinders, heads, sectors per track.
struct ChsGeometry {
  uint32_t cylinders = 0;
  uint32_t heads = 0;
  uint32_t sectors = 0;
};

class AtaDisk final : public IdeDrive {
 public:
  /// Sectors moved per DRQ block at most in multiple mode (IDENTIFY word 47).
  static constexpr unsigned kMaxMultiple = 16;

  AtaDisk(std::unique_ptr<BlockBackend> backend, AtaDiskConfig config = {}, LogFn log = {});

  [[nodiscard]] bool is_packet_device() const override { return false; }
  [[nodiscard]] BlockBackend& backend() { return *backend_; }
  /// User-addressable sectors (a partial last 512 bytes counts as a sector).
  [[nodiscard]] uint64_t sector_count() const { return sectors_; }
  /// The translation reported in IDENTIFY words 1, 3, 6 (16 heads, 63 sectors).
  [[nodiscard]] const ChsGeometry& default_geometry() const { return default_chs_; }
  /// The translation in use (INITIALIZE DEVICE PARAMETERS changes it).
  [[nodiscard]] const ChsGeometry& current_geometry() const { return current_chs_; }
  /// The IDENTIFY DEVICE data the disk would return now.
  [[nodiscard]] std::array<uint16_t, 256> identify() const;

 private:
  enum class Transfer : uint8_t { None, PioRead, PioWrite, DmaRead, DmaWrite };

  void run_command(uint8_t command) override;
  void pio_block_done() override;
  DmaStatus dma_transfer(DmaStream& stream) override;
  [[nodiscard]] uint8_t reset_status() const override { return kReady; }
  void on_reset(bool power_on) override;

  static constexpr uint8_t kReady = ata_status::DRDY | ata_status::DSC;

  /// Decodes the address and count of a media access command into lba_/remaining_; aborts
  /// it (IDNF) when the range is not on the disk.
  [[nodiscard]] bool decode_range(bool ext);
  /// Writes `lba` back into the address registers in the command's addressing mode.
  void set_address(uint64_t lba);
  void set_remaining_count(uint32_t count);
  void begin_transfer(Transfer transfer, bool ext, unsigned block_sectors);
  void next_read_block();
  void complete();
  void fail(uint8_t error);
  void identify_command();
  void set_features();
  void initialize_device_parameters();
  void set_multiple_mode();
  void flush_command();
  void read_verify(bool ext);

  std::unique_ptr<BlockBackend> backend_;
  AtaDiskConfig config_;
  uint64_t sectors_;
  ChsGeometry default_chs_;
  ChsGeometry current_chs_;
  bool chs_valid_ = true;

  // Settings.
  unsigned multiple_ = 0;  ///< sectors per DRQ block for READ/WRITE MULTIPLE; 0 = disabled
  bool write_cache_ = true;
  bool look_ahead_ = true;
  uint8_t pio_mode_ = 0;       ///< selected PIO flow-control mode (3, 4) or 0 = default
  uint8_t mwdma_mode_ = 0xFF;  ///< selected multiword DMA mode, 0xFF = none
  uint8_t udma_mode_ = 0xFF;   ///< selected Ultra DMA mode, 0xFF = none
  uint8_t power_mode_ = 0xFF;  ///< CHECK POWER MODE answer: FFh active/idle, 00h standby

  // The media access in progress.
  Transfer transfer_ = Transfer::None;
  bool ext_ = false;
  uint64_t lba_ = 0;
  uint32_t remaining_ = 0;
  unsigned block_sectors_ = 1;
  unsigned block_in_flight_ = 0;
};

}  // namespace vmm86
