#include "vmm/engine/guest_code_source.h"

namespace vmm86 {

bool GuestCodeSource::fetch(GuestLinear linear, Bytes* out) {
  if (!read_code(linear, out)) return false;
  out->verify = smc_.watch(out->phys.page());
  return true;
}

bool GuestCodeSource::read_code(GuestLinear linear, Bytes* out) const {
  const WalkResult w = walk_fetch(mem_, cpu_, linear, true);
  if (!w.ok) return false;
  const GuestPhys phys = w.phys;
  out->global = w.global && (cpu_.cr4 & cr4::PGE) != 0;
  out->large = w.large_page;
  const PhysKind kind = mem_.kind_at(phys);
  if (kind != PhysKind::Ram && kind != PhysKind::Rom) return false;
  const uint32_t available = kPageSize - linear.page_offset();
  out->host = mem_.host_ptr(phys, available);
  if (!out->host) return false;
  out->available = available;
  out->phys = phys;
  return true;
}

}  // namespace vmm86
