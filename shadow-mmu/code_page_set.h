// Which vCPUs hold translated code on each guest-physical page (docs/design-notes.md,
// "SMP"). Every vCPU has its own code cache and its own shadow windows; a page with code in
// any vCPU's cache must be read-only in every vCPU's windows, so that a write from any of
// them is seen. One set per machine, shared by the vCPUs' shadow MMUs.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "vmm/arch/types.h"

namespace vmm86 {

class ShadowMmu;

class CodePageSet {
 public:
  static constexpr unsigned kMaxCpus = 8;

  /// `ram_pages`: guest RAM in pages (pages above hold ROM or nothing; kept in a map).
  explicit CodePageSet(uint64_t ram_pages);
  CodePageSet(const CodePageSet&) = delete;
  CodePageSet& operator=(const CodePageSet&) = delete;

  /// The shadow MMU of vCPU `cpu`, whose windows protect_everywhere() reaches.
  void attach(unsigned cpu, ShadowMmu* mmu) { mmus_[cpu] = mmu; }

  /// The vCPUs with code on `page` (bit n: vCPU n).
  [[nodiscard]] uint8_t holders(PhysPage page) const {
    const uint64_t p = page.value;
    if (p < ram_pages_) return holders_[p].load(std::memory_order_acquire);
    const std::lock_guard lock(beyond_ram_lock_);
    const auto it = beyond_ram_.find(p);
    return it == beyond_ram_.end() ? 0 : it->second;
  }
  [[nodiscard]] bool any(PhysPage page) const { return holders(page) != 0; }
  [[nodiscard]] bool held_by(PhysPage page, unsigned cpu) const { return (holders(page) >> cpu) & 1; }

  /// vCPU `cpu` now has code on `page`; true if it had none there before.
  bool add(PhysPage page, unsigned cpu);
  /// vCPU `cpu` has no code left on `page`.
  void remove(PhysPage page, unsigned cpu);

  /// After add(): makes `page` read-only in every attached vCPU's windows.
  void protect_everywhere(PhysPage page);
  /// Moves on each protect_everywhere(): caches of "is this page watched" (the interpreters')
  /// made before are stale.
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  /// Called when vCPU `writer` wrote a page on which vCPU `holder` has code: the holder must
  /// drop it before it runs it again (the machine posts it and kicks the holder).
  using ForeignWriteListener = std::function<void(unsigned holder, PhysPage page)>;
  void set_foreign_write_listener(ForeignWriteListener listener) { foreign_write_ = std::move(listener); }
  /// vCPU `writer` wrote `page`: tells every other holder.
  void written_by(PhysPage page, unsigned writer) const;

 private:
  uint64_t ram_pages_;
  std::unique_ptr<std::atomic<uint8_t>[]> holders_;
  mutable std::mutex beyond_ram_lock_;  ///< never taken in the fault path (nothing mapped there)
  std::unordered_map<uint64_t, uint8_t> beyond_ram_;
  std::array<ShadowMmu*, kMaxCpus> mmus_{};
  std::atomic<uint64_t> generation_{0};
  ForeignWriteListener foreign_write_;
};

}  // namespace vmm86
