// QEMU's isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`): a guest
// write of value V to any of its ports ends the virtual machine with exit status
// (V << 1) | 1, so a test kernel can report pass or fail as the process's status (an odd
// number, never 0, which stays the status of a normal power-off). Reads return 0. The
// device only records the request; the machine stops the vCPU and ends the run. Where it
// sits is the machine's choice (vmm/machine/config.h: DebugExitConfig).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "devices/io_device.h"

namespace vmm86 {

class IsaDebugExit final : public PortIoDevice {
 public:
  /// The widest access the device takes (QEMU: valid sizes 1 to 4).
  static constexpr unsigned kWidth = 4;

  /// The process exit status for a written value, as QEMU computes it (exit() keeps the
  /// low 8 bits).
  [[nodiscard]] static constexpr int exit_status_for(uint32_t value) {
    return static_cast<int>(((uint64_t{value} << 1) | 1) & 0xFF);
  }

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Called once, at the first write, with the value written.
  void set_exit_request(std::function<void(uint32_t)> callback) { exit_request_ = std::move(callback); }
  /// The first value written, if any.
  [[nodiscard]] std::optional<uint32_t> value() const { return value_; }

 private:
  std::function<void(uint32_t)> exit_request_;
  std::optional<uint32_t> value_;
};

}  // namespace vmm86
