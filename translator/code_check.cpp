// Self-modifying code, the cheaper strategy (DESIGN.md §4): a page that keeps taking writes
// to translated code stops being write-protected, and its blocks compare their guest bytes
// with what was translated each time they are entered.
#include <cstring>

#include "translator/block_builder.h"

namespace vmm86 {

using namespace asmjit;

namespace {

/// Loads `size` (8, 4, 2, 1) bytes of guest code at r11d + offset into r13, zero-extended.
void load_chunk(x86::Assembler& a, uint32_t offset, uint32_t size) {
  x86::Mem m = x86::ptr(x86::r11d, static_cast<int32_t>(offset), size);
  m.setSegment(x86::gs);
  switch (size) {
    case 8: a.mov(x86::r13, m); break;
    case 4: a.mov(x86::r13d, m); break;
    case 2: a.movzx(x86::r13d, m); break;
    default: a.movzx(x86::r13d, m); break;
  }
}

uint32_t chunk_size(uint32_t remaining) { return remaining >= 8 ? 8 : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1; }

}  // namespace

void emit_code_check(BlockBuilder& b, uint32_t eip, const uint8_t* expected, uint32_t size, Label body) {
  auto& a = b.a;
  const Label mismatch = a.newLabel();
  a.mov(x86::r11d, eip);
  load_chunk(a, 0, chunk_size(size));  // may fault: flags are still the guest's
  a.pushfq();
  for (uint32_t offset = 0; offset < size;) {
    const uint32_t n = chunk_size(size - offset);
    if (offset != 0) load_chunk(a, offset, n);  // same page: mapped by the first load
    uint64_t value = 0;
    std::memcpy(&value, expected + offset, n);
    a.mov(x86::r10, value);
    a.cmp(x86::r13, x86::r10);
    a.jne(mismatch);
    offset += n;
  }
  a.popfq();
  a.jmp(body);
  a.bind(mismatch);
  a.popfq();
  b.jump_to_exit(ExitKind::Stale, eip);
}

}  // namespace vmm86
