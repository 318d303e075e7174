// A disk or CD image in a host file (or a block device), byte for byte: vmm86's raw format.
// The file is opened and locked by ImageFile (a regular file or block device; an exclusive
// flock when writable, a shared one when read-only). I/O is pread/pwrite on the vCPU thread;
// flush is fdatasync. A size that is not a multiple of 512 is accepted: the last sector
// reads zero-filled, and size_note() says so for the log.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "devices/storage/block_backend.h"
#include "devices/storage/image_file.h"

namespace vmm86 {

struct RawImageOptions {
  bool read_only = false;
  /// The format was probed, not named (no format=raw): refuse a write that would give the
  /// first sector an image format's magic, so that a guest cannot turn its disk into a
  /// qcow2 image naming a host file as its backing file at the next probe (QEMU does the same).
  bool guard_probed_format = false;
};

class RawImage final : public BlockBackend {
 public:
  /// One-line errors: "disk.img is a directory, not an image file", "image disk.img is in
  /// use by another process", "disk.img is not writable (...): open it read-only".
  [[nodiscard]] static Result<std::unique_ptr<RawImage>> open(const std::string& path, RawImageOptions options);
  /// The same over a file already opened (and locked) by ImageFile::open.
  [[nodiscard]] static Result<std::unique_ptr<RawImage>> from_file(ImageFile file, RawImageOptions options);

  RawImage(const RawImage&) = delete;
  RawImage& operator=(const RawImage&) = delete;

  [[nodiscard]] uint64_t size_bytes() const override { return size_; }
  [[nodiscard]] bool read_only() const override { return file_.read_only(); }
  [[nodiscard]] bool read(uint64_t offset, std::span<uint8_t> out) override;
  [[nodiscard]] bool write(uint64_t offset, std::span<const uint8_t> data) override;
  [[nodiscard]] bool flush() override { return file_.sync(); }
  [[nodiscard]] const std::string& name() const override { return file_.path(); }

  /// Empty, or a line for the log when the size is not a multiple of 512 bytes.
  [[nodiscard]] std::string size_note() const;
  [[nodiscard]] bool is_block_device() const { return file_.is_block_device(); }

 private:
  RawImage(ImageFile file, bool guard_probed_format);
  [[nodiscard]] bool writes_format_magic(uint64_t offset, std::span<const uint8_t> data);

  ImageFile file_;
  uint64_t size_;
  bool guard_probed_format_;
};

}  // namespace vmm86
