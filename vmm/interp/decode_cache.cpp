// The decoded-instruction cache's storage (see core.h).
#include "vmm/interp/core.h"

#include <sys/mman.h>

#include <type_traits>

namespace vmm86::interp {

// Entries live in anonymous zero-filled memory without running constructors: all-zero is
// a valid empty entry, and every member is a plain value.
static_assert(std::is_trivially_copyable_v<DecodeCache::Entry>);

DecodeCache::~DecodeCache() {
  if (entries_ != nullptr) munmap(entries_, kEntries * sizeof(Entry));
}

const DecodeCache::Entry* DecodeCache::insert(uint64_t phys, bool big, const uint8_t* code, Handler handler,
                                              const Instruction& insn) {
  if (entries_ == nullptr) {
    void* p = mmap(nullptr, kEntries * sizeof(Entry), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;  // run without the cache
    entries_ = static_cast<Entry*>(p);
  }
  Entry& e = entries_[slot_of(phys)];
  e.phys = phys;
  e.len = insn.length();
  e.big = big;
  std::memcpy(e.bytes.data(), code, e.len);
  e.handler = handler;
  e.insn = insn;
  return &e;
}

}  // namespace vmm86::interp
