// Intel 82077AA floppy disk controller in PC-AT mode, as a PC has it: ports 0x3F0-0x3F5 and
// 0x3F7 (0x3F6 is the IDE control block's), IRQ 6, ISA DMA channel 2, two drives (A: and B:).
//   0x3F0/1  SRA/SRB: not there in PC-AT mode (read 0xFF)
//   0x3F2    DOR: drive select, reset (bit 2 low holds the controller in reset), DMA gate
//            (bit 3: in PC-AT mode it also gates the interrupt), motor enables
//   0x3F3    TDR (stored)          0x3F4  MSR (read) / DSR (write: software reset, data rate)
//   0x3F5    FIFO: command bytes in, result bytes out
//   0x3F7    DIR (read: bit 7 the selected drive's disk-change line) / CCR (write: data rate)
// Commands (one table, kCommands in the .cpp): READ DATA and WRITE DATA (multi-track, DMA),
// READ ID, FORMAT TRACK, SPECIFY, SENSE DRIVE STATUS, RECALIBRATE, SEEK, RELATIVE SEEK,
// SENSE INTERRUPT STATUS, VERSION (0x90: the enhanced 82077AA), CONFIGURE, LOCK,
// PERPENDICULAR MODE, DUMPREG; anything else is an invalid command (one result byte, 0x80),
// which is how the 82077AA answers the 82078's PART ID (Linux then calls it a post-1991
// 82077). A reset through DOR or DSR gives one interrupt and four SENSE INTERRUPT STATUS
// answers (0xC0-0xC3) while polling is enabled (CONFIGURE; LOCK keeps CONFIGURE over a
// software reset); a new interrupt drops the answers not taken yet.
//
// Timing: synchronous. A seek ends inside the port write that starts it (its interrupt is
// pending at once); a READ or WRITE moves all its sectors inside the write of its last command
// byte when DMA channel 2 can run, or when the guest makes it runnable (the controller holds
// DREQ meanwhile, RQM clear). The transfer ends at the DMA controller's terminal count
// (normal termination) or at the end of the cylinder (abnormal, ST1 EN); like QEMU's and
// Bochs's controllers, the end of the disk's track counts as the end of the track even
// when EOT is larger, and READ/WRITE move the head to the command's cylinder (an implied
// seek whether or not CONFIGURE enabled it: SeaBIOS's driver never seeks).
// Simplifications: no disk or no drive gives "missing address mark" at once (a real
// controller would wait for index pulses forever); a data rate other than the disk's does
// too, as on hardware; the motor bits are not needed to read; non-DMA mode (SPECIFY's ND
// bit) is stored but transfers still wait for DMA; READ/WRITE DELETED DATA, READ TRACK,
// VERIFY and SCAN are invalid commands; FORMAT TRACK writes the fill byte into sectors of
// the image's own layout and ignores IDs it cannot store.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/legacy/isa_dma.h"
#include "devices/storage/floppy_drive.h"

