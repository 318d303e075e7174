// The translation mode: the vCPU state a block's translation depends on besides its code
// bytes (part of BlockKey::mode; Translator::current_mode() computes it).
#pragma once

#include <cstdint>

namespace vmm86 {

/// Mode bits that change translation (part of BlockKey::mode).
namespace tmode {
inline constexpr uint32_t Cpl3 = 1u << 0;  ///< CPL 3 (else 0; 1/2 are not translated)
inline constexpr uint32_t FlatData =
    1u << 1;  ///< DS, ES, SS: present writable expand-up data, base 0, limit 4 GiB, SS 32-bit
inline constexpr uint32_t Code32 = 1u << 2;   ///< CS.D = 1
inline constexpr uint32_t HostTsc = 1u << 5;  ///< rdtsc may run natively: no TSC offset, allowed at this CPL
/// CR0.TS or CR0.EM: every x87/MMX/SSE instruction faults (#NM or #UD), which the
/// interpreter raises; translated FPU code would run on another process's state.
inline constexpr uint32_t FpuTraps = 1u << 6;
/// CR4.OSFXSR is 0: instructions on XMM registers or MXCSR raise #UD.
inline constexpr uint32_t NoSse = 1u << 7;
/// CS is readable (cs: overrides may read through it; they never write).
inline constexpr uint32_t ReadableCs = 1u << 8;
/// Bits few blocks depend on (rdtsc, FPU instructions): left out of the inline table's
/// salt; blocks that do depend on them compare them at their checked entry. (FS/GS are not
/// mode bits: fs:/gs: operands add ExecContext::segment_code_base, which also stands for
/// "not usable".)
inline constexpr uint32_t kUnsalted = HostTsc | FpuTraps | NoSse;
}  // namespace tmode

/// The part of a translation mode the inline table's salt includes.
[[nodiscard]] constexpr uint32_t salted_mode(uint32_t mode) { return mode & ~tmode::kUnsalted; }

}  // namespace vmm86
