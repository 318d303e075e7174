#include "translator/code_cache.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmm86 {

CodeCache::CodeCache(size_t arena_bytes) : asked_(arena_bytes) {
  // W^X: one memfd mapped twice, executable for running and writable for the translator,
  // so that no guest-reachable bug can write code through the executable view. Within
  // ±2 GiB of itself so blocks reach each other and the trampolines with rel32.
  auto failed = [this](const char* call) { failure_ = std::string(call) + ": " + std::strerror(errno); };
  const int fd = static_cast<int>(syscall(SYS_memfd_create, "vmm86-code-cache", MFD_CLOEXEC));
  if (fd < 0) {
    failed("memfd_create");
    return;
  }
  if (ftruncate(fd, static_cast<off_t>(arena_bytes)) == 0) {
    void* exec = mmap(nullptr, arena_bytes, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (exec == MAP_FAILED) failed("mmap of the executable view");
    void* rw = mmap(nullptr, arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED && exec != MAP_FAILED) failed("mmap of the writable view");
    if (exec != MAP_FAILED && rw != MAP_FAILED) {
      arena_ = static_cast<uint8_t*>(exec);
      writable_ = static_cast<uint8_t*>(rw);
      size_ = arena_bytes;
    } else {
      if (exec != MAP_FAILED) munmap(exec, arena_bytes);
      if (rw != MAP_FAILED) munmap(rw, arena_bytes);
    }
  } else {
    failed("ftruncate");
  }
  close(fd);
}

CodeCache::~CodeCache() {
  if (arena_) munmap(arena_, size_);
  if (writable_) munmap(writable_, size_);
}

uint8_t* CodeCache::allocate(size_t bytes) {
  const size_t aligned = (bytes + 15) & ~size_t{15};
  if (!arena_ || aligned > size_ - used_) return nullptr;
  uint8_t* p = arena_ + used_;
  used_ += aligned;
  return p;
}

Block* CodeCache::find(const BlockKey& key) const {
  auto it = blocks_.find(key);
  return it == blocks_.end() ? nullptr : it->second.get();
}

Block* CodeCache::insert(std::unique_ptr<Block> block) {
  Block* b = block.get();
  page_index_[b->first_page.value].push_back(b);
  if (b->last_page != b->first_page) page_index_[b->last_page.value].push_back(b);
  by_address_.push_back(b);
  auto [it, inserted] = blocks_.insert_or_assign(b->key, std::move(block));
  (void)it;
  (void)inserted;
  return b;
}

void CodeCache::write_rel32(uint8_t* rel32, const uint8_t* target) {
  const int64_t delta = target - (rel32 + 4);
  const auto d = static_cast<int32_t>(delta);
  std::memcpy(writable(rel32), &d, 4);
}

bool CodeCache::chain(ExitRecord* exit, Block* target, const uint8_t* entry) {
  if (!exit->patch_rel32 || exit->chained_to || !target->valid) return false;
  write_rel32(exit->patch_rel32, entry);
  exit->chained_to = target;
  target->incoming.push_back(exit);
  return true;
}

void CodeCache::unchain(ExitRecord* exit) {
  if (!exit->chained_to) return;
  write_rel32(exit->patch_rel32, exit->stub);
  auto& in = exit->chained_to->incoming;
  in.erase(std::remove(in.begin(), in.end(), exit), in.end());
  exit->chained_to = nullptr;
}

void CodeCache::drop(Block* block) {
  // Whoever jumps here must go back to the dispatcher; what this block jumps to forgets it.
  for (ExitRecord* in : std::vector<ExitRecord*>(block->incoming)) unchain(in);
  for (auto& exit : block->exits) unchain(exit.get());
  for (const PhysPage page : {block->first_page, block->last_page}) {
    auto it = page_index_.find(page.value);
    if (it == page_index_.end()) continue;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), block), v.end());
    if (v.empty()) page_index_.erase(it);
  }
  by_address_.erase(std::remove(by_address_.begin(), by_address_.end(), block), by_address_.end());
  block->valid = false;
  // The code bytes stay in the arena until the next flush: a thread may still be inside.
  // The Block itself waits for reclaim(): whoever is running it may still read it.
  auto it = blocks_.find(block->key);
  if (it != blocks_.end() && it->second.get() == block) {
    retired_.push_back(std::move(it->second));
    blocks_.erase(it);
  }
}

size_t CodeCache::invalidate_page(PhysPage phys_page) {
  auto it = page_index_.find(phys_page.value);
  if (it == page_index_.end()) return 0;
  std::vector<Block*> victims = it->second;
  for (Block* b : victims) drop(b);
  return victims.size();
}

void CodeCache::flush() {
  for (auto& [key, block] : blocks_) {
    block->valid = false;
    retired_.push_back(std::move(block));
  }
  blocks_.clear();
  page_index_.clear();
  by_address_.clear();
  used_ = permanent_end_;
  ++flushes_;
}

Block* CodeCache::block_at(const void* host_pc) const {
  auto pc = static_cast<const uint8_t*>(host_pc);
  auto it = std::upper_bound(by_address_.begin(), by_address_.end(), pc,
                             [](const uint8_t* p, const Block* b) { return p < b->host_code; });
  if (it == by_address_.begin()) return nullptr;
  Block* b = *(it - 1);
  return pc < b->host_code + b->host_size ? b : nullptr;
}

}  // namespace vmm86
