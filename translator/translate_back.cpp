#include "translator/translate_back.h"

namespace vmm86 {

void GuestLocation::apply(gregset_t& regs, uint64_t window_base) const {
  regs[REG_R14] -= not_retired;
  const auto base = static_cast<greg_t>(window_base);
  if (host_pointer_regs & host_ptr::Rsi) regs[REG_RSI] = static_cast<uint32_t>(regs[REG_RSI] - base);
  if (host_pointer_regs & host_ptr::Rdi) regs[REG_RDI] = static_cast<uint32_t>(regs[REG_RDI] - base);
}

bool translate_back(const Block& block, uint32_t host_offset, GuestLocation* out) {
  if (block.pc_map.empty()) return false;
  *out = GuestLocation{};
  // In the prologue, or in the entry code check after the body (its guest loads may fault):
  // nothing counted yet.
  if (host_offset < block.pc_map[0].host_offset || (block.verifies_code && host_offset >= block.code_check_offset)) {
    out->eip = block.key.eip;
    return true;
  }
  size_t i = 0;
  while (i + 1 < block.pc_map.size() && block.pc_map[i + 1].host_offset <= host_offset) ++i;
  const PcMapEntry& at = block.pc_map[i];
  out->eip = at.guest_eip;
  out->not_retired = at.counted - at.retired_before;
  for (const HostPointerSite& site : block.host_pointer_sites) {
    if (site.host_offset == host_offset) out->host_pointer_regs = site.regs;
  }
  return true;
}

}  // namespace vmm86
