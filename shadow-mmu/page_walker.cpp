#include "shadow-mmu/page_walker.h"

namespace vmm86 {

// Placeholder until the walker lands: identity, always succeeds.
WalkResult walk_page_tables(GuestMemory&, const PagingMode&, GuestLinear linear, AccessKind, bool) {
  WalkResult r;
  r.ok = true;
  r.phys = GuestPhys{linear.value};
  r.writable = true;
  r.user = true;
  return r;
}

}  // namespace vmm86
