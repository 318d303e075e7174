// The code cache: one W^X arena (two views of one memfd) for translated blocks and the trampolines, a map from
// block keys to blocks, a page-to-blocks index for invalidation, and the exits that can
// be chained (patched to jump straight to their target) and unchained (STYLE.md #5).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "vmm/arch/types.h"

namespace vmm86 {

struct Block;

/// What translation depends on besides the code bytes: a block is reused only when all of
/// these match (DESIGN.md §4). Guest-physical, so blocks survive CR3 switches.
struct BlockKey {
  GuestPhys phys{};   ///< guest-physical address of the first byte
  uint32_t eip = 0;   ///< guest linear EIP (blocks embed absolute EIPs)
  uint32_t mode = 0;  ///< TranslationMode bits
  bool operator==(const BlockKey&) const = default;
};

struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const {
    return std::hash<uint64_t>()(k.phys.value * 0x9E3779B97F4A7C15ull ^ (uint64_t{k.eip} << 20) ^ k.mode);
  }
};

/// Why a block was left.
enum class ExitKind : uint8_t {
  Direct,       ///< to a known guest EIP; can be chained
  Indirect,     ///< target computed at run time (in cpu.eip), missed the inline table
  Interpret,    ///< the next instruction needs the interpreter (cpu.eip points at it)
  Callout,      ///< a callout asked to leave (interrupt window, mode change)
  Poll,         ///< the poll page was armed (interrupt, stop request); cpu.eip = block start
  Fault,        ///< a host fault that is not a window fill: interpret the instruction at cpu.eip
  Stale,        ///< the block's guest code changed under it (checked at entry): drop it
  CodeTlbMiss,  ///< entered through the indirect table, but the code TLB does not confirm its page
};

/// One exit of a block. Lives as long as its block.
struct ExitRecord {
  ExitKind kind = ExitKind::Direct;
  Block* from = nullptr;
  uint32_t target_eip = 0;
  /// Host address of the rel32 of the jump that leads to this exit's stub; chaining
  /// rewrites it to point at the target block, unchaining back at `stub`.
  uint8_t* patch_rel32 = nullptr;
  uint8_t* stub = nullptr;
  Block* chained_to = nullptr;
};

/// Host code offset -> guest EIP of the instruction it belongs to.
struct PcMapEntry {
  uint32_t host_offset = 0;
  uint32_t guest_eip = 0;
  /// Guest instructions of the block retired before this one (an inlined PC-thunk call
  /// retires three: call, mov, ret).
  uint32_t retired_before = 0;
  /// What the block's count segments had added to the retired count when this instruction
  /// runs (its own segment included): the instructions not retired at a fault here are
  /// counted - retired_before.
  uint32_t counted = 0;
};

/// Host registers that a host string instruction uses as pointers into the window
/// (window_base + guest ESI/EDI) instead of as the guest's own register values.
namespace host_ptr {
inline constexpr uint8_t Rsi = 1u << 0;
inline constexpr uint8_t Rdi = 1u << 1;
}  // namespace host_ptr

/// A host string instruction of a block (rewrite_string.cpp). If it faults without being
/// retried, the fault handler turns its pointer registers back into guest ESI/EDI; RCX
/// already holds the guest's remaining count, so the interpreter continues precisely.
struct HostPointerSite {
  uint32_t host_offset = 0;  ///< of the string instruction (its prefixes included)
  uint8_t regs = 0;          ///< host_ptr bits
};

/// An instruction a block runs through a callout (the interpreter, in place): no exit to
/// the dispatcher unless the instruction changes what the block was translated for.
struct CalloutSite {
  uint32_t eip = 0;
  uint32_t next_eip = 0;
  /// Instructions of the block after this one that its count segment added already (a
  /// callout that leaves takes them off the retired count).
  uint32_t insns_after = 0;
  Block* block = nullptr;
};

/// A field of a block's host code that depends on where the block sits: its guest EIP
/// (the block is relocatable to another linear address of the same guest-physical code,
/// docs/design-notes.md) or its host address. `end` is the host offset just after the
/// field (the field is the last 4 or 8 bytes of its instruction).
struct CodeFixup {
  enum class Kind : uint8_t {
    Eip,            ///< imm32 = a guest EIP of the block's page(s): moves with the block
    NegEip,         ///< imm32/disp32 = -(a guest EIP)
    CodeTlbOffset,  ///< disp32 = CodeTlb::entry_offset(user, the block's linear page)
    CodeTlbTag,     ///< disp32 = -CodeTlb::tag(the block's linear page, its frame)
    HostTarget,     ///< a call/jmp to code outside the block (rel32 if asmjit made it one)
    ExitPointer,    ///< imm64 = &exits[index]
    CalloutPointer  ///< imm64 = &callouts[index]
  };
  uint16_t end = 0;  ///< blocks are a few KiB; a longer one is not relocatable
  Kind kind = Kind::Eip;
  uint16_t index = 0;  ///< ExitPointer / CalloutPointer
  /// Bytes of the field, which ends at `end`: a host pointer, or a 32-bit value.
  [[nodiscard]] uint32_t width() const { return kind == Kind::ExitPointer || kind == Kind::CalloutPointer ? 8 : 4; }
};
static_assert(sizeof(CodeFixup) == 6, "tens of thousands of blocks keep a list of these");

