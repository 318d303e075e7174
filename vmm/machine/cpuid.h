// The CPU model the guest sees through CPUID (DESIGN.md §2): a P6-family Intel CPU with
// FPU, TSC, MSR, PAE (36-bit physical addresses, no NX: no leaf 0x80000001 bits, no
// EFER), CX8, CMOV, PSE, PGE, FXSR, MMX, SSE and SSE2; no APIC, no
// hypervisor leaf (the kernel would look for paravirtual interfaces we do not provide).
// Leaves 3-0x14 read as zeros (no such features); 0x15/0x16 give the TSC rate.
#pragma once

#include <cstdint>

#include "vmm/interp/interpreter.h"

namespace vmm86 {

/// The vCPU's CPUID answer for `leaf` / `subleaf`. `tsc_hz` is the TSC's rate, reported in
/// leaves 0x15/0x16 as Intel CPUs do, so that the guest does not have to calibrate the TSC
/// against the PIT (which fails when one PIT read takes ten times another: a host timer
/// tick or preemption is enough); 0 reports it as unknown.
/// `apic`: the local APIC is present and globally enabled (CPUID.1:EDX[9]; its initial
/// APIC ID, 0, is in CPUID.1:EBX[31:24]).
[[nodiscard]] CpuidResult virtual_cpuid(uint32_t leaf, uint32_t subleaf, uint64_t tsc_hz, bool apic);

/// The core crystal clock leaf 0x15 reports for `tsc_hz` (0: none), which the local APIC
/// timer counts on CPUs that report it (SDM §10.5.4), and Linux takes as the APIC timer's
/// rate without calibrating it.
[[nodiscard]] uint64_t crystal_hz(uint64_t tsc_hz);

/// The host's TSC rate in Hz, measured against CLOCK_MONOTONIC_RAW (a few milliseconds,
/// once per process); 0 if the TSC does not tick at a constant rate.
[[nodiscard]] uint64_t host_tsc_hz();

}  // namespace vmm86
