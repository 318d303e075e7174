#include "vmm/loader/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace vmm86 {

namespace {

/// What a non-regular file is, for the error message.
const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace

Result<HostFile> HostFile::open(const std::string& path, std::string_view role) {
  if (path.empty()) return make_error("no {} file given", role);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (and
  // a serial or tape device for its carrier); the type is checked before any read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_error("cannot open {} '{}': {}", role, path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error("cannot stat {} '{}': {}", role, path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("{} '{}' is {}, not a regular file", role, path, kind_of(st.st_mode));
  }
  // Regular files ignore O_NONBLOCK; it is cleared anyway so reads mean what they say.
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) (void)::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return HostFile(fd, static_cast<uint64_t>(st.st_size), path, std::string(role));
}

HostFile::HostFile(HostFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      path_(std::move(other.path_)),
      role_(std::move(other.role_)) {}

HostFile& HostFile::operator=(HostFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
    role_ = std::move(other.role_);
  }
  return *this;
}

HostFile::~HostFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FileHead> open_head(const std::string& path, std::string_view role, uint64_t limit) {
  auto file = HostFile::open(path, role);
  if (!file) return std::move(file).take_error();
  std::vector<uint8_t> head(static_cast<size_t>(std::min(file->size(), limit)));
  VMM86_TRY(file->read_at(0, head));
  return FileHead{std::move(file).value(), std::move(head)};
}

Status HostFile::read_at(uint64_t offset, std::span<uint8_t> dst) const {
  size_t done = 0;
  while (done < dst.size()) {
    ssize_t n = ::pread(fd_, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("cannot read {} '{}': {}", role_, path_, std::strerror(errno));
    }
    if (n == 0) {
      // The file shrank after open(), or the caller asked past its end.
      return make_error("{} '{}' ended early: wanted {} bytes at offset {}", role_, path_, dst.size() - done,
                        offset + done);
    }
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

}  // namespace vmm86