struct Block {
  BlockKey key;
  uint8_t* host_code = nullptr;      ///< where chained jumps and the dispatcher enter
  uint8_t* checked_entry = nullptr;  ///< where the inline table leads: code TLB (and mode) compare first
  uint8_t* mode_entry = nullptr;     ///< compares only the mode (mode_sensitive blocks; else host_code)
  /// Where the dispatcher enters after finding the block at the current EIP itself.
  [[nodiscard]] const uint8_t* dispatch_entry() const { return has_second_page ? checked_entry : host_code; }
  uint32_t host_size = 0;
  uint32_t guest_size = 0;   ///< bytes of guest code
  uint32_t guest_insns = 0;  ///< guest instructions it retires when run to the end
  std::vector<std::unique_ptr<ExitRecord>> exits;
  std::vector<std::unique_ptr<CalloutSite>> callouts;
  std::vector<ExitRecord*> incoming;                ///< chained exits of other blocks that jump here
  std::vector<PcMapEntry> pc_map;                   ///< sorted by host_offset
  std::vector<HostPointerSite> host_pointer_sites;  ///< sorted by host_offset
  /// Guest-physical pages its translation depends on: the first, and a second one (the same
  /// unless has_second_page): where its last instruction ends, or where the PC thunk it
  /// called inline lives. Not necessarily the next frame.
  PhysPage first_page{}, last_page{};
  /// Entered only through its checked entry, which compares both pages' mappings.
  bool has_second_page = false;
  LinearPage second_linear_page{};
  bool valid = true;
  bool verifies_code = false;  ///< checks its guest bytes at entry (a page not write-protected)
  /// Where that check starts (after the body, reached from the prologue before anything is
  /// counted); host offsets from here on translate back to the block's start.
  uint32_t code_check_offset = 0;
  /// Its translation depends on the unsalted mode bits (tmode::kUnsalted, rdtsc): entered through
  /// the table only when those match; otherwise it suits any mode with the same other bits.
  bool mode_sensitive = false;
  /// Every fixup of its host code, when all of them are known (relocatable); exits[0,
  /// stub_exits) are the stubs of its guest branches (their targets are guest EIPs).
  std::vector<CodeFixup> fixups;
  bool relocatable = false;
  uint32_t stub_exits = 0;
  uint32_t placed_size = 0;  ///< bytes taken in the cache (host code, its address table)
};

class CodeCache {
 public:
  explicit CodeCache(size_t arena_bytes);
  ~CodeCache();
  CodeCache(const CodeCache&) = delete;
  CodeCache& operator=(const CodeCache&) = delete;

  [[nodiscard]] bool ok() const { return arena_ != nullptr; }
  /// Why the arena could not be made (the host call and its errno text); empty when ok().
  [[nodiscard]] const std::string& failure() const { return failure_; }
  /// The arena size the constructor was asked for (capacity() is 0 when that failed).
  [[nodiscard]] size_t capacity_asked() const { return asked_; }
  /// Reserves `bytes` of executable memory; nullptr when the arena is full. The address is
  /// where the code runs; it is written through writable().
  [[nodiscard]] uint8_t* allocate(size_t bytes);
  /// The writable view of an address in the arena (the executable view is read-only).
  [[nodiscard]] uint8_t* writable(const uint8_t* code) const { return writable_ + (code - arena_); }
  /// Start of block space (after the permanent trampolines).
  void mark_permanent() { permanent_end_ = used_; }

  [[nodiscard]] Block* find(const BlockKey& key) const;
  Block* insert(std::unique_ptr<Block> block);
  /// Removes every block that covers the guest-physical page; returns how many.
  size_t invalidate_page(PhysPage phys_page);
  /// Removes one block (its guest code changed).
  void invalidate(Block* block) { drop(block); }
  /// Drops every block (arena full, or a global change); trampolines stay.
  void flush();
  /// Frees the blocks dropped since the last call. Only where no translated code and no
  /// callout runs (the dispatcher, between entries): a callout's own block, its exit
  /// records and its CalloutSite stay readable until then, even if the instruction the
  /// callout ran dropped them (a store to its own code page, a descriptor's Accessed bit).
  void reclaim() {
    if (!retired_.empty()) retired_.clear();
  }

  /// Patches `exit` to jump to `entry`, one of the target's entries.
  bool chain(ExitRecord* exit, Block* target, const uint8_t* entry);
  void unchain(ExitRecord* exit);
  /// Points the rel32 field at `rel32` (an address in the arena) at `target`.
  void write_rel32(uint8_t* rel32, const uint8_t* target);

  /// The block containing a host PC, or nullptr.
  [[nodiscard]] Block* block_at(const void* host_pc) const;

  [[nodiscard]] size_t used_bytes() const { return used_; }
  [[nodiscard]] size_t capacity() const { return size_; }
  [[nodiscard]] size_t block_count() const { return blocks_.size(); }
  [[nodiscard]] uint64_t flush_count() const { return flushes_; }
  [[nodiscard]] bool has_code_on_page(PhysPage phys_page) const { return page_index_.count(phys_page.value) != 0; }
  /// The blocks covering a guest-physical page, or nullptr.
  [[nodiscard]] const std::vector<Block*>* blocks_on_page(PhysPage phys_page) const {
    auto it = page_index_.find(phys_page.value);
    return it == page_index_.end() ? nullptr : &it->second;
  }

 private:
  void drop(Block* block);

  uint8_t* arena_ = nullptr;     ///< the executable view (read + execute)
  uint8_t* writable_ = nullptr;  ///< the same memory, read + write
  size_t size_ = 0;
  size_t asked_ = 0;
  std::string failure_;
  size_t used_ = 0;
  size_t permanent_end_ = 0;
  uint64_t flushes_ = 0;
  std::unordered_map<BlockKey, std::unique_ptr<Block>, BlockKeyHash> blocks_;
  std::unordered_map<uint64_t, std::vector<Block*>> page_index_;  ///< by PhysPage::value
  std::vector<Block*> by_address_;                                ///< blocks in allocation order (addresses increase)
  std::vector<std::unique_ptr<Block>> retired_;                   ///< dropped, freed by reclaim()
};

}  // namespace vmm86
