#include "shadow-mmu/page_walker.h"

namespace vmm86 {

namespace {

using pte_bits::Accessed;
using pte_bits::Dirty;
using pte_bits::Global;
using pte_bits::Present;
using pte_bits::User;
using pte_bits::Writable;
// Without PSE-36 (MAXPHYADDR 32) bits 21:13 of a 4 MiB PDE are reserved.
constexpr uint32_t kLargeReserved = 0x003FE000u;

bool read_entry(const GuestMemory& mem, GuestPhys addr, uint32_t* out) { return mem.read(addr, out, sizeof(*out)); }

void set_bits(GuestMemory& mem, GuestPhys addr, uint32_t entry, uint32_t bits) {
  if ((entry & bits) == bits) return;  // avoid dirtying the page-table page needlessly
  const uint32_t updated = entry | bits;
  (void)mem.write(addr, &updated, sizeof(updated));  // read succeeded: it is RAM
}

uint32_t access_error_bits(AccessKind access) {
  return (access.write ? pf_error::Write : 0u) | (access.user ? pf_error::User : 0u);
}

}  // namespace

WalkResult walk_page_tables(GuestMemory& mem, const PagingMode& mode, GuestLinear linear, AccessKind access,
                            bool set_accessed_dirty) {
  WalkResult r;
  if ((mode.cr0 & cr0::PG) == 0) {
    r.ok = true;
    r.phys = GuestPhys{linear.value & mode.a20_mask};
    r.writable = true;
    r.user = true;
    r.dirty = true;  // no page table: no D bit for a first write to set
    return r;
  }
  const uint32_t access_bits = access_error_bits(access);

  const GuestPhys pde_addr{pde_address(mode.cr3, linear).value & mode.a20_mask};
  uint32_t pde = 0;
  if (!read_entry(mem, pde_addr, &pde) || (pde & Present) == 0) {
    r.error_code = access_bits;
    return r;
  }
  const bool large = maps_large_page(pde, mode.cr4);
  if (large && (pde & kLargeReserved) != 0) {
    r.error_code = access_bits | pf_error::Present | pf_error::Reserved;
    return r;
  }

  GuestPhys pte_addr{};
  uint32_t pte = 0;
  uint32_t final_entry = pde;
  if (!large) {
    pte_addr = GuestPhys{pte_address(pde, linear).value & mode.a20_mask};
    if (!read_entry(mem, pte_addr, &pte) || (pte & Present) == 0) {
      r.error_code = access_bits;
      return r;
    }
    final_entry = pte;
  }

  // Permissions combine over both levels: the most restrictive wins (SDM §4.6.1).
  const bool user_ok = (pde & User) != 0 && (final_entry & User) != 0;
  const bool write_ok = (pde & Writable) != 0 && (final_entry & Writable) != 0;
  // Supervisor writes ignore R/W unless CR0.WP; supervisor reads of user pages are fine (no SMAP).
  const bool effective_write = access.user ? write_ok : (write_ok || (mode.cr0 & cr0::WP) == 0);
  if ((access.user && !user_ok) || (access.write && !effective_write)) {
    r.error_code = access_bits | pf_error::Present;
    return r;
  }

  if (set_accessed_dirty) {
    set_bits(mem, pde_addr, pde, Accessed | (large && access.write ? Dirty : 0u));
    if (!large) set_bits(mem, pte_addr, pte, Accessed | (access.write ? Dirty : 0u));
    if (access.write) final_entry |= Dirty;
  }

  r.ok = true;
  r.large_page = large;
  r.phys = GuestPhys{
      (large ? (pde & 0xFFC00000u) | (linear.value & 0x003FFFFFu) : (pte & ~kPageMask) | (linear.value & kPageMask)) &
      mode.a20_mask};
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
