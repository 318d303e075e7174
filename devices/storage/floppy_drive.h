// A PC floppy drive and the disk in it: the disk's format comes from its image's size (the
// five PC formats below, 512-byte sectors, two sides), the drive is the kind that takes it
// (its CMOS type). The drive keeps what a real one does: where the head is (a cylinder), the
// disk-change line (DSKCHG: set at power-on and when the disk is taken out, cleared by a step
// pulse with a disk in), write protection (a read-only image, or no disk, as a 3.5" drive
// reports it). Sectors are addressed as the disk's ID fields name them: cylinder, head,
// sector 1..N.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "devices/storage/block_backend.h"

namespace vmm86 {

inline constexpr uint32_t kFloppySectorSize = 512;
/// The 82077AA's sector size code for 512 bytes (128 << 2).
inline constexpr uint8_t kFloppySizeCode = 2;

/// Data rates as the DSR/CCR bits 1-0 select them.
enum class FloppyRate : uint8_t { Kbps500 = 0, Kbps300 = 1, Kbps250 = 2, Mbps1 = 3 };

/// A disk format and the drive that takes it.
struct FloppyFormat {
  std::string_view name;
  uint8_t cylinders;
  uint8_t heads;
  uint8_t sectors;    ///< per track
  uint8_t cmos_type;  ///< the drive's type in CMOS byte 0x10 (1 360K, 2 1.2M, 3 720K, 4 1.44M, 5 2.88M)
  FloppyRate rate;    ///< the rate the disk was recorded at: reads at another rate find no IDs

  [[nodiscard]] constexpr uint64_t bytes() const { return uint64_t{cylinders} * heads * sectors * kFloppySectorSize; }
};

inline constexpr std::array<FloppyFormat, 5> kFloppyFormats{{
    {"360 KB 5.25\"", 40, 2, 9, 1, FloppyRate::Kbps250},
    {"1.2 MB 5.25\"", 80, 2, 15, 2, FloppyRate::Kbps500},
    {"720 KB 3.5\"", 80, 2, 9, 3, FloppyRate::Kbps250},
    {"1.44 MB 3.5\"", 80, 2, 18, 4, FloppyRate::Kbps500},
    {"2.88 MB 3.5\"", 80, 2, 36, 5, FloppyRate::Mbps1},
}};

/// The format whose size is `bytes`; otherwise a one-line error naming `path` and the sizes.
[[nodiscard]] Result<const FloppyFormat*> floppy_format_for_size(uint64_t bytes, const std::string& path);

class FloppyDrive {
 public:
  /// A drive of `format`'s type holding `disk` (null: an empty drive); the disk must be of
  /// that format (floppy_format_for_size).
  FloppyDrive(const FloppyFormat& format, std::unique_ptr<BlockBackend> disk);
  /// A drive for the image `disk`, its type from the image's size; errors name the image.
  [[nodiscard]] static Result<std::unique_ptr<FloppyDrive>> for_image(std::unique_ptr<BlockBackend> disk);

  [[nodiscard]] const FloppyFormat& format() const { return format_; }
  [[nodiscard]] bool has_disk() const { return disk_ != nullptr; }
  /// No disk, or a read-only image.
  [[nodiscard]] bool write_protected() const { return disk_ == nullptr || disk_->read_only(); }
  [[nodiscard]] bool disk_changed() const { return disk_changed_; }
  [[nodiscard]] uint8_t cylinder() const { return cylinder_; }
  /// Moves the head; a step with a disk in clears the disk-change line.
  void step_to(uint8_t cylinder);

  /// The disk has a sector with this ID (cylinder, head, sector 1..N).
  [[nodiscard]] bool has_sector(uint8_t cylinder, uint8_t head, uint8_t sector) const;
  /// False on a host I/O error or a sector the disk does not have.
  [[nodiscard]] bool read_sector(uint8_t cylinder, uint8_t head, uint8_t sector,
                                 std::span<uint8_t, kFloppySectorSize> out);
  [[nodiscard]] bool write_sector(uint8_t cylinder, uint8_t head, uint8_t sector,
                                  std::span<const uint8_t, kFloppySectorSize> data);
  /// The next sector ID passing under the head (READ ID): 1, 2, ... N, 1, ...
  [[nodiscard]] uint8_t next_sector_id();
  [[nodiscard]] bool flush() { return disk_ == nullptr || disk_->flush(); }

  /// Takes the disk out (the change line goes active) and returns it.
  std::unique_ptr<BlockBackend> eject();
  /// Puts a disk of the drive's format in.
  void insert(std::unique_ptr<BlockBackend> disk);

 private:
  [[nodiscard]] uint64_t offset_of(uint8_t cylinder, uint8_t head, uint8_t sector) const;

  const FloppyFormat& format_;
  std::unique_ptr<BlockBackend> disk_;
  uint8_t cylinder_ = 0;
  uint8_t last_id_ = 0;
  bool disk_changed_ = true;  ///< no step since power-on
};

}  // namespace vmm86
