// CpuHooks for a bare vCPU with nothing attached: ports and MMIO read all-ones (a floating
// bus), writes vanish, CPUID leaves are zero, the TSC stands still, nothing interrupts.
// For tests and benchmarks that run guest code without the PC platform.
#pragma once

#include "vmm/interp/interpreter.h"

namespace vmm86 {

class NoDevices : public CpuHooks {
 public:
  uint32_t port_in(uint16_t, unsigned) override { return 0xFFFFFFFF; }
  void port_out(uint16_t, unsigned, uint32_t) override {}
  uint32_t mmio_read(GuestPhys, unsigned) override { return 0xFFFFFFFF; }
  void mmio_write(GuestPhys, unsigned, uint32_t) override {}
  CpuidResult cpuid(uint32_t, uint32_t) override { return {}; }
  uint64_t tsc_clock() override { return 0; }
};

}  // namespace vmm86
