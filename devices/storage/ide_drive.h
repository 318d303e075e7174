// One device on an IDE cable (ATA/ATAPI-6 §5 and §9), the part that ATA disks and ATAPI
// drives share: the task-file registers it latches, the status it shows, its interrupt
// request, the PIO data buffer of the current DRQ block and the hand-off to bus-master DMA.
// The channel (ide_channel.h) routes port accesses here; the subclasses interpret commands.
//
// Every transfer is synchronous: a command has done its media access by the time the
// guest's `out` returns, so BSY is never seen set by a guest except during a software reset.
// Sizes are bounded by the commands (at most 65536 ATA sectors, 65535 CD sectors per
// command) and data moves in blocks of at most 64 KiB, so the vCPU never waits long.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "devices/log.h"
#include "devices/storage/dma.h"

namespace vmm86 {

/// ATA command codes that both kinds of drive take (ATA/ATAPI-6; a PACKET device's set is
/// table B.2); each drive's own commands stay with it.
namespace ata_cmd {
enum : uint8_t {
  NOP = 0x00,
  DEVICE_RESET = 0x08,
  READ_SECTORS = 0x20,
  EXECUTE_DEVICE_DIAGNOSTIC = 0x90,
  PACKET = 0xA0,
  IDENTIFY_PACKET_DEVICE = 0xA1,
  STANDBY_IMMEDIATE = 0xE0,
  IDLE_IMMEDIATE = 0xE1,
  STANDBY = 0xE2,
  IDLE = 0xE3,
  CHECK_POWER_MODE = 0xE5,
  SLEEP = 0xE6,
  IDENTIFY_DEVICE = 0xEC,
  SET_FEATURES = 0xEF,
};
}  // namespace ata_cmd

/// Command block register offsets from the channel's base (0x1F0 / 0x170).
namespace ata_reg {
constexpr uint16_t Data = 0;
constexpr uint16_t Error = 1;  ///< read; Features when written
constexpr uint16_t Features = 1;
constexpr uint16_t SectorCount = 2;  ///< ATAPI: interrupt reason when read
constexpr uint16_t LbaLow = 3;
constexpr uint16_t LbaMid = 4;   ///< ATAPI: byte count, low byte
constexpr uint16_t LbaHigh = 5;  ///< ATAPI: byte count, high byte
constexpr uint16_t Device = 6;
constexpr uint16_t Status = 7;  ///< read; Command when written
constexpr uint16_t Command = 7;
}  // namespace ata_reg

/// Status register bits.
namespace ata_status {
constexpr uint8_t BSY = 0x80;
constexpr uint8_t DRDY = 0x40;
constexpr uint8_t DF = 0x20;
constexpr uint8_t DSC = 0x10;  ///< ATA: seek complete (obsolete, still read by old drivers)
constexpr uint8_t DRQ = 0x08;
constexpr uint8_t ERR = 0x01;  ///< ATAPI: CHK
}  // namespace ata_status

/// Error register bits (ATA commands).
namespace ata_error {
constexpr uint8_t UNC = 0x40;   ///< uncorrectable data error
constexpr uint8_t IDNF = 0x10;  ///< address out of range / not found
constexpr uint8_t ABRT = 0x04;  ///< command aborted
/// After a reset or EXECUTE DEVICE DIAGNOSTIC: "device passed" (ATA-6 table 23).
constexpr uint8_t DiagnosticPassed = 0x01;
}  // namespace ata_error

/// Device register bits.
namespace ata_device {
constexpr uint8_t LBA = 0x40;
constexpr uint8_t DEV = 0x10;
}  // namespace ata_device

/// The registers one device holds. Writes reach both devices on a cable; the previous value
/// of each LBA48 register is kept for reads with the control register's HOB bit set.
struct AtaTaskFile {
  uint8_t features = 0;
  uint8_t sector_count = 0;
  uint8_t lba_low = 0;
  uint8_t lba_mid = 0;
  uint8_t lba_high = 0;
  uint8_t hob_features = 0;
  uint8_t hob_sector_count = 0;
  uint8_t hob_lba_low = 0;
  uint8_t hob_lba_mid = 0;
  uint8_t hob_lba_high = 0;
  uint8_t device = 0;
  uint8_t status = 0;
  uint8_t error = 0;
};

class IdeDrive {
 public:
  virtual ~IdeDrive() = default;
  IdeDrive(const IdeDrive&) = delete;
  IdeDrive& operator=(const IdeDrive&) = delete;

  /// ATAPI (PACKET feature set) or ATA.
  [[nodiscard]] virtual bool is_packet_device() const = 0;
  /// Device 0 (master) or 1 (slave), as jumpered; the channel sets it when attaching.
  [[nodiscard]] unsigned unit() const { return unit_; }
  void set_unit(unsigned unit) { unit_ = unit; }

