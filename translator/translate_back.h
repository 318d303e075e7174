// Translate-back (STYLE.md #4; DynamoRIO's translate.c): a host PC inside a block, in guest
// terms. Translated code keeps guest state in host registers and counts retired
// instructions ahead per count segment, so an interrupted block is not a guest state until
// three things are corrected: EIP, the retired count, and the registers a host string
// instruction uses as window pointers. One value says all three; the fault handler applies it.
#pragma once

#include <ucontext.h>

#include <cstdint>

#include "translator/code_cache.h"

namespace vmm86 {

/// The guest state at a host PC inside a block, as corrections to the interrupted host
/// registers.
struct GuestLocation {
  uint32_t eip = 0;          ///< the guest instruction the PC belongs to
  uint32_t not_retired = 0;  ///< instructions the block prologue counted that did not retire
  /// host_ptr bits: registers that hold window_base + the guest's value at this PC (a
  /// host string instruction, HostPointerSite).
  uint8_t host_pointer_regs = 0;

  /// Makes the host registers of an interrupted block (a signal context) hold the guest
  /// state at `eip`: the retired count (R14) less what did not retire, the window pointers
  /// guest ESI/EDI again (RCX is the remaining count already). EIP itself is the caller's.
  void apply(gregset_t& regs, uint64_t window_base) const;
};

/// Where `host_offset` (from block.host_code) lies in guest terms. False if the block has
/// no PC map (nothing of it can fault precisely).
[[nodiscard]] bool translate_back(const Block& block, uint32_t host_offset, GuestLocation* out);

}  // namespace vmm86
