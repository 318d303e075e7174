// The self-checking mode (`vmm86 run --verify`): sampled translated blocks are run a second
// time by the reference interpreter, from the same state, and the two results compared.
//
// Before the dispatcher enters a sampled block, a shadow interpreter runs the block's guest
// instructions on a copy of the vCPU state and a copy-on-write view of guest RAM (so the
// guest sees nothing of it), recording its state after every step and every byte it
// writes. Devices are not touched: a block whose shadow run needs a device, an MSR write,
// the TSC or an interrupt, or that reads a flag an earlier instruction left undefined (the SDM
// lets the engines differ there), is not compared (inconclusive). Then the block runs translated
// as usual, alone (the next block's prologue stops it), and its result is compared with
// the shadow's state after the same number of retired instructions: registers, flags,
// EIP, segment selectors, control registers, the x87/SSE registers, and guest RAM at every
// byte the shadow wrote. The first difference is reported with the block's guest code and
// both states. Bytes the translated code wrote that the interpreter did not are not seen.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "translator/code_cache.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

struct VerifierStats {
  uint64_t sampled = 0;       ///< block entries chosen for verification
  uint64_t compared = 0;      ///< ... whose results were compared (and agreed)
  uint64_t inconclusive = 0;  ///< ... whose shadow run touched a device, the TSC, an MSR, ...
  uint64_t skipped = 0;       ///< ... that cannot run alone (second page, entry checks)
};

class BlockVerifier {
 public:
  /// Samples one block entry in `period` (1: every one).
  BlockVerifier(GuestMemory& mem, CpuHooks& hooks, uint32_t period);
  ~BlockVerifier();
  BlockVerifier(const BlockVerifier&) = delete;
  BlockVerifier& operator=(const BlockVerifier&) = delete;

  /// Makes the copy-on-write view of guest RAM the shadow runs on.
  [[nodiscard]] Status init();
  /// Counts a block entry; true when this one is to be verified.
  [[nodiscard]] bool sample() { return ++entries_ % period_ == 0; }
  /// Whether `block` can be run alone from its first instruction (no checks at entry).
  [[nodiscard]] static bool verifiable(const Block& block) {
    return !block.has_second_page && !block.verifies_code && !block.pc_map.empty();
  }
  /// Runs the shadow interpreter over `block` from `cpu` (the state it is entered with).
  void shadow_run(const CpuState& cpu, const Block& block);
  /// Compares the translated run's result (`cpu`, guest RAM, `retired` guest instructions
  /// since entry) with the shadow's. Empty when they agree (or the shadow run was
  /// inconclusive); otherwise the report.
  [[nodiscard]] std::string compare(const CpuState& cpu, uint64_t retired, const uint8_t* guest_code, size_t code_size);

  [[nodiscard]] const VerifierStats& stats() const { return stats_; }

 private:
  class ShadowHooks;
  struct Snapshot {
    uint64_t retired = 0;
    size_t writes = 0;  ///< entries of writes_ made before it
    /// EFLAGS bits the instructions so far left undefined (the SDM lets engines differ there).
    uint32_t undefined_flags = 0;
    /// The next instruction is a rep string instruction: the translated run may stop
    /// part-way through it (the host timer), in a state the shadow never had.
    bool before_rep_string = false;
    CpuState cpu;
  };
  struct Write {
    uint64_t phys = 0;
    uint8_t value = 0;
  };

  [[nodiscard]] std::string difference(const CpuState& want, const CpuState& got, uint32_t undefined_flags) const;

  GuestMemory& mem_;
  CpuHooks& hooks_;
  uint32_t period_;
  uint64_t entries_ = 0;
  std::optional<GuestMemory> view_;
  std::unique_ptr<ShadowHooks> shadow_hooks_;
  CpuState shadow_cpu_{};
  std::unique_ptr<Interpreter> shadow_;
  std::vector<Snapshot> snapshots_;
  std::vector<Write> writes_;
  bool inconclusive_ = false;
  uint32_t undefined_now_ = 0;  ///< flags left undefined so far in the shadow run
  std::string shadow_events_;   ///< exceptions the shadow delivered (for the report)
  uint32_t block_eip_ = 0;
  VerifierStats stats_;
};

}  // namespace vmm86
