// A guest for the fw_cfg tests: flat RAM for DMA and the port sequences SeaBIOS uses
// (outw 0x510 to select, inb 0x511 to read, outl of the big-endian descriptor address).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/firmware/fw_cfg.h"

namespace vmm86::test {

/// `size` bytes of RAM at guest-physical 0; anything beyond is not memory.
class FlatMemory final : public DmaMemory {
 public:
  explicit FlatMemory(size_t size) : bytes(size, 0) {}
  bool read(uint64_t phys, std::span<uint8_t> out) override {
    if (!contains(phys, out.size())) return false;
    std::memcpy(out.data(), bytes.data() + phys, out.size());
    return true;
  }
  bool write(uint64_t phys, std::span<const uint8_t> data) override {
    if (!contains(phys, data.size())) return false;
    std::memcpy(bytes.data() + phys, data.data(), data.size());
    return true;
  }
  [[nodiscard]] bool contains(uint64_t phys, size_t size) const {
    return phys <= bytes.size() && size <= bytes.size() - phys;
  }
  void put_be32(uint64_t phys, uint32_t value) {
    for (unsigned i = 0; i < 4; ++i) bytes[phys + i] = static_cast<uint8_t>(value >> (24 - 8 * i));
  }
  void put_be64(uint64_t phys, uint64_t value) {
    put_be32(phys, static_cast<uint32_t>(value >> 32));
    put_be32(phys + 4, static_cast<uint32_t>(value));
  }
  [[nodiscard]] uint32_t be32(uint64_t phys) const {
    uint32_t value = 0;
    for (unsigned i = 0; i < 4; ++i) value = value << 8 | bytes[phys + i];
    return value;
  }
  [[nodiscard]] std::vector<uint8_t> range(uint64_t phys, size_t size) const {
    return {bytes.begin() + static_cast<std::ptrdiff_t>(phys),
            bytes.begin() + static_cast<std::ptrdiff_t>(phys + size)};
  }

  std::vector<uint8_t> bytes;
};

/// The port value of a 32-bit access whose bytes, low port first, are `value` big-endian.
inline uint32_t port_value_of_be32(uint32_t value) { return __builtin_bswap32(value); }

/// Port-level access to a FwCfg on an IoBus, registered as the machine registers it.
class FwCfgGuest {
 public:
  explicit FwCfgGuest(FwCfg& fw_cfg) {
    status = bus.add(FwCfg::kIoBase, FwCfg::kIoPorts, fw_cfg, "fw_cfg", FwCfg::kIoWidth);
  }

  void select(uint16_t key) { bus.write(0x510, 2, key); }
  std::vector<uint8_t> read_bytes(size_t count) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < count; ++i) out.push_back(static_cast<uint8_t>(bus.read(0x511, 1)));
    return out;
  }
  std::vector<uint8_t> read_item(uint16_t key, size_t count) {
    select(key);
    return read_bytes(count);
  }
  /// Both halves of the DMA address register, high first (the write of the low half runs it).
  void start_dma(uint64_t descriptor) {
    bus.write(0x514, 4, port_value_of_be32(static_cast<uint32_t>(descriptor >> 32)));
    bus.write(0x518, 4, port_value_of_be32(static_cast<uint32_t>(descriptor)));
  }
  /// Finds a file as SeaBIOS does: walks the directory for the name; 0 if absent.
  struct DirectoryEntry {
    uint32_t size = 0;
    uint16_t select = 0;
  };
  DirectoryEntry find_file(const std::string& name) {
    select(FwCfg::kFileDir);
    const std::vector<uint8_t> count = read_bytes(4);
    const uint32_t files = uint32_t{count[0]} << 24 | uint32_t{count[1]} << 16 | uint32_t{count[2]} << 8 | count[3];
    for (uint32_t i = 0; i < files; ++i) {
      const std::vector<uint8_t> entry = read_bytes(64);
      if (std::memcmp(entry.data() + 8, name.c_str(), name.size() + 1) != 0) continue;
      return {uint32_t{entry[0]} << 24 | uint32_t{entry[1]} << 16 | uint32_t{entry[2]} << 8 | entry[3],
              static_cast<uint16_t>(entry[4] << 8 | entry[5])};
    }
    return {};
  }

  IoBus bus;
  BusStatus status = BusStatus::Ok;
};

}  // namespace vmm86::test
