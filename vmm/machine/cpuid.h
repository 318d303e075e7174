// The CPU model the guest sees through CPUID (DESIGN.md §2): a P6-family Intel CPU with
// FPU, TSC, MSR, CX8, CMOV, PSE, PGE, FXSR, MMX, SSE and SSE2; no APIC, no PAE, no
// hypervisor leaf (the kernel would look for paravirtual interfaces we do not provide).
#pragma once

#include <cstdint>

#include "vmm/interp/interpreter.h"

namespace vmm86 {

/// The vCPU's CPUID answer for `leaf` / `subleaf`.
[[nodiscard]] CpuidResult virtual_cpuid(uint32_t leaf, uint32_t subleaf);

}  // namespace vmm86
