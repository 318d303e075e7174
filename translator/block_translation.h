// Translating one guest block, in two steps (Translator::translate): the scanner decides
// the block — which instructions, which pages, where count segments start — and emits its
// body instruction by instruction, dispatching each on its table row's route; the emitter
// then emits the block's tail (the entry code check, the exit stubs, the checked entry)
// and places it in the code cache.
#pragma once

#include <asmjit/x86.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "translator/block_builder.h"
#include "translator/code_cache.h"
#include "translator/code_source.h"
#include "translator/emission.h"
#include "translator/trampolines.h"
#include "translator/translator.h"

namespace vmm86 {

/// What translating a block uses of the Translator.
struct BlockServices {
  CodeCache& cache;
  const Trampolines& trampolines;
  TranslatorStats& stats;
  bool callouts = false;  ///< ExecContext::callout is installed: instructions may run as callouts
};

/// One block on its way from guest bytes to the code cache.
struct BlockDraft {
  BlockDraft(const BlockKey& key, const BlockConfig& config)
      : b(*emission.a, config), block(std::make_unique<Block>()) {
    block->key = key;
    block->first_page = block->last_page = key.phys.page();
  }

  Emission emission;
  BlockBuilder b;
  std::unique_ptr<Block> block;
  const uint8_t* first_bytes = nullptr;  ///< the guest code at the block's EIP (for the code check)
  asmjit::Label main_entry;              ///< the prologue: where chained jumps and the dispatcher enter
  asmjit::Label check_code;              ///< the entry code check (Block::verifies_code)
  asmjit::Label body;                    ///< after the prologue, where the code check goes on
  asmjit::Label checked_entry;           ///< Block::checked_entry
  asmjit::Label mode_entry;              ///< Block::mode_entry
  std::vector<uint32_t> segment_patch;   ///< offset of each count segment's lea disp32
  std::vector<uint32_t> segment_end;     ///< instructions retired at the end of each segment
  std::vector<uint32_t> pc_segment;      ///< segment of each pc_map entry
  uint32_t end_eip = 0;                  ///< after the last instruction
  uint32_t insns = 0;                    ///< translated instructions
  uint32_t retired = 0;                  ///< guest instructions they retire (a PC thunk retires 3)
};

/// Scans and emits the body; false when not even the first instruction can be translated.
[[nodiscard]] bool scan_block(BlockDraft& draft, CodeSource& source, const BlockServices& services);
/// `source` can be copied to `key` (the same guest-physical code and mode at another EIP).
[[nodiscard]] bool relocatable_to(const Block& source, const BlockKey& key);
/// A copy of `source` at `key`'s EIP with its fixups moved, placed in `cache` but not
/// inserted; nullptr when the cache is full (block_relocation.cpp).
[[nodiscard]] std::unique_ptr<Block> relocated_copy(const Block& source, const BlockKey& key, CodeCache& cache);
/// What differs between a fresh translation and a relocated copy of the same key (host
/// addresses aside); empty when nothing does, or when the two cover different guest
/// instructions (which is legitimate: see the .cpp).
[[nodiscard]] std::string relocation_difference(const Block& fresh, const Block& relocated);
/// Copies `source` to `key`'s EIP, moving its fixups, and inserts the copy in the cache.
/// CacheFull when there is no room.
[[nodiscard]] TranslateStatus relocate_block(const Block& source, const BlockKey& key, const BlockServices& services,
                                             Block** out);
/// Emits the tail, places the block and inserts it in the cache.
[[nodiscard]] TranslateStatus emit_block(BlockDraft& draft, const BlockServices& services, Block** out);

}  // namespace vmm86