namespace vmm86 {

/// The 82077AA's commands in PC-AT mode.
enum class FdcCommand : uint8_t {
  ReadData,
  WriteData,
  ReadId,
  FormatTrack,
  Specify,
  SenseDriveStatus,
  Recalibrate,
  SenseInterrupt,
  Seek,
  RelativeSeek,
  Version,
  Configure,
  Lock,
  PerpendicularMode,
  DumpRegisters,
};

/// A command byte names a row when (byte & mask) == opcode; `length` counts every byte.
struct FdcCommandSpec {
  uint8_t opcode;
  uint8_t mask;
  uint8_t length;
  FdcCommand command;
};

// The command set (82077AA datasheet, "Command Set"); the masked-out bits are MT, MFM and SK
// (READ/WRITE), MFM (READ ID, FORMAT), DIR (RELATIVE SEEK) and LOCK.
inline constexpr FdcCommandSpec kFdcCommands[] = {
    {0x06, 0x1F, 9, FdcCommand::ReadData},           // MT MFM SK 0 0110
    {0x05, 0x3F, 9, FdcCommand::WriteData},          // MT MFM 0 0 0101
    {0x0A, 0xBF, 2, FdcCommand::ReadId},             // 0 MFM 0 0 1010
    {0x0D, 0xBF, 6, FdcCommand::FormatTrack},        // 0 MFM 0 0 1101
    {0x03, 0xFF, 3, FdcCommand::Specify},            //
    {0x04, 0xFF, 2, FdcCommand::SenseDriveStatus},   //
    {0x07, 0xFF, 2, FdcCommand::Recalibrate},        //
    {0x08, 0xFF, 1, FdcCommand::SenseInterrupt},     //
    {0x0F, 0xFF, 3, FdcCommand::Seek},               //
    {0x8F, 0xBF, 3, FdcCommand::RelativeSeek},       // 1 DIR 0 0 1111
    {0x10, 0xFF, 1, FdcCommand::Version},            //
    {0x13, 0xFF, 4, FdcCommand::Configure},          //
    {0x14, 0x7F, 1, FdcCommand::Lock},               // LOCK 0 0 1 0100
    {0x12, 0xFF, 2, FdcCommand::PerpendicularMode},  //
    {0x0E, 0xFF, 1, FdcCommand::DumpRegisters},      //
};

/// The row a first command byte selects; null for an invalid command.
[[nodiscard]] constexpr const FdcCommandSpec* find_fdc_command(uint8_t byte) {
  for (const FdcCommandSpec& spec : kFdcCommands) {
    if ((byte & spec.mask) == spec.opcode) return &spec;
  }
  return nullptr;
}

class FloppyController final : public IsaDmaClient {
 public:
  static constexpr uint16_t kBase = 0x3F0;  ///< SRA..FIFO, 6 ports
  static constexpr unsigned kMainPorts = 6;
  static constexpr uint16_t kDirPort = 0x3F7;
  static constexpr unsigned kIrq = 6;
  static constexpr unsigned kDmaChannel = 2;
  static constexpr unsigned kDrives = 2;
  static constexpr uint8_t kVersion = 0x90;

  /// `dma` must outlive the controller; the controller attaches itself to `dma_channel`.
  FloppyController(IsaDma& dma, IrqLine irq, unsigned dma_channel = kDmaChannel);
  FloppyController(const FloppyController&) = delete;
  FloppyController& operator=(const FloppyController&) = delete;
  ~FloppyController();

  /// Drive 0 (A:) or 1 (B:); replaces any drive there.
  void attach(unsigned index, std::unique_ptr<FloppyDrive> drive);
  /// Null for an empty position.
  [[nodiscard]] FloppyDrive* drive(unsigned index) const;
  /// CMOS byte 0x10 (drive A's type in the high nibble, B's in the low one).
  [[nodiscard]] uint8_t cmos_drive_types() const;
  /// Claims 0x3F0-0x3F5 and 0x3F7.
  [[nodiscard]] BusStatus register_ports(IoBus& bus);
  [[nodiscard]] PortIoDevice& main_ports() { return main_window_; }
  [[nodiscard]] PortIoDevice& dir_port() { return dir_window_; }
  /// Hardware reset: as QEMU's board leaves the controller (out of reset, DMA gate open,
  /// no interrupt, polling enabled, 500 kb/s); the drives keep their heads and disks.
  void reset();
  /// Makes written sectors durable; false if an image could not.
  [[nodiscard]] bool flush_disks();

  void dma_ready(unsigned channel) override;

