// The one coherence point of guest address translation: every change of it (CR0/CR3/CR4
// writes, INVLPG, and page-table writes once they are traced) comes here, and this brings
// every cache of linear -> physical translations in line:
//
//   change                 shadow windows            code TLB                    inline table  interpreter TLB
//   CR0/CR4 paging bits    all dropped               all                         new salt      flushed
//   other CR0/CR4 bits     -                         -                           -             flushed
//   CR3, new value         the space's windows       non-global (+ prefetch)     -             flushed
//   CR3, same value        non-global revalidated    non-global                  -             flushed
//   INVLPG                 the page, every window    the page (4 MiB: all of it) -             the page (4 MiB: all)
//
// The interpreter is the only one that executes INVLPG and CR writes (also for translated
// code, as a callout); it drops its own TLB entries, as a CPU must even with no engine
// attached, then calls CpuHooks, which lead here. Every row updates the interpreter's TLB
// again rather than trusting the origin (both are nearly free when nothing was filled
// since), so whatever reaches this point — an interpreted INVLPG, one from a callout, a
// caller of BtEngine::invlpg — leaves no cache stale. The inline table needs no flush for
// CR3 or INVLPG: its entries are confirmed by the code TLB.
#pragma once

#include <cstdint>

#include "shadow-mmu/shadow_mmu.h"
#include "translator/code_tlb.h"
#include "vmm/engine/code_tlb_prefetch.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

class TranslationCoherence {
 public:
  TranslationCoherence(const CpuState& cpu, ShadowMmu& mmu, CodeTlb& code_tlb, CodeTlbPrefetch& prefetch,
                       Interpreter& interp)
      : cpu_(cpu), mmu_(mmu), code_tlb_(code_tlb), prefetch_(prefetch), interp_(interp) {}

  /// Brings the caches in line with the vCPU's CR0/CR3/CR4 if they changed since they last
  /// were (the dispatcher calls it before every entry: a change made without a hook, such
  /// as a loader setting up paging, is caught there).
  void sync();
  /// The guest wrote CR0/CR3/CR4: a same-value CR3 write still drops the non-global
  /// translations (how Linux flushes its TLB).
  void paging_written();
  /// INVLPG of `linear`.
  void invlpg(GuestLinear linear);
  /// The physical map changed (a range became ROM or RAM): no window mapping, code-TLB
  /// entry or interpreter TLB entry may outlive it.
  void physical_map_changed();

  /// Changes whenever global translations may have changed (paging turned on or off,
  /// PGE/PSE/WP): salts the inline table's keys so that its entries all miss.
  [[nodiscard]] uint32_t global_salt() const { return global_salt_; }

 private:
  const CpuState& cpu_;
  ShadowMmu& mmu_;
  CodeTlb& code_tlb_;
  CodeTlbPrefetch& prefetch_;
  Interpreter& interp_;
  uint32_t global_salt_ = 0x85EBCA6Bu;
};

}  // namespace vmm86
