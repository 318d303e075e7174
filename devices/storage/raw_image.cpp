#include "devices/storage/raw_image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmm86 {
namespace {

std::string errno_text(int error) { return fmt::format("{}", std::strerror(error)); }

// What the user named, in words, for a refusal.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  return "not a regular file";
}

}  // namespace

Result<std::unique_ptr<RawImage>> RawImage::open(const std::string& path, RawImageOptions options) {
  // Look before opening: open() on a FIFO would wait for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error("cannot open image {}: {}", path, errno_text(errno));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return make_error("{} is {}, not an image file or block device", path, file_kind(st.st_mode));
  }
  // O_NONBLOCK as well, in case the path was swapped for a FIFO since stat(); cleared below.
  const int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    const int error = errno;
    if (!options.read_only && (error == EACCES || error == EROFS || error == EPERM)) {
      return make_error("image {} is not writable ({}): give it write permission or open it read-only", path,
                        errno_text(error));
    }
    return make_error("cannot open image {}: {}", path, errno_text(error));
  }
  auto fail = [fd](Error error) {
    ::close(fd);
    return error;
  };
  if (::fstat(fd, &st) != 0) return fail(make_error("cannot stat image {}: {}", path, errno_text(errno)));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return fail(make_error("{} is {}, not an image file or block device", path, file_kind(st.st_mode)));
  }
  if (::fcntl(fd, F_SETFL, 0) != 0) return fail(make_error("cannot set up image {}: {}", path, errno_text(errno)));
  // flock locks belong to the open file description: a second open conflicts even inside
  // one process. Hosts whose file system has no locks (some network mounts) go without.
  if (::flock(fd, (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    return fail(make_error("image {} is in use by another process", path));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  const bool block_device = S_ISBLK(st.st_mode);
  if (block_device && ::ioctl(fd, BLKGETSIZE64, &size) != 0) {
    return fail(make_error("cannot read the size of block device {}: {}", path, errno_text(errno)));
  }
  if (size == 0) return fail(make_error("image {} is empty", path));
  return std::unique_ptr<RawImage>(new RawImage(fd, path, size, options.read_only, block_device));
}

RawImage::RawImage(int fd, std::string path, uint64_t size, bool read_only, bool block_device)
    : fd_(fd), path_(std::move(path)), size_(size), read_only_(read_only), block_device_(block_device) {}

RawImage::~RawImage() { ::close(fd_); }

std::string RawImage::size_note() const {
  if (size_ % kAtaSectorSize == 0) return {};
  return fmt::format("image {} is {} bytes, not a multiple of {}: its last sector reads zero-filled past the end",
                     path_, size_, kAtaSectorSize);
}

bool RawImage::read(uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size() && offset + done < size_) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size() - done, size_ - (offset + done)));
    const ssize_t got = ::pread(fd_, out.data() + done, want, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) break;  // the file shrank under us: the rest reads as zeros
    done += static_cast<size_t>(got);
  }
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(done), out.end(), uint8_t{0});
  return true;
}

bool RawImage::write(uint64_t offset, std::span<const uint8_t> data) {
  // Up to the end of the last (possibly partial) sector; a write there rounds the file up.
  const uint64_t capacity = sector_count(kAtaSectorSize) * kAtaSectorSize;
  if (read_only_ || offset > capacity || data.size() > capacity - offset) return false;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t put = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    done += static_cast<size_t>(put);
  }
  size_ = std::max<uint64_t>(size_, offset + data.size());
  return true;
}

bool RawImage::flush() {
  if (read_only_) return true;
  while (::fdatasync(fd_) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

}  // namespace vmm86
