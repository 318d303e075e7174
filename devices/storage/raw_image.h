// A disk or CD image in a host file (or a block device), byte for byte: vmm86's raw format.
// Opening checks what the user named (a regular file or block device; not a directory, FIFO
// or socket) and takes a lock so that two vmm86 processes never share a writable image:
// writable opens take an exclusive flock, read-only ones a shared one (a reader does not see
// a writer's half-done changes either). I/O is pread/pwrite on the vCPU thread; flush is
// fdatasync. A size that is not a multiple of 512 is accepted: the last sector reads
// zero-filled, and size_note() says so for the log.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "devices/storage/block_backend.h"

namespace vmm86 {

struct RawImageOptions {
  bool read_only = false;
};

class RawImage final : public BlockBackend {
 public:
  /// One-line errors: "disk.img is a directory, not an image file", "image disk.img is in
  /// use by another process", "disk.img is not writable (...): open it read-only".
  [[nodiscard]] static Result<std::unique_ptr<RawImage>> open(const std::string& path, RawImageOptions options);

  ~RawImage() override;
  RawImage(const RawImage&) = delete;
  RawImage& operator=(const RawImage&) = delete;

  [[nodiscard]] uint64_t size_bytes() const override { return size_; }
  [[nodiscard]] bool read_only() const override { return read_only_; }
  [[nodiscard]] bool read(uint64_t offset, std::span<uint8_t> out) override;
  [[nodiscard]] bool write(uint64_t offset, std::span<const uint8_t> data) override;
  [[nodiscard]] bool flush() override;
  [[nodiscard]] const std::string& name() const override { return path_; }

  /// Empty, or a line for the log when the size is not a multiple of 512 bytes.
  [[nodiscard]] std::string size_note() const;
  [[nodiscard]] bool is_block_device() const { return block_device_; }

 private:
  RawImage(int fd, std::string path, uint64_t size, bool read_only, bool block_device);

  int fd_;
  std::string path_;
  uint64_t size_;
  bool read_only_;
  bool block_device_;
};

}  // namespace vmm86
