// Route::Callout (and any rewrite's fallback to it): instructions with no inline form that
// can run in place — segment loads, port I/O, CR/DR/MSR and descriptor-table access,
// cpuid, forms 64-bit mode cannot encode. The callout trampoline stores the guest
// registers, ExecContext::callout runs the instruction in the interpreter, and the block
// goes on (or leaves, if the callout returns an exit).
#include <memory>

#include "translator/block_builder.h"

namespace vmm86 {

void emit_callout(BlockBuilder& b, Block& block, const uint8_t* callout_trampoline) {
  auto site = std::make_unique<CalloutSite>();
  site->eip = b.eip;
  site->next_eip = b.next_eip;
  site->block = &block;
  b.a.mov(guest_eip_field(), b.eip);
  b.note(CodeFixup::Kind::Eip, b.eip);
  b.a.mov(asmjit::x86::r13, reinterpret_cast<uint64_t>(site.get()));
  b.note(CodeFixup::Kind::CalloutPointer, reinterpret_cast<uint64_t>(site.get()), block.callouts.size());
  b.a.call(asmjit::Imm(reinterpret_cast<uint64_t>(callout_trampoline)));
  b.note(CodeFixup::Kind::HostTarget, 0);
  block.callouts.push_back(std::move(site));
}

}  // namespace vmm86
