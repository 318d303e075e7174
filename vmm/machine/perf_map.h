// /tmp/perf-PID.map: Linux perf's way to name JIT code. With it, `perf report` shows
// samples in translated code as the guest EIP of their block instead of an anonymous
// address, so a profile of the monitor also profiles the guest.
#pragma once

#include <cstdint>
#include <cstdio>
#include "common/result.h"

namespace vmm86 {

class PerfMap {
 public:
  PerfMap() = default;
  ~PerfMap();
  PerfMap(const PerfMap&) = delete;
  PerfMap& operator=(const PerfMap&) = delete;

  /// Creates /tmp/perf-<pid>.map.
  [[nodiscard]] Status open();
  [[nodiscard]] bool active() const { return file_ != nullptr; }
  /// One translated block: its host code and the guest EIP it starts at.
  void block(const void* host_code, uint32_t host_size, uint32_t guest_eip, uint32_t guest_insns);

 private:
  std::FILE* file_ = nullptr;
};

}  // namespace vmm86
