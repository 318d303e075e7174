// What a disk or CD drive reads and writes: a byte-addressed image with a fixed size. Drives
// address it in sectors of their own size (512 for ATA disks, 2048 for CD-ROMs); the helpers
// below convert. Calls come from the vCPU thread and complete before they return, so a
// backend is synchronous; failures are plain `false` (a hot path), and the drive turns them
// into an ATA or SCSI error for the guest and a line in the log.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace vmm86 {

/// ATA logical sector.
inline constexpr uint32_t kAtaSectorSize = 512;
/// CD-ROM user-data sector (mode 1 / mode 2 form 1).
inline constexpr uint32_t kCdSectorSize = 2048;

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  /// The image size in bytes; it need not be a multiple of any sector size.
  [[nodiscard]] virtual uint64_t size_bytes() const = 0;
  [[nodiscard]] virtual bool read_only() const = 0;
  /// Fills `out` from `offset`; bytes past the end read as zero (a truncated last sector).
  /// False on a host I/O error.
  [[nodiscard]] virtual bool read(uint64_t offset, std::span<uint8_t> out) = 0;
  /// False on a host I/O error, on a read-only backend, or when the range ends past
  /// capacity(kAtaSectorSize) (the last, partial sector may be written whole).
  [[nodiscard]] virtual bool write(uint64_t offset, std::span<const uint8_t> data) = 0;
  /// Makes completed writes durable (fdatasync for a file).
  [[nodiscard]] virtual bool flush() = 0;
  /// For messages: the path or a description.
  [[nodiscard]] virtual const std::string& name() const = 0;

  /// Whole sectors, counting a partial last one (it reads zero-filled).
  [[nodiscard]] uint64_t sector_count(uint32_t sector_size) const {
    return (size_bytes() + sector_size - 1) / sector_size;
  }
  [[nodiscard]] bool read_sectors(uint64_t first, uint32_t sector_size, std::span<uint8_t> out) {
    return read(first * sector_size, out);
  }
  [[nodiscard]] bool write_sectors(uint64_t first, uint32_t sector_size, std::span<const uint8_t> data) {
    return write(first * sector_size, data);
  }
};

}  // namespace vmm86
