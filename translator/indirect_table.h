// The inline indirect-branch table (ExecContext::indirect_table): guest EIP -> host entry,
// looked up by translated code (emit_indirect_jump) and by the dispatcher before it walks
// the guest's tables (DESIGN.md §4, docs/design-notes.md "The dispatcher enters through
// the inline table first").
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "translator/code_cache.h"
#include "translator/exec_context.h"

namespace vmm86 {

class IndirectTable {
 public:
  /// Allocates the table (null when that fails: ok()) and publishes it in the context.
  explicit IndirectTable(ExecContext& ctx);
  [[nodiscard]] bool ok() const { return entries_ != nullptr; }
  /// Bits of the EIP that index it (kIndirectIndexBitsWide with BMI2).
  [[nodiscard]] uint32_t index_bits() const { return index_bits_; }

  /// Records `block` as the target for `eip` in the current mode (ExecContext::lookup_salt).
  void remember(uint32_t eip, const Block& block);
  /// The entry the table holds for `eip` in the current mode and address space, or nullptr.
  [[nodiscard]] const uint8_t* target(uint32_t eip) const {
    const IndirectEntry& e = entries_[slot(eip)];
    if (e.neg_key + eip + ctx_.lookup_salt != 0) return nullptr;
    uint32_t tag = 0;
    std::memcpy(&tag, reinterpret_cast<const uint8_t*>(&ctx_) + e.tlb_offset, sizeof tag);
    return tag + e.neg_tag == 0 ? reinterpret_cast<const uint8_t*>(e.host_code) : nullptr;
  }
  /// Drops the entry for `eip`.
  void forget(uint32_t eip) { entries_[slot(eip)] = IndirectEntry{}; }
  /// Drops the entry that leads to `block`, if any (a block has at most one: its EIP's slot).
  void forget(const Block& block);
  void clear();

  /// Where a table hit enters a block: the lookup compared its first page already; blocks
  /// that need more (their second page, the mode) get their checked entry.
  [[nodiscard]] static const uint8_t* entry_of(const Block& block) {
    return block.has_second_page || block.mode_sensitive ? block.checked_entry : block.host_code;
  }

 private:
  [[nodiscard]] uint32_t slot(uint32_t eip) const { return eip & ((1u << index_bits_) - 1); }

  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  ExecContext& ctx_;
  uint32_t index_bits_;
  std::unique_ptr<IndirectEntry[], FreeDeleter> entries_;
};

}  // namespace vmm86
