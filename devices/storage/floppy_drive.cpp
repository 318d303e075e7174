#include "devices/storage/floppy_drive.h"

namespace vmm86 {

Result<const FloppyFormat*> floppy_format_for_size(uint64_t bytes, const std::string& path) {
  for (const FloppyFormat& format : kFloppyFormats) {
    if (format.bytes() == bytes) return &format;
  }
  std::string sizes;
  for (const FloppyFormat& format : kFloppyFormats) {
    sizes += (sizes.empty() ? "" : ", ") + std::string(format.name) + " (" + std::to_string(format.bytes()) + ")";
  }
  return make_error("floppy image {} is {} bytes: not a floppy of {}", path, bytes, sizes);
}

FloppyDrive::FloppyDrive(const FloppyFormat& format, std::unique_ptr<BlockBackend> disk)
    : format_(format), disk_(std::move(disk)) {}

Result<std::unique_ptr<FloppyDrive>> FloppyDrive::for_image(std::unique_ptr<BlockBackend> disk) {
  auto format = floppy_format_for_size(disk->size_bytes(), disk->name());
  if (!format) return std::move(format).take_error();
  return std::make_unique<FloppyDrive>(**format, std::move(disk));
}

void FloppyDrive::step_to(uint8_t cylinder) {
  if (cylinder != cylinder_ && disk_ != nullptr) disk_changed_ = false;
  cylinder_ = cylinder;
}

bool FloppyDrive::has_sector(uint8_t cylinder, uint8_t head, uint8_t sector) const {
  return disk_ != nullptr && cylinder < format_.cylinders && head < format_.heads && sector >= 1 &&
         sector <= format_.sectors;
}

uint64_t FloppyDrive::offset_of(uint8_t cylinder, uint8_t head, uint8_t sector) const {
  const uint64_t lba = (uint64_t{cylinder} * format_.heads + head) * format_.sectors + (sector - 1u);
  return lba * kFloppySectorSize;
}

bool FloppyDrive::read_sector(uint8_t cylinder, uint8_t head, uint8_t sector,
                              std::span<uint8_t, kFloppySectorSize> out) {
  return has_sector(cylinder, head, sector) && disk_->read(offset_of(cylinder, head, sector), out);
}

bool FloppyDrive::write_sector(uint8_t cylinder, uint8_t head, uint8_t sector,
                               std::span<const uint8_t, kFloppySectorSize> data) {
  return has_sector(cylinder, head, sector) && !disk_->read_only() &&
         disk_->write(offset_of(cylinder, head, sector), data);
}

uint8_t FloppyDrive::next_sector_id() {
  last_id_ = static_cast<uint8_t>(last_id_ % format_.sectors + 1);
  return last_id_;
}

std::unique_ptr<BlockBackend> FloppyDrive::eject() {
  disk_changed_ = true;
  return std::move(disk_);
}

void FloppyDrive::insert(std::unique_ptr<BlockBackend> disk) {
  disk_ = std::move(disk);
  disk_changed_ = true;  // the line stays active until the next step with the disk in
}

}  // namespace vmm86
