// The host file under every image format: what the user named is checked before a byte is
// read (a regular file or block device; not a directory, FIFO or socket), opened, and locked
// so that two vmm86 processes never share a writable image: writable opens take an
// exclusive flock, read-only ones a shared one (a reader does not see a writer's half-done
// changes either). Reads and writes are whole pread/pwrite loops; sync is fdatasync.
// RawImage and Qcow2Image (and a qcow2 image's backing files) all open through here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"

namespace vmm86 {

/// pread until `out` is full or the file ends: the bytes read, or -1 on an I/O error.
[[nodiscard]] int64_t pread_some(int fd, uint64_t offset, std::span<uint8_t> out);
/// pread that fills the rest with zeros past the end of the file. False on an I/O error.
[[nodiscard]] bool pread_zero_filled(int fd, uint64_t offset, std::span<uint8_t> out);
/// pwrite all of `data`. False on an I/O error.
[[nodiscard]] bool pwrite_all(int fd, uint64_t offset, std::span<const uint8_t> data);

class ImageFile {
 public:
  /// One-line errors: "disk.img is a directory, not an image file or block device", "image
  /// disk.img is in use by another process", "image disk.img is not writable (...): ...".
  /// An empty file is accepted here; each format decides what an empty one means.
  [[nodiscard]] static Result<ImageFile> open(const std::string& path, bool read_only);

  ImageFile(ImageFile&& other) noexcept;
  ImageFile& operator=(ImageFile&& other) noexcept;
  ImageFile(const ImageFile&) = delete;
  ImageFile& operator=(const ImageFile&) = delete;
  ~ImageFile();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool read_only() const { return read_only_; }
  [[nodiscard]] bool is_block_device() const { return block_device_; }
  /// The size when opened (a block device's from BLKGETSIZE64).
  [[nodiscard]] uint64_t size() const { return size_; }
  /// The file's identity (device, inode): a qcow2 backing chain uses it to find loops.
  [[nodiscard]] dev_t device() const { return device_; }
  [[nodiscard]] ino_t inode() const { return inode_; }

  /// Reads what the file has from `offset`; returns the number of bytes read (less than
  /// out.size() only at the end of the file), or -1 on an I/O error.
  [[nodiscard]] int64_t read_some(uint64_t offset, std::span<uint8_t> out) const {
    return pread_some(fd_, offset, out);
  }
  /// Fills `out` from `offset`, zeros past the end of the file. False on an I/O error.
  [[nodiscard]] bool read_zero_filled(uint64_t offset, std::span<uint8_t> out) const {
    return pread_zero_filled(fd_, offset, out);
  }
  /// Writes all of `data` at `offset`. False on an I/O error.
  [[nodiscard]] bool write_all(uint64_t offset, std::span<const uint8_t> data) const {
    return pwrite_all(fd_, offset, data);
  }
  /// fdatasync (a read-only file has nothing to sync).
  [[nodiscard]] bool sync() const;

 private:
  ImageFile(int fd, std::string path, uint64_t size, bool read_only, bool block_device, dev_t device, ino_t inode);

  int fd_ = -1;
  std::string path_;
  uint64_t size_ = 0;
  bool read_only_ = true;
  bool block_device_ = false;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

}  // namespace vmm86
