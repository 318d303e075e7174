// The vCPU state a boot loader leaves for a 32-bit kernel: protected mode without paging,
// interrupts off, code and data segments flat over 4 GiB, and the small GDT behind them.
// The Linux boot protocol and Multiboot both ask for this state; they differ in the
// selectors, the registers that carry the handover and where the GDT sits.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/types.h"

namespace vmm86::flat_boot {

/// A 4 GiB flat 32-bit code segment (execute/read, accessed) as the CPU caches it.
[[nodiscard]] SegmentCache code_segment(uint16_t selector);
/// A 4 GiB flat 32-bit data segment (read/write, accessed) as the CPU caches it.
[[nodiscard]] SegmentCache data_segment(uint16_t selector);

/// Packs a segment into its GDT descriptor, so descriptor and cache cannot disagree.
[[nodiscard]] uint64_t descriptor_of(const SegmentCache& seg);

/// Where the flat segments live and where execution starts.
struct FlatEntry {
  uint16_t code_selector = 0;  ///< CS
  uint16_t data_selector = 0;  ///< DS, ES, FS, GS, SS
  GuestPhys gdt{};             ///< where the caller writes gdt(); GDTR points there
  uint32_t entry = 0;          ///< EIP
  uint32_t esp = 0;
};

/// The GDT of `entry`: null descriptors except at the two selectors.
[[nodiscard]] std::vector<uint64_t> gdt(const FlatEntry& entry);

/// The vCPU at `entry`: CR0 = PE | ET, EFLAGS = 2 (IF = 0), every general register 0 but
/// ESP, flat CS and data segments, GDTR at entry.gdt covering gdt(entry), and an empty IDT
/// (an exception before the kernel loads its own shuts the guest down instead of jumping
/// through garbage).
[[nodiscard]] CpuState cpu_state(const FlatEntry& entry);

}  // namespace vmm86::flat_boot
