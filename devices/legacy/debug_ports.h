// Two write-mostly diagnostic ports. Port 0x80 is the POST code port: firmware writes
// progress codes there and Linux uses it as an I/O delay; writes are swallowed (the last
// code is kept for inspection) and reads return the last code, as the DMA page register
// behind it does. Port 0xE9 is the Bochs/QEMU debug console: each byte written goes to a
// sink, and reads return 0xE9 so that guests can detect it.
#pragma once

#include <cstdint>
#include <functional>

#include "devices/io_device.h"

namespace vmm86 {

class PostCodePort final : public PortIoDevice {
 public:
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  [[nodiscard]] uint8_t last_code() const { return last_code_; }

 private:
  uint8_t last_code_ = 0;
};

class DebugConsolePort final : public PortIoDevice {
 public:
  static constexpr uint8_t kSignature = 0xE9;
  static constexpr uint16_t kStandardPort = 0xE9;  ///< where the PC platform places it

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  void set_output(std::function<void(uint8_t)> sink) { sink_ = std::move(sink); }
  [[nodiscard]] uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::function<void(uint8_t)> sink_;
  uint64_t bytes_written_ = 0;
};

}  // namespace vmm86
