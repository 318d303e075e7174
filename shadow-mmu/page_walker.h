// The guest page-table walker: 32-bit paging (2 levels of 32-bit entries: 4 KiB pages and
// 4 MiB PSE pages) and PAE paging (the 4 PDPTE registers, then 2 levels of 64-bit entries:
// 4 KiB and 2 MiB pages, frames up to MAXPHYADDR = 36 bits), shared by the interpreter and
// the shadow MMU so both see exactly the same translation, permission checks,
// Accessed/Dirty updates and #PF error codes (Intel SDM Vol. 3 §4.3, §4.4, §4.6, §4.7).
#pragma once

#include <array>
#include <cstdint>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"

namespace vmm86 {

/// The kind of access, as the #PF error code describes it.
struct AccessKind {
  bool write = false;
  bool user = false;   ///< CPL 3 (an implicit supervisor access such as a GDT read is not)
  bool fetch = false;  ///< instruction fetch (changes nothing: no NX/XD in this vCPU)
};

/// Paging control bits the walk depends on.
struct PagingMode {
  uint32_t cr0 = 0;
  uint32_t cr3 = 0;
  uint32_t cr4 = 0;
  uint32_t a20_mask = kA20Enabled;  ///< CpuState::a20_mask: applied to every physical address
  Pdptes pdpte{};                   ///< CpuState::pdpte: PAE's first level (not re-read from memory)

  [[nodiscard]] constexpr bool paging() const { return (cr0 & cr0::PG) != 0; }
  [[nodiscard]] constexpr bool pae() const { return (cr4 & cr4::PAE) != 0; }
};

[[nodiscard]] inline PagingMode paging_mode_of(const CpuState& cpu) {
  return PagingMode{cpu.cr0, cpu.cr3, cpu.cr4, cpu.a20_mask, cpu.pdpte};
}
[[nodiscard]] constexpr bool same_paging_mode(const PagingMode& a, const PagingMode& b) {
  return a.cr0 == b.cr0 && a.cr3 == b.cr3 && a.cr4 == b.cr4 && a.a20_mask == b.a20_mask && a.pdpte == b.pdpte;
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

/// Page-directory / page-table entry bits (the low 12 bits are alike in both formats;
/// Intel SDM Vol. 3 §4.3, §4.4.2).
namespace pte_bits {
inline constexpr uint32_t Present = 1u << 0;
inline constexpr uint32_t Writable = 1u << 1;
inline constexpr uint32_t User = 1u << 2;
inline constexpr uint32_t Accessed = 1u << 5;
inline constexpr uint32_t Dirty = 1u << 6;
inline constexpr uint32_t LargePage = 1u << 7;  ///< PDE only: a 4 MiB page (with CR4.PSE) or 2 MiB page (PAE)
inline constexpr uint32_t Global = 1u << 8;
}  // namespace pte_bits

/// The shape of the guest's page directories and tables in one paging mode.
struct TableFormat {
  uint32_t entry_bytes = 4;       ///< 4 (32-bit paging) or 8 (PAE)
  uint32_t entries = 1024;        ///< per table: 1024 or 512
  uint32_t large_pages = 1024;    ///< 4 KiB pages in a large page: 1024 (4 MiB) or 512 (2 MiB)
  uint64_t frame_mask = 0;        ///< frame address bits of a PDE/PTE naming a table or a 4 KiB page
  uint64_t reserved = 0;          ///< bits that must be 0 in every present PDE/PTE
  uint64_t large_reserved = 0;    ///< ... and in addition in a large-page PDE
  uint64_t large_frame_mask = 0;  ///< frame address bits of a large-page PDE
};
[[nodiscard]] TableFormat table_format(const PagingMode& mode);

/// The page-directory entry translating `linear` and where it is.
struct DirectoryEntry {
  GuestPhys address{};
  uint64_t value = 0;
};
/// Reads the PDE a walk of `linear` uses; false when there is none to read (PAE: the
/// PDPTE is not present) or the read leaves RAM. Paging must be on.
[[nodiscard]] bool read_directory_entry(const GuestMemory& mem, const PagingMode& mode, GuestLinear linear,
                                        DirectoryEntry* out);
/// Guest-physical address of the PTE translating `linear` in the table that `pde` names.
[[nodiscard]] GuestPhys pte_address(const PagingMode& mode, uint64_t pde, GuestLinear linear);
/// `pde` maps a large page (PS: honoured with CR4.PSE in 32-bit paging, always with PAE).
[[nodiscard]] constexpr bool maps_large_page(const PagingMode& mode, uint64_t pde) {
  return (pde & pte_bits::LargePage) != 0 && (mode.cr4 & (cr4::PSE | cr4::PAE)) != 0;
}
/// Reads an entry of `format`'s width.
[[nodiscard]] bool read_table_entry(const GuestMemory& mem, const TableFormat& format, GuestPhys address,
                                    uint64_t* out);

/// Loads the PDPTE registers from the PDPT that `cr3` names, as a MOV to CR0/CR3/CR4 does
/// when it leaves PAE paging on (SDM Vol. 3 §4.4.1). False when a present PDPTE has a
/// reserved bit set: the instruction then raises #GP(0) and changes nothing. A PDPT
/// outside RAM reads as not present.
[[nodiscard]] bool load_pdptes(const GuestMemory& mem, uint32_t cr3, uint32_t a20_mask, Pdptes* out);

struct WalkResult {
  bool ok = false;
  GuestPhys phys{};         ///< valid when ok
  uint32_t error_code = 0;  ///< #PF error code when !ok
  bool large_page = false;  ///< mapped by a large-page PDE (4 MiB, or 2 MiB with PAE)
  bool global = false;      ///< G bit (meaningful with CR4.PGE)
  bool writable = false;    ///< effective write permission for this access's privilege
  bool user = false;        ///< effective U/S (both levels allow user)
  bool dirty = false;       ///< D bit of the final entry after this walk
};

/// Translates `linear` for `access`. With `set_accessed_dirty`, sets A in every entry used
/// and D in the final one on a write (as the CPU does, only when the access succeeds).
/// Paging off (CR0.PG=0) is the identity. Page-table reads outside RAM yield a walk
/// that fails as not-present. A frame beyond RAM (up to 64 GiB with PAE) is returned as
/// is: the caller treats it as the physical map says (unbacked beyond every region).
[[nodiscard]] WalkResult walk_page_tables(GuestMemory& mem, const PagingMode& mode, GuestLinear linear,
                                          AccessKind access, bool set_accessed_dirty = true);

/// The walk of an instruction fetch at `linear` by the vCPU `cpu` as it is now (the
/// identity with paging off). Without `set_accessed` it changes nothing in guest memory
/// (a tracer's look at the code, not a fetch).
[[nodiscard]] WalkResult walk_fetch(GuestMemory& mem, const CpuState& cpu, GuestLinear linear, bool set_accessed);

}  // namespace vmm86
