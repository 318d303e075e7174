// Shared pieces of the IDE tests: a synthetic disk whose every sector names itself, a fake
// guest memory for DMA, and a machine-like fixture that reaches the controller only through
// its I/O ports, as a guest driver does.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/storage/ata_disk.h"
#include "devices/storage/atapi_cdrom.h"
#include "devices/storage/block_backend.h"
#include "devices/storage/dma.h"
#include "devices/storage/ide_controller.h"
#include "tests/devices/test_util.h"

namespace vmm86::test {

/// The byte at `offset` of a PatternDisk: each 512-byte sector starts with its LBA (8 bytes,
/// little-endian), the rest is a function of the LBA and the position.
inline uint8_t pattern_byte(uint64_t offset) {
  const uint64_t lba = offset / 512;
  const uint64_t at = offset % 512;
  if (at < 8) return static_cast<uint8_t>(lba >> (8 * at));
  return static_cast<uint8_t>(lba * 13 + at);
}

/// A disk of any size without storage: unwritten bytes follow pattern_byte, writes are kept
/// per sector.
class PatternDisk final : public BlockBackend {
 public:
  explicit PatternDisk(uint64_t size, bool read_only = false) : size_(size), read_only_(read_only) {}

  [[nodiscard]] uint64_t size_bytes() const override { return size_; }
  [[nodiscard]] bool read_only() const override { return read_only_; }
  [[nodiscard]] bool read(uint64_t offset, std::span<uint8_t> out) override {
    ++reads;
    for (size_t i = 0; i < out.size(); ++i) out[i] = byte_at(offset + i);
    return true;
  }
  [[nodiscard]] bool write(uint64_t offset, std::span<const uint8_t> data) override {
    if (read_only_) return false;
    ++writes;
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t at = offset + i;
      auto [it, inserted] = written.try_emplace(at / 512);
      if (inserted) {
        for (size_t j = 0; j < 512; ++j) it->second[j] = pattern_byte(at / 512 * 512 + j);
      }
      it->second[at % 512] = data[i];
    }
    return true;
  }
  [[nodiscard]] bool flush() override {
    ++flushes;
    return true;
  }
  [[nodiscard]] const std::string& name() const override { return name_; }

  [[nodiscard]] uint8_t byte_at(uint64_t offset) const {
    if (offset >= size_) return 0;
    const auto it = written.find(offset / 512);
    return it != written.end() ? it->second[offset % 512] : pattern_byte(offset);
  }

  std::map<uint64_t, std::array<uint8_t, 512>> written;
  int reads = 0;
  int writes = 0;
  int flushes = 0;

 private:
  uint64_t size_;
  bool read_only_;
  std::string name_ = "pattern";
};

// Port numbers of the legacy layout and a BAR4 for the tests.
constexpr uint16_t kPrimary = 0x1F0;
constexpr uint16_t kPrimaryControl = 0x3F6;
constexpr uint16_t kSecondary = 0x170;
constexpr uint16_t kSecondaryControl = 0x376;
constexpr uint16_t kBmide = 0xC000;

/// A controller on an IoBus with IRQs 14 and 15 recorded, driven through ports only.
class IdeFixture : public ::testing::Test {
 protected:
  IdeFixture() : memory(1 << 20), controller(memory, irqs.line(14), irqs.line(15)) {
    EXPECT_EQ(controller.register_legacy_ports(bus), BusStatus::Ok);
    EXPECT_EQ(bus.add(kBmide, IdeBusMaster::kPorts, controller.bus_master(), "bmide", IdeBusMaster::kWidth),
              BusStatus::Ok);
  }

  /// Attaches a PatternDisk of `sectors` 512-byte sectors and returns it.
  PatternDisk& attach_disk(unsigned channel, unsigned unit, uint64_t sectors, bool read_only = false) {
    auto disk = std::make_unique<PatternDisk>(sectors * 512, read_only);
    PatternDisk& backend = *disk;
    controller.attach(channel, unit, std::make_unique<AtaDisk>(std::move(disk)));
    return backend;
  }

  uint8_t in8(uint16_t port) { return static_cast<uint8_t>(bus.read(port, 1)); }
  uint16_t in16(uint16_t port) { return static_cast<uint16_t>(bus.read(port, 2)); }
  uint32_t in32(uint16_t port) { return bus.read(port, 4); }
  void out8(uint16_t port, uint8_t value) { bus.write(port, 1, value); }
  void out16(uint16_t port, uint16_t value) { bus.write(port, 2, value); }
  void out32(uint16_t port, uint32_t value) { bus.write(port, 4, value); }

  /// Reads `words` words from the data register of the channel at `base`.
  std::vector<uint8_t> read_data(uint16_t base, size_t words) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < words; ++i) {
      const uint16_t word = in16(base);
      out.push_back(static_cast<uint8_t>(word));
      out.push_back(static_cast<uint8_t>(word >> 8));
    }
    return out;
  }
  void write_data(uint16_t base, const std::vector<uint8_t>& bytes) {
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) out16(base, static_cast<uint16_t>(bytes[i] | bytes[i + 1] << 8));
  }

  /// LBA28 task file: LBA mode, device `unit`.
  void set_lba28(uint16_t base, unsigned unit, uint32_t lba, uint8_t count) {
    out8(base + 6, static_cast<uint8_t>(0xE0 | (unit << 4) | ((lba >> 24) & 0x0F)));
    out8(base + 2, count);
    out8(base + 3, static_cast<uint8_t>(lba));
    out8(base + 4, static_cast<uint8_t>(lba >> 8));
    out8(base + 5, static_cast<uint8_t>(lba >> 16));
  }
  /// LBA48 task file: each register written twice, high-order byte first (ATA-6 6.20).
  void set_lba48(uint16_t base, unsigned unit, uint64_t lba, uint16_t count) {
    out8(base + 6, static_cast<uint8_t>(0x40 | (unit << 4)));
    out8(base + 2, static_cast<uint8_t>(count >> 8));
    out8(base + 3, static_cast<uint8_t>(lba >> 24));
    out8(base + 4, static_cast<uint8_t>(lba >> 32));
    out8(base + 5, static_cast<uint8_t>(lba >> 40));
    out8(base + 2, static_cast<uint8_t>(count));
    out8(base + 3, static_cast<uint8_t>(lba));
    out8(base + 4, static_cast<uint8_t>(lba >> 8));
    out8(base + 5, static_cast<uint8_t>(lba >> 16));
  }

  /// The expected contents of `count` sectors from `lba` of an unwritten PatternDisk.
  static std::vector<uint8_t> pattern(uint64_t lba, size_t count, size_t sector_size = 512) {
    std::vector<uint8_t> out(count * sector_size);
    for (size_t i = 0; i < out.size(); ++i) out[i] = pattern_byte(lba * sector_size + i);
    return out;
  }

  RecordingIrqSink irqs;
  FakeDmaMemory memory;
  IdeController controller;
  IoBus bus;
};

}  // namespace vmm86::test
