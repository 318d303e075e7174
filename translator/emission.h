// Assembling a piece of host code (a block, the trampolines) into a fresh CodeHolder and
// copying the result into the code cache.
#pragma once

#include <asmjit/x86.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "translator/code_cache.h"

namespace vmm86 {

struct Emission {
  asmjit::CodeHolder code;
  std::unique_ptr<asmjit::x86::Assembler> a;
  Emission() {
    code.init(asmjit::Environment(asmjit::Arch::kX64));
    a = std::make_unique<asmjit::x86::Assembler>(&code);
  }
  /// Places the code in `cache`; returns its address or nullptr when the cache is full.
  uint8_t* place(CodeCache& cache, size_t* size_out) {
    if (code.flatten() != asmjit::kErrorOk || code.resolveUnresolvedLinks() != asmjit::kErrorOk) return nullptr;
    const size_t size = code.codeSize();
    uint8_t* mem = cache.allocate(size);
    if (!mem) return nullptr;
    if (code.relocateToBase(reinterpret_cast<uint64_t>(mem)) != asmjit::kErrorOk) return nullptr;
    code.copyFlattenedData(cache.writable(mem), size, asmjit::CopySectionFlags::kPadSectionBuffer);
    *size_out = size;
    return mem;
  }
  /// Where `label` ended up in code placed at `base`.
  [[nodiscard]] uint8_t* address_of(uint8_t* base, asmjit::Label label) const {
    return base + code.labelOffsetFromBase(label);
  }
};

}  // namespace vmm86
