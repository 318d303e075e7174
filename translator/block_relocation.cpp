// Relocation (block_translation.h): the same guest-physical code in the same mode at
// another linear address — a library that ASLR maps elsewhere in each new process — is the
// same translation but for the fields that hold its EIP or its host address (CodeFixup).
// A copy with those fields moved costs a memcpy where a translation decodes and emits
// every instruction (docs/design-notes.md, "Relocated blocks").
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "translator/block_translation.h"
#include "translator/code_tlb.h"

namespace vmm86 {

namespace {

void put32(uint8_t* at, uint32_t value) { std::memcpy(at, &value, 4); }
void add32(uint8_t* at, uint32_t delta) {
  uint32_t value = 0;
  std::memcpy(&value, at, 4);
  put32(at, value + delta);
}
void put64(uint8_t* at, const void* pointer) {
  const auto value = reinterpret_cast<uint64_t>(pointer);
  std::memcpy(at, &value, 8);
}

}  // namespace

bool relocatable_to(const Block& source, const BlockKey& key) {
  return source.valid && source.relocatable && !source.has_second_page && !source.verifies_code &&
         source.key.phys == key.phys && source.key.mode == key.mode && source.key.eip != key.eip;
}

std::unique_ptr<Block> relocated_copy(const Block& source, const BlockKey& key, CodeCache& cache) {
  uint8_t* code = cache.allocate(source.placed_size);
  if (!code) return nullptr;
  uint8_t* copy = cache.writable(code);
  std::memcpy(copy, source.host_code, source.placed_size);
  // Same physical start, so the same offset in the page: the delta is whole pages, and the
  // block's pages keep their order.
  const uint32_t delta = key.eip - source.key.eip;
  auto at = [&](const uint8_t* in_source) { return code + (in_source - source.host_code); };

  auto block = std::make_unique<Block>();
  Block& b = *block;
  b.key = key;
  b.host_code = code;
  b.checked_entry = at(source.checked_entry);
  b.mode_entry = at(source.mode_entry);
  b.host_size = source.host_size;
  b.guest_size = source.guest_size;
  b.guest_insns = source.guest_insns;
  b.first_page = source.first_page;
  b.last_page = source.last_page;
  b.mode_sensitive = source.mode_sensitive;
  b.fixups = source.fixups;
  b.relocatable = true;
  b.stub_exits = source.stub_exits;
  b.placed_size = source.placed_size;
  b.pc_map = source.pc_map;
  for (PcMapEntry& m : b.pc_map) m.guest_eip += delta;
  b.host_pointer_sites = source.host_pointer_sites;
  for (size_t i = 0; i < source.exits.size(); ++i) {
    const ExitRecord& from = *source.exits[i];
    auto rec = std::make_unique<ExitRecord>();
    rec->kind = from.kind;
    rec->from = &b;
    rec->target_eip = i < source.stub_exits ? from.target_eip + delta : from.target_eip;
    rec->stub = from.stub ? at(from.stub) : nullptr;
    if (from.patch_rel32) {
      // The source may be chained: the copy starts unchained, its jump at its own stub.
      rec->patch_rel32 = at(from.patch_rel32);
      cache.write_rel32(rec->patch_rel32, rec->stub);
    }
    b.exits.push_back(std::move(rec));
  }
  for (const auto& from : source.callouts) {
    auto site = std::make_unique<CalloutSite>(*from);
    site->eip += delta;
    site->next_eip += delta;
    site->block = &b;
    b.callouts.push_back(std::move(site));
  }
  const LinearPage linear_page = GuestLinear{key.eip}.page();
  const bool user = (key.mode & tmode::Cpl3) != 0;
  for (const CodeFixup& f : b.fixups) {
    uint8_t* end = copy + f.end;
    switch (f.kind) {
      case CodeFixup::Kind::Eip: add32(end - 4, delta); break;
      case CodeFixup::Kind::NegEip: add32(end - 4, 0u - delta); break;
      case CodeFixup::Kind::CodeTlbOffset:
        put32(end - 4, static_cast<uint32_t>(CodeTlb::entry_offset(user, linear_page)));
        break;
      case CodeFixup::Kind::CodeTlbTag: put32(end - 4, 0u - CodeTlb::tag(linear_page, key.phys.page())); break;
      case CodeFixup::Kind::HostTarget:
        // A rel32 call/jmp moves by the distance the copy moved; asmjit's other form goes
        // through the block's own address table, which moved with it.
        if (end[-5] == 0xE8 || end[-5] == 0xE9) add32(end - 4, static_cast<uint32_t>(source.host_code - code));
        break;
      case CodeFixup::Kind::ExitPointer: put64(end - 8, b.exits[f.index].get()); break;
      case CodeFixup::Kind::CalloutPointer: put64(end - 8, b.callouts[f.index].get()); break;
    }
  }
  return block;
}

TranslateStatus relocate_block(const Block& source, const BlockKey& key, const BlockServices& services, Block** out) {
  std::unique_ptr<Block> block = relocated_copy(source, key, services.cache);
  if (!block) return TranslateStatus::CacheFull;
  ++services.stats.blocks_relocated;
  *out = services.cache.insert(std::move(block));
  return TranslateStatus::Ok;
}

std::string relocation_difference(const Block& fresh, const Block& relocated) {
  auto say = [&](const char* what) {
    char detail[160];
    std::snprintf(detail, sizeof detail,
                  " differs for the block at EIP %#x (host %u/%u bytes, guest %u/%u bytes, %u/%u insns)", fresh.key.eip,
                  fresh.host_size, relocated.host_size, fresh.guest_size, relocated.guest_size, fresh.guest_insns,
                  relocated.guest_insns);
    return std::string(what) + detail;
  };
  // A block's extent may legitimately differ: a PC thunk whose page was not mapped when
  // the source was translated ended that block at the call; now it is inlined. Both are
  // right; only translations of the same instructions are comparable.
  if (fresh.guest_size != relocated.guest_size || fresh.guest_insns != relocated.guest_insns) return {};
  if (fresh.host_size != relocated.host_size || fresh.placed_size != relocated.placed_size) return say("host size");
  if (fresh.exits.size() != relocated.exits.size() || fresh.callouts.size() != relocated.callouts.size() ||
      fresh.stub_exits != relocated.stub_exits) {
    return say("exit or callout count");
  }
  if (fresh.fixups.size() != relocated.fixups.size()) return say("fixup count");
  for (size_t i = 0; i < fresh.exits.size(); ++i) {
    if (fresh.exits[i]->target_eip != relocated.exits[i]->target_eip ||
        fresh.exits[i]->kind != relocated.exits[i]->kind) {
      return say("an exit");
    }
  }
  for (size_t i = 0; i < fresh.callouts.size(); ++i) {
    if (fresh.callouts[i]->eip != relocated.callouts[i]->eip ||
        fresh.callouts[i]->next_eip != relocated.callouts[i]->next_eip ||
        fresh.callouts[i]->insns_after != relocated.callouts[i]->insns_after) {
      return say("a callout site");
    }
  }
  if (fresh.pc_map.size() != relocated.pc_map.size()) return say("the pc map");
  for (size_t i = 0; i < fresh.pc_map.size(); ++i) {
    if (fresh.pc_map[i].guest_eip != relocated.pc_map[i].guest_eip ||
        fresh.pc_map[i].host_offset != relocated.pc_map[i].host_offset) {
      return say("the pc map");
    }
  }
  // The code, but for the fields that hold host addresses (pointers, rel32 to trampolines).
  std::vector<uint8_t> a(fresh.host_code, fresh.host_code + fresh.host_size);
  std::vector<uint8_t> b(relocated.host_code, relocated.host_code + relocated.host_size);
  for (size_t i = 0; i < fresh.fixups.size(); ++i) {
    const CodeFixup& f = fresh.fixups[i];
    const CodeFixup& g = relocated.fixups[i];
    if (f.end != g.end || f.kind != g.kind || f.index != g.index) return say("a fixup");
    const bool host_address = f.width() == 8 || f.kind == CodeFixup::Kind::HostTarget;
    if (host_address && f.end <= a.size()) {
      std::memset(a.data() + f.end - f.width(), 0, f.width());
      std::memset(b.data() + f.end - f.width(), 0, f.width());
    }
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return say(("host code byte " + std::to_string(i)).c_str());
  }
  return {};
}

}  // namespace vmm86
