// QEMU's -snapshot: the guest sees a writable disk, but its writes go to a private overlay
// (an unlinked temporary file, sparse) and the image underneath is never written. The
// overlay is gone when the backend is destroyed. Granularity is the 512-byte sector: a
// bitmap says which sectors live in the overlay; a write that covers part of a sector
// first copies the rest of that sector from the image.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/storage/block_backend.h"

namespace vmm86 {

class SnapshotOverlay final : public BlockBackend {
 public:
  /// `base` may be read-only. The overlay file goes to `directory` (default: $TMPDIR, else /tmp).
  [[nodiscard]] static Result<std::unique_ptr<SnapshotOverlay>> create(std::unique_ptr<BlockBackend> base,
                                                                       std::string directory = {});

  ~SnapshotOverlay() override;
  SnapshotOverlay(const SnapshotOverlay&) = delete;
  SnapshotOverlay& operator=(const SnapshotOverlay&) = delete;

  [[nodiscard]] uint64_t size_bytes() const override { return base_->size_bytes(); }
  [[nodiscard]] bool read_only() const override { return false; }
  [[nodiscard]] bool read(uint64_t offset, std::span<uint8_t> out) override;
  [[nodiscard]] bool write(uint64_t offset, std::span<const uint8_t> data) override;
  /// Nothing to make durable: the overlay is thrown away.
  [[nodiscard]] bool flush() override { return true; }
  [[nodiscard]] const std::string& name() const override { return name_; }

  /// Sectors written so far (they live in the overlay).
  [[nodiscard]] uint64_t overlay_sectors() const { return overlay_sectors_; }

 private:
  SnapshotOverlay(std::unique_ptr<BlockBackend> base, int fd);
  [[nodiscard]] bool in_overlay(uint64_t sector) const { return (bitmap_[sector / 64] >> (sector % 64)) & 1; }
  void mark(uint64_t sector);
  [[nodiscard]] bool read_sector(uint64_t sector, std::span<uint8_t> out);

  std::unique_ptr<BlockBackend> base_;
  int fd_;
  std::string name_;
  std::vector<uint64_t> bitmap_;
  uint64_t overlay_sectors_ = 0;
};

}  // namespace vmm86
