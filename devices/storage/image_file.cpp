#include "devices/storage/image_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

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

bool is_image_kind(mode_t mode) { return S_ISREG(mode) || S_ISBLK(mode); }

}  // namespace

Result<ImageFile> ImageFile::open(const std::string& path, bool read_only) {
  // Look before opening: open() on a FIFO would wait for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error("cannot open image {}: {}", path, errno_text(errno));
  }
  if (!is_image_kind(st.st_mode)) {
    return make_error("{} is {}, not an image file or block device", path, file_kind(st.st_mode));
  }
  // O_NONBLOCK as well, in case the path was swapped for a FIFO since stat(); cleared below.
  const int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    const int error = errno;
    if (!read_only && (error == EACCES || error == EROFS || error == EPERM)) {
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
  if (!is_image_kind(st.st_mode)) {
    return fail(make_error("{} is {}, not an image file or block device", path, file_kind(st.st_mode)));
  }
  if (::fcntl(fd, F_SETFL, 0) != 0) return fail(make_error("cannot set up image {}: {}", path, errno_text(errno)));
  // flock locks belong to the open file description: a second open conflicts even inside
  // one process. Hosts whose file system has no locks (some network mounts) go without.
  if (::flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    return fail(make_error("image {} is in use by another process", path));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  const bool block_device = S_ISBLK(st.st_mode);
  if (block_device && ::ioctl(fd, BLKGETSIZE64, &size) != 0) {
    return fail(make_error("cannot read the size of block device {}: {}", path, errno_text(errno)));
  }
  return ImageFile(fd, path, size, read_only, block_device, st.st_dev, st.st_ino);
}

ImageFile::ImageFile(int fd, std::string path, uint64_t size, bool read_only, bool block_device, dev_t device,
                     ino_t inode)
    : fd_(fd),
      path_(std::move(path)),
      size_(size),
      read_only_(read_only),
      block_device_(block_device),
      device_(device),
      inode_(inode) {}

ImageFile::ImageFile(ImageFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      size_(other.size_),
      read_only_(other.read_only_),
      block_device_(other.block_device_),
      device_(other.device_),
      inode_(other.inode_) {}

ImageFile& ImageFile::operator=(ImageFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
    read_only_ = other.read_only_;
    block_device_ = other.block_device_;
    device_ = other.device_;
    inode_ = other.inode_;
  }
  return *this;
}

ImageFile::~ImageFile() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t pread_some(int fd, uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) break;  // the end of the file
    done += static_cast<size_t>(got);
  }
  return static_cast<int64_t>(done);
}

bool pread_zero_filled(int fd, uint64_t offset, std::span<uint8_t> out) {
  const int64_t got = pread_some(fd, offset, out);
  if (got < 0) return false;
  std::fill(out.begin() + got, out.end(), uint8_t{0});
  return true;
}

bool pwrite_all(int fd, uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t put = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    done += static_cast<size_t>(put);
  }
  return true;
}

bool ImageFile::sync() const {
  if (read_only_) return true;
  while (::fdatasync(fd_) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

}  // namespace vmm86
