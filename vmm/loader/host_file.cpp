#include "vmm/loader/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vmm86 {

Result<HostFile> HostFile::open(const std::string& path, std::string_view role) {
  if (path.empty()) return make_error("no {} file given", role);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open {} '{}': {}", role, path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error("cannot stat {} '{}': {}", role, path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("{} '{}' is not a regular file", role, path);
  }
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
