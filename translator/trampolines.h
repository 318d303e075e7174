// The trampolines between the monitor and translated code, generated once into the
// permanent part of the code cache: enter (host -> guest state), exit and callout
// (guest state -> the monitor and, for callouts, back), and the return-miss code that
// return prediction falls back to.
#pragma once

#include <cstdint>

#include "translator/code_cache.h"
#include "translator/exec_context.h"

namespace vmm86 {

class Trampolines {
 public:
  Trampolines() = default;
  Trampolines(const Trampolines&) = delete;  // translated code holds the address of return_miss_exit_
  Trampolines& operator=(const Trampolines&) = delete;

  /// Emits them into `cache`; false when it is full. `indirect_index_bits` as the inline
  /// table is indexed (the return-miss code looks targets up there).
  [[nodiscard]] bool generate(CodeCache& cache, ExecContext& ctx, uint32_t indirect_index_bits);

  /// ExitRecord* enter(ExecContext* ctx /*rdi*/, const uint8_t* code /*rsi*/).
  using EnterFn = ExitRecord* (*)(ExecContext*, const uint8_t*);
  [[nodiscard]] EnterFn enter() const { return enter_; }
  /// Entered by a jump with r13 = ExitRecord*: leaves translated code.
  [[nodiscard]] const uint8_t* exit() const { return exit_; }
  /// Entered by a call with r13 = CalloutSite*: runs ExecContext::callout.
  [[nodiscard]] const uint8_t* callout() const { return callout_; }
  /// Where a paired host ret goes when the guest's target is not the call's return address.
  [[nodiscard]] const uint8_t* return_mismatch() const { return return_mismatch_; }

 private:
  [[nodiscard]] bool emit_enter(CodeCache& cache);
  [[nodiscard]] bool emit_exit_and_callout(CodeCache& cache);
  [[nodiscard]] bool emit_return_miss(CodeCache& cache, ExecContext& ctx, uint32_t indirect_index_bits);

  EnterFn enter_ = nullptr;
  uint8_t* exit_ = nullptr;
  uint8_t* callout_ = nullptr;
  const uint8_t* return_mismatch_ = nullptr;
  ExitRecord return_miss_exit_{ExitKind::Indirect};
};

}  // namespace vmm86
