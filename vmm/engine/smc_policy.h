// Self-modifying code (DESIGN.md §5): a guest-physical page holding translated code is
// write-protected in the shadow windows, so a write to it faults and drops its blocks. A
// page that keeps taking code writes (code and hot data side by side) stops being
// protected: its blocks compare their guest bytes at entry instead of faulting on each write.
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

 private:
  static constexpr uint32_t kVolatileAfterInvalidations = 8;
  ShadowMmu& mmu_;
  Translator& translator_;
  Interpreter& interp_;
  BtEngineStats& stats_;
  std::unordered_map<uint64_t, uint32_t> code_write_invalidations_;  ///< per PhysPage::value
  std::unordered_set<uint64_t> volatile_pages_;                      ///< PhysPage::value
};

}  // namespace vmm86
