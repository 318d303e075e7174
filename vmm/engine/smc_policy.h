// Self-modifying code (DESIGN.md §5): a guest-physical page holding translated code is
// write-protected in the shadow windows, so a write to it faults and drops its blocks. A
// page that keeps taking code writes (code and hot data side by side) stops being
// protected: its blocks compare their guest bytes at entry instead of faulting on each write.
// That costs every entry a compare, and such blocks end after each store and cannot call
// out, so it is a probation, not a sentence: after a while (longer each time the page
// goes volatile again) the page is protected again. Most such pages are kernel text that
// boot-time patching (alternatives, static keys) wrote many times and never again.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "shadow-mmu/shadow_mmu.h"
#include "translator/translator.h"
#include "vmm/engine/engine_state.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

class SmcPolicy {
 public:
  SmcPolicy(ShadowMmu& mmu, Translator& translator, Interpreter& interp, BtEngineStats& stats)
      : mmu_(mmu), translator_(translator), interp_(interp), stats_(stats) {}

  /// Code on `phys_page` is being translated. Write-protects the page, or, for a page
  /// that took too many code writes, returns true: its blocks must check their bytes.
  [[nodiscard]] bool watch(PhysPage phys_page);
  /// A write to guest-physical memory made outside translated code (interpreter, devices,
  /// or a code write the fault handler sent to the interpreter): drops the blocks it changed.
  void physical_write(GuestPhys addr, unsigned size);
  /// Another vCPU wrote `page` (SMP): this vCPU's blocks there go, as for its own write.
  void foreign_write(PhysPage page) { drop_code(page); }
  /// Called between blocks with the guest instructions retired so far: pages whose
  /// probation is over drop their checking blocks and are protected again when their code
  /// is next translated.
  /// True when blocks were dropped.
  bool end_probations(uint64_t retired) {
    retired_ = retired;
    if (next_probation_end_ == 0 || retired < next_probation_end_) return false;
    end_due_probations();
    return true;
  }
  /// The first probation's length in guest instructions (tests shorten it).
  void set_probation(uint64_t instructions) { probation_ = instructions; }

 private:
  static constexpr uint32_t kVolatileAfterInvalidations = 8;
  /// A page stays volatile for probation_ guest instructions the first time, doubled
  /// each time it goes volatile again, up to 2^kMaxProbationDoublings times.
  static constexpr uint32_t kMaxProbationDoublings = 8;
  struct Probation {
    uint64_t until = 0;   ///< retired-instruction count at which the page is protected again
    uint32_t rounds = 0;  ///< times the page went volatile
  };
  void end_due_probations();
  /// This vCPU's blocks on `page` go (a write changed it); a page written too often goes
  /// volatile.
  void drop_code(PhysPage page);
  ShadowMmu& mmu_;
  Translator& translator_;
  Interpreter& interp_;
  BtEngineStats& stats_;
  std::unordered_map<uint64_t, uint32_t> code_write_invalidations_;  ///< per PhysPage::value
  std::unordered_map<uint64_t, Probation> probations_;               ///< every page that went volatile
  std::unordered_set<uint64_t> volatile_pages_;                      ///< PhysPage::value
  uint64_t probation_ = uint64_t{1} << 28;                           ///< ~0.1 s of guest time
  uint64_t retired_ = 0;                                             ///< as of the last end_probations()
  uint64_t next_probation_end_ = 0;  ///< the earliest `until` of a volatile page (0: none)
};

}  // namespace vmm86
