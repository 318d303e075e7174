// System control port A (port 0x92, the PS/2 "fast A20" port that the PIIX and every PC
// since have): bit 1 gates address line 20, a rising edge on bit 0 resets the machine. The
// A20 line the CPU sees is this bit OR the i8042's A20 output (devices/pc_platform.h).
#pragma once

#include <cstdint>
#include <functional>

#include "devices/io_device.h"

namespace vmm86 {

class SystemControlPortA final : public PortIoDevice {
 public:
  static constexpr uint16_t kPort = 0x92;
  static constexpr uint8_t kFastReset = 1u << 0;
  static constexpr uint8_t kA20 = 1u << 1;

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  /// System reset: the reset bit clears; the A20 bit keeps its value, as QEMU's port does.
  void reset() { value_ = static_cast<uint8_t>(value_ & ~kFastReset); }

  [[nodiscard]] bool a20() const { return (value_ & kA20) != 0; }
  void set_a20_listener(std::function<void()> listener) { a20_listener_ = std::move(listener); }
  void set_reset_request(std::function<void()> callback) { reset_request_ = std::move(callback); }

 private:
  uint8_t value_ = 0;
  std::function<void()> a20_listener_;
  std::function<void()> reset_request_;
};

}  // namespace vmm86
