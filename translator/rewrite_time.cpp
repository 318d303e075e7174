// rdtsc: the virtual TSC is the host TSC (plus CpuState::msr.tsc_offset, see
// vmm/machine/machine.cpp), so while the offset is 0 the guest's rdtsc runs as itself:
// no exit, and the same value the interpreter would return. In 64-bit mode it writes
// EDX:EAX and clears the upper halves of RAX/RDX, which hold nothing of the guest's.
#include "translator/block_builder.h"

namespace vmm86 {

RewriteStatus rewrite_time(BlockBuilder& b, const Instruction& /*rdtsc: the only row routed here*/) {
  b.mode_sensitive = true;
  if (!(b.mode & tmode::HostTsc)) return RewriteStatus::NotHandled;
  b.a.rdtsc();
  return RewriteStatus::Emitted;
}

}  // namespace vmm86
