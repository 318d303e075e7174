#include "devices/storage/snapshot_overlay.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "devices/storage/image_file.h"

namespace vmm86 {

Result<std::unique_ptr<SnapshotOverlay>> SnapshotOverlay::create(std::unique_ptr<BlockBackend> base,
                                                                 std::string directory) {
  if (directory.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    directory = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  }
  // O_TMPFILE: never visible by name, so nothing is left behind after a crash.
  int fd = ::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string pattern = directory + "/vmm86-snapshot-XXXXXX";
    fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) return make_error("cannot create a snapshot overlay in {}: {}", directory, std::strerror(errno));
    ::unlink(pattern.c_str());
  }
  return std::unique_ptr<SnapshotOverlay>(new SnapshotOverlay(std::move(base), fd));
}

SnapshotOverlay::SnapshotOverlay(std::unique_ptr<BlockBackend> base, int fd)
    : base_(std::move(base)), fd_(fd), name_(base_->name() + " (snapshot)") {
  bitmap_.resize((base_->sector_count(kAtaSectorSize) + 63) / 64);
}

SnapshotOverlay::~SnapshotOverlay() { ::close(fd_); }

void SnapshotOverlay::mark(uint64_t sector) {
  if (in_overlay(sector)) return;
  bitmap_[sector / 64] |= uint64_t{1} << (sector % 64);
  ++overlay_sectors_;
}

bool SnapshotOverlay::read_sector(uint64_t sector, std::span<uint8_t> out) {
  const uint64_t offset = sector * kAtaSectorSize;
  return in_overlay(sector) ? pread_zero_filled(fd_, offset, out) : base_->read(offset, out);
}

bool SnapshotOverlay::read(uint64_t offset, std::span<uint8_t> out) {
  // Runs of sectors from the same side are read in one call.
  size_t done = 0;
  const uint64_t sectors = base_->sector_count(kAtaSectorSize);
  while (done < out.size()) {
    const uint64_t position = offset + done;
    const uint64_t sector = position / kAtaSectorSize;
    if (sector >= sectors) {
      std::memset(out.data() + done, 0, out.size() - done);
      return true;
    }
    const bool overlay = in_overlay(sector);
    uint64_t run_end = sector + 1;
    while (run_end < sectors && run_end * kAtaSectorSize < offset + out.size() && in_overlay(run_end) == overlay) {
      ++run_end;
    }
    const size_t length = static_cast<size_t>(
        std::min<uint64_t>(run_end * kAtaSectorSize - position, out.size() - done));
    const std::span<uint8_t> piece = out.subspan(done, length);
    if (!(overlay ? pread_zero_filled(fd_, position, piece) : base_->read(position, piece))) return false;
    done += length;
  }
  return true;
}

bool SnapshotOverlay::write(uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t capacity = base_->sector_count(kAtaSectorSize) * kAtaSectorSize;
  if (offset > capacity || data.size() > capacity - offset) return false;
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t position = offset + done;
    const uint64_t sector = position / kAtaSectorSize;
    const size_t in_sector = static_cast<size_t>(position % kAtaSectorSize);
    size_t length = std::min<size_t>(kAtaSectorSize - in_sector, data.size() - done);
    if (length == kAtaSectorSize) {
      // Whole sectors in one write.
      length = (data.size() - done) / kAtaSectorSize * kAtaSectorSize;
      if (!pwrite_all(fd_, position, data.subspan(done, length))) return false;
      for (uint64_t s = sector; s < sector + length / kAtaSectorSize; ++s) mark(s);
      done += length;
      continue;
    }
    std::array<uint8_t, kAtaSectorSize> merged{};
    if (!read_sector(sector, merged)) return false;
    std::memcpy(merged.data() + in_sector, data.data() + done, length);
    if (!pwrite_all(fd_, sector * kAtaSectorSize, merged)) return false;
    mark(sector);
    done += length;
  }
  return true;
}

}  // namespace vmm86