  struct Stats {
    uint64_t commands = 0;
    uint64_t invalid_commands = 0;
    uint64_t sectors_read = 0;
    uint64_t sectors_written = 0;
  };
  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  enum class Phase : uint8_t { Command, Execution, Result };
  /// A READ, WRITE or FORMAT in its execution phase: the next sector's ID and where it ends.
  struct Transfer {
    enum class Kind : uint8_t { Read, Write, Format } kind = Kind::Read;
    uint8_t drive = 0;
    uint8_t head = 0;      ///< the physical head
    uint8_t st0_head = 0;  ///< the head of the last sector moved (ST0 HD)
    uint8_t c = 0, h = 0, r = 0, n = 0;
    uint8_t eot = 0;
    bool multi_track = false;
    bool seeked = false;      ///< an implied seek moved the head (ST0 SE)
    uint8_t format_left = 0;  ///< FORMAT: sectors still to format
    uint8_t format_fill = 0;  ///< FORMAT: the fill byte
  };
  class Window final : public PortIoDevice {
   public:
    Window(FloppyController& fdc, uint16_t first) : fdc_(fdc), first_(first) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    FloppyController& fdc_;
    uint16_t first_;  ///< register number of the window's first port
  };

  [[nodiscard]] uint8_t read_register(unsigned reg);
  void write_register(unsigned reg, uint8_t value);
  void write_dor(uint8_t value);
  [[nodiscard]] uint8_t main_status() const;
  [[nodiscard]] uint8_t read_fifo();
  void write_fifo(uint8_t value);
  /// Clears the command, result and interrupt state (entering or during a reset).
  void clear_command_state();
  /// A software reset ends: the polling interrupt if polling is enabled.
  void finish_reset();
  void execute(FdcCommand command);
  void seek(uint8_t drive, uint8_t head, uint8_t cylinder);
  void recalibrate(uint8_t drive);
  void sense_interrupt();
  void sense_drive_status();
  void read_id();
  void dump_registers();
  void start_transfer(Transfer::Kind kind);
  /// Why a disk cannot be read or written at all (ST1 bits), or 0.
  [[nodiscard]] uint8_t medium_error(const FloppyDrive* drive, bool writing) const;
  void run_sectors();
  void run_format();
  /// Moves the transfer to the next sector ID; true at the end of the cylinder.
  bool advance(Transfer& t) const;
  void end_transfer(uint8_t st0, uint8_t st1, uint8_t st2);
  void enter_result(std::initializer_list<uint8_t> bytes, bool interrupt);
  void command_done();
  void update_irq();
  [[nodiscard]] FloppyDrive* drive_at(uint8_t index) const { return index < kDrives ? drives_[index].get() : nullptr; }

  IsaDma& dma_;
  IrqLine irq_;
  unsigned dma_channel_;
  std::array<std::unique_ptr<FloppyDrive>, kDrives> drives_;

  uint8_t dor_ = 0;
  uint8_t tdr_ = 0;
  uint8_t dsr_ = 0;  ///< as last written (precompensation, power down)
  uint8_t rate_ = 0;
  bool in_reset_ = false;
  // SPECIFY, CONFIGURE, PERPENDICULAR MODE, LOCK.
  std::array<uint8_t, 2> specify_{};
  uint8_t config_ = 0;
  uint8_t pretrk_ = 0;
  uint8_t perpendicular_ = 0;  ///< D3-D0 in bits 5-2, GAP, WGATE
  bool lock_ = false;
  uint8_t last_eot_ = 0;
  std::array<uint8_t, 4> pcn_{};  ///< present cylinder number per drive select

  Phase phase_ = Phase::Command;
  std::array<uint8_t, 9> command_{};
  uint8_t command_len_ = 0;
  const FdcCommandSpec* command_spec_ = nullptr;
  std::array<uint8_t, 10> result_{};
  uint8_t result_len_ = 0;
  uint8_t result_pos_ = 0;
  std::optional<Transfer> transfer_;

  // Interrupt sources.
  bool result_irq_ = false;                           ///< READ/WRITE/ID/FORMAT ended
  bool reset_irq_ = false;                            ///< the polling interrupt after a reset
  uint8_t reset_polls_ = 0;                           ///< SENSE INTERRUPT answers left after it
  std::array<std::optional<uint8_t>, 4> seek_st0_{};  ///< a SEEK/RECALIBRATE ended (its ST0)

  Stats stats_;
  Window main_window_{*this, 0};
  Window dir_window_{*this, 7};
};

}  // namespace vmm86