  // --- The channel's side.
  /// A write to command block register 1-6 (`ata_reg::Features` .. `ata_reg::Device`).
  void write_register(uint16_t reg, uint8_t value);
  /// Command block register 1-6; `hob` selects the previous value of registers 1-5.
  [[nodiscard]] uint8_t read_register(uint16_t reg, bool hob) const;
  [[nodiscard]] uint8_t status() const { return tf_.status; }
  [[nodiscard]] const AtaTaskFile& task_file() const { return tf_; }
  /// A write to the command register: abandons any transfer in progress and runs `command`.
  /// Ignored during a reset (BSY).
  void execute(uint8_t command);
  /// The data register. Outside a PIO data-in block it reads 0xFFFF (nothing drives it).
  [[nodiscard]] uint16_t read_data();
  void write_data(uint16_t value);
  /// SRST set: BSY, no interrupt, any command abandoned.
  void begin_reset();
  /// The end of a reset or an EXECUTE DEVICE DIAGNOSTIC: the signature in the registers,
  /// `diagnostic_code` in the error register, the after-reset status.
  void finish_reset(uint8_t diagnostic_code);
  /// Power-on / hardware reset: also forgets settings made by the guest (SET FEATURES,
  /// SET MULTIPLE MODE, INITIALIZE DEVICE PARAMETERS).
  void power_on_reset();

  /// INTRQ as this device would drive it (the channel applies nIEN and device selection).
  [[nodiscard]] bool intrq() const { return intrq_; }
  /// A status register read acknowledges the interrupt.
  void acknowledge_interrupt() { intrq_ = false; }
  /// True once per interrupt the device raised since the last call.
  [[nodiscard]] bool take_interrupt_event();
  /// Sets INTRQ; used by the channel for EXECUTE DEVICE DIAGNOSTIC.
  void raise_interrupt();

  /// The current command waits for the bus-master engine.
  [[nodiscard]] bool dma_requested() const { return dma_requested_; }
  /// Moves the data of the DMA command that waits (see dma_requested) and completes it;
  /// returns what the scatter list did. Nothing happens when no command waits.
  DmaStatus run_dma(DmaStream& stream);

 protected:
  explicit IdeDrive(LogFn log);

  virtual void run_command(uint8_t command) = 0;
  /// The guest has read or written the whole current DRQ block.
  virtual void pio_block_done() = 0;
  /// The data of the DMA command that waits; completes the command.
  virtual DmaStatus dma_transfer(DmaStream& stream) = 0;
  /// Status after a reset (ATA: DRDY|DSC; ATAPI: 0, ATA-6 9.12).
  [[nodiscard]] virtual uint8_t reset_status() const = 0;
  /// The subclass drops its command state; `power_on` also restores its defaults.
  virtual void on_reset(bool power_on) = 0;

  /// A zero-filled buffer for the next DRQ block of `bytes` (padded to whole words).
  [[nodiscard]] std::span<uint8_t> data_buffer(size_t bytes);
  /// The device has `bytes` in data_buffer() for the guest: DRQ set, `status` shown.
  void start_data_in(size_t bytes, uint8_t status, bool interrupt);
  /// The device wants `bytes` from the guest into data_buffer().
  void start_data_out(size_t bytes, uint8_t status, bool interrupt);
  /// The command waits for DMA (the channel tells the bus master).
  void request_dma(uint8_t status);
  /// Ends the command: no data phase, `status` shown, INTRQ if `interrupt`.
  void finish(uint8_t status, bool interrupt);
  /// The received DRQ block (after start_data_out, in pio_block_done).
  [[nodiscard]] std::span<const uint8_t> received() const { return {buffer_.data(), data_end_}; }

  AtaTaskFile tf_;
  LogFn log_;

 private:
  enum class Phase : uint8_t { None, DataIn, DataOut };
  void end_block();

  std::vector<uint8_t> buffer_;
  unsigned unit_ = 0;
  size_t data_pos_ = 0;
  size_t data_end_ = 0;
  Phase phase_ = Phase::None;
  bool in_reset_ = false;
  bool intrq_ = false;
  bool interrupt_event_ = false;
  bool dma_requested_ = false;
};

/// Stores `text` in IDENTIFY words as ATA strings are laid out: two characters per word, the
/// first in bits 15:8, space-padded to `words.size() * 2` characters.
void put_ata_string(std::span<uint16_t> words, std::string_view text);
/// Word 255 (ATA-6 8.15.61): signature A5h in bits 7:0 and the checksum in bits 15:8 that
/// makes the 512 bytes sum to zero.
void put_identify_checksum(std::span<uint16_t, 256> words);

}  // namespace vmm86
