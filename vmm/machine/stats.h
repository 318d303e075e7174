// The statistics of a run, listed once (STYLE.md #12): every value --stats prints, with its
// key, its words in the text and where it comes from. Machine::collect_stats() reads the
// sources into Stat values; print_stats_text() lays them out as --stats shows them; a
// machine-readable view (QMP's query-vmm86-stats) would walk the same values by key.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vmm/machine/config.h"

namespace vmm86 {

/// When a line of --stats (and its values) exists.
enum class StatWhen : uint8_t {
  Always,
  Bt,                   ///< the BT engine runs
  Verifier,             ///< --verify
  TranslatedBelowZero,  ///< the translated-code count went negative (an accounting bug)
};

// clang-format off
// The lines of --stats, in order: X(id, label, when). The label starts the line; the header's
// holds the engine name at {}. Labels are 23 columns wide so the values line up.
#define VMM86_STAT_LINES(X)                                                          \
  X(Header,          "\nvmm86 statistics (engine {}", Always)                         \
  X(Instructions,    "  guest instructions   ", Always)                               \
  X(CountBug,        "  (monitor bug: the translated-code count went ", TranslatedBelowZero) \
  X(Interrupts,      "  interrupts delivered ", Always)                               \
  X(Translator,      "  translator           ", Bt)                                   \
  X(Dispatcher,      "  dispatcher           ", Bt)                                   \
  X(DispatcherMore,  "                       ", Bt)                                   \
  X(DispatcherRest,  "                       ", Bt)                                   \
  X(Indirect,        "  indirect branches    ", Bt)                                   \
  X(InterpretedTop,  "  interpreted (top)   ", Bt)                                    \
  X(Callouts,        "  callouts             ", Bt)                                   \
  X(HostFaults,      "  host faults          ", Bt)                                   \
  X(Verify,          "  verify               ", Verifier)                             \
  X(ShadowMmu,       "  shadow MMU           ", Bt)                                   \
  X(ShadowMmuSpaces, "                       ", Bt)                                   \
  X(ShadowMmuHost,   "                       ", Bt)                                   \
  X(Devices,         "  devices             ", Always)

// Every statistic, in the order --stats prints it: X(line, key, text, value). `text` is its
// part of the line, {} standing for the value (fmt syntax); `value` is an expression over
// the sources Machine::collect_stats() names (m: the machine, t: translator stats, e: engine
// stats, f: host-fault stats, v: verifier stats, s: shadow-MMU stats, with derived counts).
// A list value (mnemonic counts) prints as " MNEMONIC=count" for its twelve largest.
// The devices' own counters follow the Devices line, from PcPlatformStats::for_each.
#define VMM86_STATS(X)                                                                                     \
  X(Header, "wall_seconds", ", {:.2f} s wall", m.wall_seconds)                                             \
  X(Header, "idle_seconds", ", {:.2f} s idle in hlt)", m.idle_seconds)                                      \
  X(Instructions, "instructions", "{}", m.instructions)                                                    \
  X(Instructions, "instructions.translated", ": translated {}", m.translated)                              \
  X(Instructions, "instructions.translated_percent", " ({:.2f}%)", m.translated_percent)                   \
  X(Instructions, "instructions.interpreted", ", interpreted {}", m.interpreted)                           \
  X(Instructions, "instructions.interpreted_percent", " ({:.2f}%)", m.interpreted_percent)                 \
  X(CountBug, "instructions.translated_deficit", "{} below zero; shown as 0)", m.translated_deficit)       \
  X(Interrupts, "interrupts.delivered", "{}", m.interrupts_delivered)                                      \
  X(Interrupts, "interrupts.held", " (held back for guest progress {})", m.interrupts_held)                \
  X(Interrupts, "machine.reboots", ", guest reboots {}", m.reboots)                                         \
  X(Translator, "translator.blocks", "blocks {}", t->blocks_translated)                                    \
  X(Translator, "translator.blocks_relocated", " (+{} copied from another EIP)", t->blocks_relocated)      \
  X(Translator, "translator.guest_insns", ", guest insns {}", t->guest_insns_translated)                  \
  X(Translator, "code_cache.used_kib", ", cache {}", m.cache_used_kib)                                     \
  X(Translator, "code_cache.capacity_kib", "/{} KiB", m.cache_capacity_kib)                                \
  X(Translator, "code_cache.flushes", ", flushes {}", m.cache_flushes)                                     \
  X(Translator, "translator.chains", ", chains {}", t->chains)                                             \
  X(Translator, "translator.invalidated_blocks", ", invalidated blocks {}", t->invalidated_blocks)        \
  X(Dispatcher, "dispatcher.entries", "entries {}", e->dispatches)                                         \
  X(Dispatcher, "exits.direct", "; exits: direct {}", e->exits_direct)                                     \
  X(Dispatcher, "exits.indirect_miss", ", indirect-miss {}", e->exits_indirect)                            \
  X(Dispatcher, "exits.interpret", ", interpret {}", e->exits_interpret)                                   \
  X(Dispatcher, "exits.fault", ", fault {}", e->exits_fault)                                               \
  X(Dispatcher, "exits.poll", ", poll {}", e->exits_poll)                                                  \
  X(Dispatcher, "dispatcher.interpreted_after_mmio", "; interpreted after an MMIO exit {}",                  \
    e->interpreted_after_mmio)                                                                             \
  X(Dispatcher, "dispatcher.untranslatable_block_starts", "; untranslatable block starts {}",               \
    e->interpreted_at_block_start)                                                                         \
  X(Dispatcher, "dispatcher.gs_switches", "; GS switches {}", e->gs_switches)                              \
  X(DispatcherMore, "dispatcher.inline_table_entries", "entries found in the inline table {}",             \
    e->table_dispatches)                                                                                   \
  X(DispatcherMore, "exits.code_tlb_miss", "; code TLB misses {}", e->exits_code_tlb)                      \
  X(DispatcherMore, "code_tlb.fills", " (fills {})", m.code_tlb_fills)                                     \
  X(DispatcherMore, "dispatcher.refills", "; window pages filled after a guest #PF {}", e->refills)         \
  X(DispatcherRest, "exits.callout", "callout exits {}", e->exits_callout)                                 \
  X(DispatcherRest, "dispatcher.interpreted_in_shadow", ", interpreted in an interrupt shadow {}",          \
    e->interpreted_in_shadow)                                                                              \
  X(DispatcherRest, "dispatcher.volatile_pages", ", code pages checked at block entry {}", e->volatile_pages) \
  X(DispatcherRest, "dispatcher.probations_ended", " (protected again {})", e->probations_ended)           \
  X(DispatcherRest, "exits.stale", " (stale blocks found {})", e->exits_stale)                             \
  X(Indirect, "indirect.lookups", "{} inline lookups: ", m.indirect_lookups)                               \
  X(Indirect, "indirect.hits", "{} hits", m.indirect_hits)                                                 \
  X(Indirect, "indirect.hit_percent", " ({:.2f}%)", m.indirect_hit_percent)                                \
  X(Indirect, "indirect.misses", ", {} misses", e->exits_indirect)                                         \
  X(Indirect, "indirect.return_misses", "; guest rets not predicted by the return stack {}",                \
    m.return_misses)                                                                                       \
  X(InterpretedTop, "interpreted_by_mnemonic", "{}", &e->interpreted_by_mnemonic)                          \
  X(Callouts, "callouts.instructions", "{} instructions run in place from translated code", e->callouts)  \
  X(Callouts, "callouts.sites", " ({} sites); top:", t->callout_sites)                                     \
  X(Callouts, "callouts_by_mnemonic", "{}", &e->callouts_by_mnemonic)                                      \
  X(HostFaults, "faults.window_fills", "window fills {}", f->fills)                                        \
  X(HostFaults, "faults.polls", ", polls {}", f->polls)                                                    \
  X(HostFaults, "faults.return_stack_resets", ", return-stack resets {}", f->return_stack_resets)          \
  X(HostFaults, "faults.to_interpreter", ", to interpreter {}", f->redirected)                             \
  X(HostFaults, "faults.guest_page_faults", " (guest #PF {}", f->page_faults)                              \
  X(HostFaults, "faults.mmio", ", MMIO {}", f->mmio)                                                       \
  X(HostFaults, "faults.code_writes", ", code writes {}", f->code_writes)                                  \
  X(HostFaults, "faults.other", ", other {})", f->other)                                                   \
  X(HostFaults, "faults.string_stops", "; host string instructions stopped by the timer {}", f->string_stops) \
  X(Verify, "verify.sampled", "block entries sampled {}", v->sampled)                                      \
  X(Verify, "verify.agreed", ": agreed {}", v->compared)                                                   \
  X(Verify, "verify.inconclusive",                                                                         \
    ", inconclusive {} (a device, the TSC or an MSR write in the shadow run)", v->inconclusive)            \
  X(ShadowMmu, "mmu.fills", "fills {}", s->fills)                                                          \
  X(ShadowMmu, "mmu.pages_mapped", ", pages mapped {}", s->pages_mapped)                                   \
  X(ShadowMmu, "mmu.flushes", ", flushes {}", s->flushes)                                                  \
  X(ShadowMmu, "mmu.global_flushes", " (+{} full)", s->global_flushes)                                     \
  X(ShadowMmu, "mmu.invlpgs", ", invlpg {}", s->invlpgs)                                                   \
  X(ShadowMmu, "mmu.fill_seconds", ", fill time {:.3f} s", m.mmu_fill_seconds)                             \
  X(ShadowMmu, "mmu.host_map_calls", ", host map calls {}", m.mmu_host_map_calls)                          \
  X(ShadowMmuSpaces, "mmu.space_reuses", "CR3 switches back to a kept address space {}", s->space_reuses)  \
  X(ShadowMmuSpaces, "mmu.space_assignments", ", to a new one {}", s->space_assignments)                    \
  X(ShadowMmuSpaces, "mmu.revalidated_kept", "; revalidated pages kept {}", s->revalidated_kept)           \
  X(ShadowMmuSpaces, "mmu.revalidated_protected", " ({} made read-only)", s->revalidated_protected)         \
  X(ShadowMmuSpaces, "mmu.revalidated_remapped", ", moved to a new frame {}", s->revalidated_remapped)      \
  X(ShadowMmuSpaces, "mmu.revalidated_dropped", ", dropped {}", s->revalidated_dropped)                    \
  X(ShadowMmuHost, "mmu.host_mappings", "host mappings now {} (at most)", m.mmu_host_mappings)              \
  X(ShadowMmuHost, "mmu.vma_recounts", ", exact recounts {}", s->vma_recounts)                             \
  X(ShadowMmuHost, "mmu.evictions", ", windows emptied for the mapping budget {}", s->evictions)            \
  X(ShadowMmuHost, "mmu.map_failures", ", mappings refused {}", s->map_failures)
// clang-format on

enum class StatLine : uint8_t {
#define VMM86_X(id, label, when) id,
  VMM86_STAT_LINES(VMM86_X)
#undef VMM86_X
};

struct StatLineSpec {
  std::string_view label;
  StatWhen when;
};

inline constexpr StatLineSpec kStatLines[] = {
#define VMM86_X(id, label, when) {label, StatWhen::when},
    VMM86_STAT_LINES(VMM86_X)
#undef VMM86_X
};

/// Counts per Zydis mnemonic (an engine's interpreted or callout instructions).
struct MnemonicCounts {
  std::vector<std::pair<std::string_view, uint64_t>> top;  ///< the largest first, at most 12
};

/// One statistic of a run.
struct Stat {
  StatLine line;
  std::string key;   ///< "exits.poll"; device counters "devices.port_accesses.pit"
  std::string text;  ///< its words in --stats, {} for the value
  std::variant<uint64_t, double, MnemonicCounts> value;
  bool hidden_when_zero = false;  ///< device counters: --stats leaves out those that stayed 0
};

/// The --stats text (what Machine::print_stats writes).
void print_stats_text(std::FILE* out, Engine engine, const std::vector<Stat>& stats);

}  // namespace vmm86
