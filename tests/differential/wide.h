// The wide differential test (issue 14, point 3): programs drawn from the whole guest ISA
// that decoder/classify.cpp accepts, run on a bare machine (tests/support/bt_machine.h)
// by the interpreter alone and by the BT engine, from the same random machine state:
// CPL 0 or 3, paging on (32-bit or PAE) or off, CR0.TS/EM/MP and CR4.OSFXSR/OSXMMEXCPT, segments with
// non-zero bases, small limits, read-only, expand-down and code types, random x87/MMX/SSE
// state, a pending interrupt. Exceptions end the run in a per-vector `hlt` stub (the frame
// stays on the stack, compared with the rest of memory); interrupt vectors 0x20-0x2F iret.
//
// The instruction forms are not a hand list: forms() decodes every opcode × ModRM × SIB ×
// prefix combination with the project's Decoder and keeps one encoding per (mnemonic,
// operand kinds, prefixes) that the table classifies. A unit of a program is one such
// form with its operands made meaningful: memory operands aimed at compared memory through
// whatever segment they use, branch targets inside the program, selectors from the GDT
// the program set up, control-register values that keep the machine running.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/bt_machine.h"

namespace vmm86::difftest::wide {

inline constexpr uint32_t kCode = bttest::kCode;
inline constexpr uint32_t kData = bttest::kData;
inline constexpr uint32_t kDataBytes = 0x4000;
/// Below 64 KiB, for 16-bit addressing through flat segments (supervisor-only pages).
inline constexpr uint32_t kLowData = 0x6000;
inline constexpr uint32_t kLowDataBytes = 0x2000;
inline constexpr uint32_t kStackTop = bttest::kStackTop;
inline constexpr uint32_t kStackBytes = 0x2000;  ///< compared below kStackTop
/// Per-vector handler stubs (after the fixture's own recording stubs, which this test
/// does not use: they address the records through DS, which a program may have moved).
inline constexpr uint32_t kStubs = bttest::kHandlersStubEnd;
inline constexpr uint32_t kStubBytes = 4;
/// GDT entries each program defines: kPoolFirst .. kPoolFirst + kPoolCount - 1.
inline constexpr unsigned kPoolFirst = 8;
inline constexpr unsigned kPoolCount = 12;
inline constexpr uint16_t kGdtLimit = 32 * 8 - 1;
/// The page table of linear 0..4 MiB (the first one BtMachine takes after the directory).
inline constexpr uint32_t kFirstPageTable = bttest::kPageDir + 0x1000;
/// PAE programs: the PDPT of BtMachine::pae_mirror of the identity space (the next pool page
/// after its directory and two tables), then its directory and four page tables.
inline constexpr uint32_t kPaePdpt = bttest::kPageDir + 0x3000;
inline constexpr uint32_t kPaeTablesBytes = 6 * 0x1000;

/// One instruction form: an encoding that stands for all encodings with the same key.
struct Form {
  std::vector<uint8_t> bytes;  ///< a complete encoding (immediates/displacements are re-drawn)
  std::string key;             ///< mnemonic, operand kinds, prefixes
  std::string mnemonic;
};

/// Every form of every table row, in a stable order (computed once).
[[nodiscard]] const std::vector<Form>& forms();

/// A GDT entry as set_descriptor takes it.
struct Descriptor {
  uint32_t base = 0, limit = 0;
  uint8_t access = 0, flags = 0;  ///< access byte; G, D/B, L, AVL nibble
};

/// The machine state a program starts from.
struct Setup {
  bool user = false;
  bool paging = false;
  bool pae = false;       ///< with paging: PAE tables that translate as the identity space does
  uint32_t cr0_bits = 0;  ///< TS, EM, MP on top of what BtMachine::start sets
  uint32_t cr4 = 0;
  uint32_t eflags = 0;
  std::array<uint32_t, 8> gpr{};
  std::array<Descriptor, kPoolCount> pool{};
  std::array<int, 6> seg{};  ///< pool index per segment register (CS: -1, the machine's)
  std::array<uint8_t, 512> fxsave{};
  std::vector<uint8_t> data, low_data;
  int irq_vector = -1;  ///< raised before the start (delivered once IF allows)
  /// IA32_TSC's offset. Non-zero, rdtsc reads the harness's fixed clock plus it in both
  /// engines (translated code exits for it); zero, translated code reads the host TSC.
  uint64_t tsc_offset = 0;
};

/// One instruction of a program: a form, instantiated with its own seed.
struct Unit {
  uint32_t form = 0;
  uint64_t seed = 0;
};

struct Program {
  uint64_t seed = 0;
  Setup setup;
  std::vector<Unit> units;
  // Built by build():
  std::vector<uint8_t> code;
  std::vector<std::string> listing;
  std::vector<uint32_t> unit_addr;  ///< where each unit's own instruction starts
};

/// Random state and `length` units drawn from all forms.
[[nodiscard]] Program random_program(uint64_t seed, int length);
/// Random state and one unit of `form` (the coverage mode).
[[nodiscard]] Program form_program(uint32_t form, uint64_t seed);
/// What a hostile program (bench/fuzz) is made of.
enum class Hostile : uint8_t {
  RandomBytes,  ///< random bytes (then hlt)
  RandomForms,  ///< random encodings of any form, immediates/displacements random, no aiming
  Mixed,        ///< aimed units and raw random forms interleaved
};
/// A ring-0 program for the hostile fuzzer: random machine state (paging on or off, SSE on
/// or off through CR4.OSFXSR and CR0.EM/TS), and code that nothing has made sane.
[[nodiscard]] Program hostile_program(uint64_t seed, Hostile kind);

/// False for forms the differential test leaves out (16-bit branches: their targets
/// truncate into the system area); the hostile fuzzer runs them.
[[nodiscard]] bool form_usable(uint32_t form);
/// (Re)instantiates the units into code and listing.
void build(Program& p);

/// What one engine left behind.
struct Outcome {
  bttest::RunEnd end = bttest::RunEnd::Halted;
  std::string detail;
  CpuState cpu{};
  std::vector<uint8_t> memory;  ///< the compared regions, concatenated
  uint64_t acknowledged = 0;
  uint64_t translated = 0;  ///< guest instructions retired in translated code (bt only)
  int vector = -1;          ///< the exception the run ended in (-1: none)
  uint32_t fault_eip = 0;   ///< its frame's EIP
  /// Instructions with an SDM-undefined outcome (Interpreter::undefined_results; reference
  /// run only).
  uint64_t undefined_results = 0;
  /// Flags the SDM leaves undefined at the end (Interpreter::undefined_flags; reference run).
  uint32_t undefined_flags = 0;
};

struct Verdict {
  Outcome ref, bt;
  std::string diff;   ///< empty when the engines agree
  bool hang = false;  ///< the interpreter halted, the BT engine ran out of time
};

/// Runs `p` on both engines and compares.
[[nodiscard]] Verdict run(const Program& p);

/// True when the engines differ only in arithmetic status flags (in EFLAGS and in the
/// EFLAGS image of an exception frame). Code the generator did not make (the hostile
/// fuzzer's) leaves flags the SDM calls undefined; those may legally differ.
[[nodiscard]] bool differs_only_in_status_flags(const Program& p, const Verdict& v);

/// True when the difference is the SDM's to allow: the reference run read a flag the SDM
/// left undefined (its outcome is then undefined too), or the engines differ only in flags
/// undefined at the end (in EFLAGS and in an exception frame's image of it).
[[nodiscard]] bool sdm_undefined(const Program& p, const Verdict& v);

/// True when both runs ended in #PF (or in a triple fault at the same CR2, the #PF's delivery
/// having failed) and differ only in accessed bits of paging entries:
/// which operand of a two-operand access (cmps, movs, a page-straddling one) the CPU
/// translates first is not architectural, so a #PF on one may or may not leave the other's
/// page marked accessed.
[[nodiscard]] bool differs_only_in_accessed_bits(const Program& p, const Verdict& v);

/// Drops units while the divergence stays (same kind of difference); returns the smallest.
[[nodiscard]] Program minimize(const Program& p, const Verdict& v);

/// Drops units while the program still takes the monitor down (each trial in a child).
[[nodiscard]] Program minimize_crash(const Program& p);

/// A short name for a divergence: the mnemonic of the unit it comes down to and what of
/// the state matters ("fnstenv|mem", "mov|seg:fs|cpl0", ...). Keys the known list.
[[nodiscard]] std::string divergence_class(const Program& minimal, const Verdict& v);

/// The known-divergence entry that covers `cls` (its reason), or nullptr.
[[nodiscard]] const char* known_divergence(const std::string& cls);

/// The reference run of `p`, one line per interpreter step (EIP, EFLAGS, general
/// registers), for reading a divergence instruction by instruction.
[[nodiscard]] std::string trace_reference(const Program& p, int max_steps = 200);

/// Human-readable program: state, code bytes, listing.
[[nodiscard]] std::string describe(const Program& p);

}  // namespace vmm86::difftest::wide
