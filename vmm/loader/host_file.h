// A host file opened by a loader: its size is known up front and reads go straight to the
// destination (guest RAM), so a large initrd is never copied twice. Every failure comes
// back as an Error that names the file and its role ("kernel", "initrd").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace vmm86 {

class HostFile {
 public:
  /// Opens a regular file for reading. `role` names it in error messages.
  [[nodiscard]] static Result<HostFile> open(const std::string& path, std::string_view role);

  HostFile(HostFile&& other) noexcept;
  HostFile& operator=(HostFile&& other) noexcept;
  HostFile(const HostFile&) = delete;
  HostFile& operator=(const HostFile&) = delete;
  ~HostFile();

  [[nodiscard]] uint64_t size() const { return size_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& role() const { return role_; }

  /// Fills all of `dst` from file offset `offset`; fails on an I/O error or a short file.
  [[nodiscard]] Status read_at(uint64_t offset, std::span<uint8_t> dst) const;

 private:
  HostFile(int fd, uint64_t size, std::string path, std::string role)
      : fd_(fd), size_(size), path_(std::move(path)), role_(std::move(role)) {}

  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
  std::string role_;
};

/// A file opened with its first bytes read: what a loader looks at to tell what it is.
struct FileHead {
  HostFile file;
  std::vector<uint8_t> head;  ///< the first min(size, limit) bytes
};

/// HostFile::open, then the first min(size, `limit`) bytes.
[[nodiscard]] Result<FileHead> open_head(const std::string& path, std::string_view role, uint64_t limit);

}  // namespace vmm86
