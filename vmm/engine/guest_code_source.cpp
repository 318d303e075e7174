#include "vmm/engine/guest_code_source.h"

namespace vmm86 {

bool GuestCodeSource::fetch(uint32_t linear, Bytes* out) {
  if (!read_code(linear, out)) return false;
  out->verify = smc_.watch(out->phys >> kPageShift);
  return true;
}

bool GuestCodeSource::read_code(uint32_t linear, Bytes* out) const {
  const WalkResult w = walk_fetch(mem_, cpu_, linear, true);
  if (!w.ok) return false;
  const GuestPhys phys = w.phys;
  out->global = w.global && (cpu_.cr4 & cr4::PGE) != 0;
  out->large = w.large_page;
  const PhysKind kind = mem_.kind_at(phys);
  if (kind != PhysKind::Ram && kind != PhysKind::Rom) return false;
  const uint32_t available = kPageSize - (linear & kPageMask);
  out->host = mem_.host_ptr(phys, available);
  if (!out->host) return false;
  out->available = available;
  out->phys = phys.value;
  return true;
}

}  // namespace vmm86
