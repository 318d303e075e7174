// What the BT engine reports: why run() returned and the counters --stats prints. Apart
// from bt_engine.h so that the exit handler and its tests need not see the whole engine.
#pragma once

#include <Zydis/Zydis.h>

#include <array>
#include <cstdint>

namespace vmm86 {

/// Why run() returned.
enum class EngineStop : uint8_t {
  Budget,     ///< the dispatch budget ran out (or a poll exit): let the machine run timers
  Interrupt,  ///< an interrupt is deliverable: the machine lets the interpreter deliver it
  Halted,     ///< the guest executed hlt
  TripleFault,
  Unimplemented,  ///< the interpreter met something it does not implement (see detail)
};

/// Per-engine statistics beyond the translator's own.
struct BtEngineStats {
  uint64_t dispatches = 0;
  uint64_t interpreted = 0;                 ///< instructions run by the interpreter from this engine
  uint64_t interpreted_at_block_start = 0;  ///< ... because the first instruction was untranslatable
  uint64_t exits_direct = 0, exits_indirect = 0, exits_interpret = 0, exits_fault = 0, exits_poll = 0;
  uint64_t exits_callout = 0;
  uint64_t exits_code_tlb = 0;         ///< checked entries the code TLB did not confirm
  uint64_t table_dispatches = 0;       ///< block entries the dispatcher found in the inline table
  uint64_t refills = 0;                ///< pages filled after a guest #PF, before the retry faulted
  uint64_t exits_stale = 0;            ///< blocks found changed by their entry check
  uint64_t volatile_pages = 0;         ///< code pages switched from write protection to entry checks
  uint64_t probations_ended = 0;       ///< ... and switched back (docs/design-notes.md)
  uint64_t interpreted_in_shadow = 0;  ///< instructions interpreted because of an interrupt shadow
  /// Instructions interpreted after an MMIO exit because they touched unmappable memory too
  /// (or were the first that did not).
  uint64_t interpreted_after_mmio = 0;
  uint64_t cache_flushes = 0;
  uint64_t gs_switches = 0;
  /// Instructions the interpreter ran for this engine, by mnemonic (what to translate next).
  std::array<uint64_t, ZYDIS_MNEMONIC_MAX_VALUE + 1> interpreted_by_mnemonic{};
  uint64_t callouts = 0;  ///< instructions run in place by the interpreter from translated code
  std::array<uint64_t, ZYDIS_MNEMONIC_MAX_VALUE + 1> callouts_by_mnemonic{};
};

}  // namespace vmm86
