// A test-only stand-in for the engine's fault handler (vmm/engine/fault_handler.cpp only
// answers faults raised in the code cache): one host load or store into a shadow window,
// with SIGSEGV answered by ShadowMmu::fill() and the access retried, exactly as translated
// code would see it, or the outcome recorded when fill() says the access cannot complete.
#pragma once

#include <signal.h>

#include <cstdint>

#include "shadow-mmu/shadow_mmu.h"

namespace vmm86::test {

/// What one probed access did.
struct ProbeResult {
  bool completed = false;                     ///< the host instruction retired
  FillOutcome outcome = FillOutcome::Mapped;  ///< why it did not (when !completed)
  uint32_t error_code = 0;                    ///< #PF error code for GuestPageFault
  uint32_t value = 0;                         ///< the loaded value (reads that completed)
  unsigned fills = 0;                         ///< fill() calls that answered Mapped
  bool stray = false;                         ///< faulted outside the window, or retried forever
};

/// Installs its SIGSEGV handler for its lifetime (restoring the previous one after).
/// One probe at a time per process.
class FaultProbe {
 public:
  explicit FaultProbe(ShadowMmu& mmu);
  ~FaultProbe();
  FaultProbe(const FaultProbe&) = delete;
  FaultProbe& operator=(const FaultProbe&) = delete;

  /// A 32-bit load at `linear` through the user (CPL 3) or supervisor window.
  ProbeResult read32(bool user, uint32_t linear);
  /// A 32-bit store.
  ProbeResult write32(bool user, uint32_t linear, uint32_t value);

 private:
  ProbeResult access(bool user, uint32_t linear, bool write, uint32_t value);

  ShadowMmu& mmu_;
  struct sigaction previous_ {};
};

}  // namespace vmm86::test
