// The guest page-table walker (2-level IA-32 paging: 4 KiB pages and 4 MiB PSE pages),
// shared by the interpreter and the shadow MMU so both see exactly the same translation,
// permission checks, Accessed/Dirty updates and #PF error codes (Intel SDM Vol. 3 §4.3, §4.6, §4.7).
#pragma once

#include <cstdint>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"

namespace vmm86 {

/// The kind of access, as the #PF error code describes it.
struct AccessKind {
  bool write = false;
  bool user = false;   ///< CPL 3 (an implicit supervisor access such as a GDT read is not)
  bool fetch = false;  ///< instruction fetch (no NX without PAE: only affects nothing yet)
};

/// Paging control bits the walk depends on.
struct PagingMode {
  uint32_t cr0 = 0;
  uint32_t cr3 = 0;
  uint32_t cr4 = 0;
  uint32_t a20_mask = kA20Enabled;  ///< CpuState::a20_mask: applied to every physical address
};

[[nodiscard]] inline PagingMode paging_mode_of(const CpuState& cpu) {
  return PagingMode{cpu.cr0, cpu.cr3, cpu.cr4, cpu.a20_mask};
}
[[nodiscard]] constexpr bool same_paging_mode(const PagingMode& a, const PagingMode& b) {
  return a.cr0 == b.cr0 && a.cr3 == b.cr3 && a.cr4 == b.cr4 && a.a20_mask == b.a20_mask;
}

/// True when the bits that shape every translation differ (paging or protection on/off, WP,
/// PSE, PGE, PAE): all cached translations, global ones too, may be wrong. CR3 aside, the
/// other bits of CR0/CR4 (TS, EM, MP, OSFXSR, TSD, ...) change none.
[[nodiscard]] constexpr bool paging_structure_differs(const PagingMode& a, const PagingMode& b) {
  constexpr uint32_t kCr0Bits = cr0::PG | cr0::WP | cr0::PE;
  constexpr uint32_t kCr4Bits = cr4::PSE | cr4::PGE | cr4::PAE;
  return ((a.cr0 ^ b.cr0) & kCr0Bits) != 0 || ((a.cr4 ^ b.cr4) & kCr4Bits) != 0 || a.a20_mask != b.a20_mask;
}

/// #PF error code bits.
namespace pf_error {
inline constexpr uint32_t Present = 1u << 0;  ///< 0 = not present, 1 = protection
inline constexpr uint32_t Write = 1u << 1;
inline constexpr uint32_t User = 1u << 2;
inline constexpr uint32_t Reserved = 1u << 3;
inline constexpr uint32_t Fetch = 1u << 4;
}  // namespace pf_error

/// Page-directory / page-table entry bits (non-PAE, Intel SDM Vol. 3 §4.3).
namespace pte_bits {
inline constexpr uint32_t Present = 1u << 0;
inline constexpr uint32_t Writable = 1u << 1;
inline constexpr uint32_t User = 1u << 2;
inline constexpr uint32_t Accessed = 1u << 5;
inline constexpr uint32_t Dirty = 1u << 6;
inline constexpr uint32_t LargePage = 1u << 7;  ///< PDE only: 4 MiB page when CR4.PSE
inline constexpr uint32_t Global = 1u << 8;
}  // namespace pte_bits

/// Guest-physical address of the PDE a walk of `linear` reads, and of the PTE it reads
/// in the table that `pde` names.
[[nodiscard]] inline GuestPhys pde_address(uint32_t cr3, GuestLinear linear) {
  return GuestPhys{(cr3 & ~kPageMask) + uint64_t{linear.value >> 22} * 4};
}
[[nodiscard]] inline GuestPhys pte_address(uint32_t pde, GuestLinear linear) {
  return GuestPhys{(pde & ~kPageMask) + uint64_t{(linear.value >> kPageShift) & 0x3FF} * 4};
}
/// `pde` maps a 4 MiB page (PS, honoured only with CR4.PSE).
[[nodiscard]] inline bool maps_large_page(uint32_t pde, uint32_t cr4) {
  return (cr4 & cr4::PSE) != 0 && (pde & pte_bits::LargePage) != 0;
}

struct WalkResult {
  bool ok = false;
  GuestPhys phys{};         ///< valid when ok
  uint32_t error_code = 0;  ///< #PF error code when !ok
  bool large_page = false;  ///< mapped by a 4 MiB PDE
  bool global = false;      ///< G bit (meaningful with CR4.PGE)
  bool writable = false;    ///< effective write permission for this access's privilege
  bool user = false;        ///< effective U/S (both levels allow user)
  bool dirty = false;       ///< D bit of the final entry after this walk
};

/// Translates `linear` for `access`. With `set_accessed_dirty`, sets A in every entry used
/// and D in the final one on a write (as the CPU does, only when the access succeeds).
/// Paging off (CR0.PG=0) is the identity. Page-table reads outside RAM yield a walk
/// that fails as not-present.
[[nodiscard]] WalkResult walk_page_tables(GuestMemory& mem, const PagingMode& mode, GuestLinear linear,
                                          AccessKind access, bool set_accessed_dirty = true);

/// The walk of an instruction fetch at `linear` by the vCPU `cpu` as it is now (the
/// identity with paging off). Without `set_accessed` it changes nothing in guest memory
/// (a tracer's look at the code, not a fetch).
[[nodiscard]] WalkResult walk_fetch(GuestMemory& mem, const CpuState& cpu, GuestLinear linear, bool set_accessed);

}  // namespace vmm86
