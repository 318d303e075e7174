#include "shadow-mmu/page_walker.h"

namespace vmm86 {

namespace {

using pte_bits::Accessed;
using pte_bits::Dirty;
using pte_bits::Global;
using pte_bits::Present;
using pte_bits::User;
using pte_bits::Writable;

// The vCPU's MAXPHYADDR: 36 bits, what a P6 with PAE and no CPUID leaf 0x80000008 has
// (SDM Vol. 3 §4.1.4). PAE entries' bits 63:36 are reserved (63 too: no NX/XD).
constexpr uint64_t kPaeAddressBits = 0x0000000FFFFFF000ull;
constexpr uint64_t kPaeReserved = 0xFFFFFFF000000000ull;
// A PDPTE's bits 2:1 and 8:5 are reserved as well (SDM Vol. 3 Table 4-8).
constexpr uint64_t kPdpteReserved = kPaeReserved | 0x1E6u;

// 4 MiB PDEs: bits 21:13 reserved without PSE-36. 2 MiB PDEs: bits 20:13 (bit 12 is PAT).
constexpr TableFormat kLegacyFormat{.entry_bytes = 4,
                                    .entries = 1024,
                                    .large_pages = 1024,
                                    .frame_mask = 0xFFFFF000u,
                                    .reserved = 0,
                                    .large_reserved = 0x003FE000u,
                                    .large_frame_mask = 0xFFC00000u};
constexpr TableFormat kPaeFormat{.entry_bytes = 8,
                                 .entries = 512,
                                 .large_pages = 512,
                                 .frame_mask = kPaeAddressBits,
                                 .reserved = kPaeReserved,
                                 .large_reserved = 0x001FE000u,
                                 .large_frame_mask = kPaeAddressBits & ~uint64_t{0x1FFFFF}};

/// Every physical address the CPU forms is ANDed with the A20 mask (bit 20 only).
uint64_t apply_a20(uint64_t phys, uint32_t a20_mask) { return phys & (0xFFFFFFFF00000000ull | a20_mask); }

void set_bits(GuestMemory& mem, GuestPhys addr, uint64_t entry, uint32_t bits) {
  if ((entry & bits) == bits) return;  // avoid dirtying the page-table page needlessly
  // A and D are in the low dword of either format: setting them there leaves the rest alone.
  // A locked OR, as the CPU's own update is a locked cycle: another vCPU may be changing the
  // same entry (SMP), and a plain write of what was read would undo its change.
  if (mem.in_ram(addr, sizeof(uint32_t)) && addr.value % sizeof(uint32_t) == 0) {
    __atomic_fetch_or(reinterpret_cast<uint32_t*>(mem.host_ptr(addr, sizeof(uint32_t))), bits, __ATOMIC_SEQ_CST);
    return;
  }
  const auto updated = static_cast<uint32_t>(entry | bits);
  (void)mem.write(addr, &updated, sizeof(updated));  // read succeeded: it is RAM
}

uint32_t access_error_bits(AccessKind access) {
  return (access.write ? pf_error::Write : 0u) | (access.user ? pf_error::User : 0u);
}

}  // namespace

TableFormat table_format(const PagingMode& mode) { return mode.pae() ? kPaeFormat : kLegacyFormat; }

bool read_table_entry(const GuestMemory& mem, const TableFormat& format, GuestPhys address, uint64_t* out) {
  *out = 0;
  return mem.read(address, out, format.entry_bytes);  // little-endian: a dword fills the low half
}

bool read_directory_entry(const GuestMemory& mem, const PagingMode& mode, GuestLinear linear, DirectoryEntry* out) {
  uint64_t directory = 0;
  uint64_t index = 0;
  if (mode.pae()) {
    const uint64_t pdpte = mode.pdpte[linear.value >> 30];
    if ((pdpte & Present) == 0) return false;
    directory = pdpte & kPaeAddressBits;
    index = (linear.value >> 21) & 0x1FF;
  } else {
    directory = mode.cr3 & ~kPageMask;
    index = linear.value >> 22;
  }
  const TableFormat format = table_format(mode);
  out->address = GuestPhys{apply_a20(directory + index * format.entry_bytes, mode.a20_mask)};
  return read_table_entry(mem, format, out->address, &out->value);
}

GuestPhys pte_address(const PagingMode& mode, uint64_t pde, GuestLinear linear) {
  const TableFormat format = table_format(mode);
  const uint64_t index = (linear.value >> kPageShift) & (format.entries - 1);
  return GuestPhys{apply_a20((pde & format.frame_mask) + index * format.entry_bytes, mode.a20_mask)};
}

bool load_pdptes(const GuestMemory& mem, uint32_t cr3, uint32_t a20_mask, Pdptes* out) {
  Pdptes loaded{};
  const uint64_t pdpt = cr3 & ~0x1Fu;  // 32-byte aligned (SDM Vol. 3 §4.4.1)
  for (size_t i = 0; i < loaded.size(); ++i) {
    uint64_t e = 0;
    if (!mem.read(GuestPhys{apply_a20(pdpt + i * 8, a20_mask)}, &e, sizeof(e))) e = 0;
    if ((e & Present) && (e & kPdpteReserved)) return false;
    loaded[i] = e;
  }
  *out = loaded;
  return true;
}

WalkResult walk_page_tables(GuestMemory& mem, const PagingMode& mode, GuestLinear linear, AccessKind access,
                            bool set_accessed_dirty) {
  WalkResult r;
  if (!mode.paging()) {
    r.ok = true;
    r.phys = GuestPhys{linear.value & mode.a20_mask};
    r.writable = true;
    r.user = true;
    r.dirty = true;  // no page table: no D bit for a first write to set
    return r;
  }
  const uint32_t access_bits = access_error_bits(access);
  const TableFormat format = table_format(mode);
  const uint32_t reserved_fault = access_bits | pf_error::Present | pf_error::Reserved;

  DirectoryEntry pde;
  if (!read_directory_entry(mem, mode, linear, &pde) || (pde.value & Present) == 0) {
    r.error_code = access_bits;
    return r;
  }
  const bool large = maps_large_page(mode, pde.value);
  if ((pde.value & format.reserved) != 0 || (large && (pde.value & format.large_reserved) != 0)) {
    r.error_code = reserved_fault;
    return r;
  }

  GuestPhys pte_addr{};
  uint64_t pte = 0;
  uint64_t final_entry = pde.value;
  if (!large) {
    pte_addr = pte_address(mode, pde.value, linear);
    if (!read_table_entry(mem, format, pte_addr, &pte) || (pte & Present) == 0) {
      r.error_code = access_bits;
      return r;
    }
    if ((pte & format.reserved) != 0) {
      r.error_code = reserved_fault;
      return r;
    }
    final_entry = pte;
  }

  // Permissions combine over both levels: the most restrictive wins (SDM §4.6.1). PAE's
  // PDPTEs carry no R/W or U/S bits.
  const bool user_ok = (pde.value & User) != 0 && (final_entry & User) != 0;
  const bool write_ok = (pde.value & Writable) != 0 && (final_entry & Writable) != 0;
  // Supervisor writes ignore R/W unless CR0.WP; supervisor reads of user pages are fine (no SMAP).
  const bool effective_write = access.user ? write_ok : (write_ok || (mode.cr0 & cr0::WP) == 0);
  if ((access.user && !user_ok) || (access.write && !effective_write)) {
    r.error_code = access_bits | pf_error::Present;
    return r;
  }

  if (set_accessed_dirty) {
    set_bits(mem, pde.address, pde.value, Accessed | (large && access.write ? Dirty : 0u));
    if (!large) set_bits(mem, pte_addr, pte, Accessed | (access.write ? Dirty : 0u));
    if (access.write) final_entry |= Dirty;
  }

  const uint64_t large_offset = uint64_t{format.large_pages} * kPageSize - 1;
  r.ok = true;
  r.large_page = large;
  r.phys = GuestPhys{apply_a20(large ? (pde.value & format.large_frame_mask) | (linear.value & large_offset)
                                     : (pte & format.frame_mask) | linear.page_offset(),
                               mode.a20_mask)};
  r.global = (final_entry & Global) != 0;
  r.writable = effective_write;
  r.user = user_ok;
  r.dirty = (final_entry & Dirty) != 0;
  return r;
}

WalkResult walk_fetch(GuestMemory& mem, const CpuState& cpu, GuestLinear linear, bool set_accessed) {
  return walk_page_tables(mem, paging_mode_of(cpu), linear, AccessKind{false, cpu.cpl() == 3, true}, set_accessed);
}

}  // namespace vmm86
