// Test support for the BT engine: a bare IA-32 machine (guest RAM, GDT, IDT, TSS, 4 KiB
// page tables) whose code runs through BtEngine — translated code, the interpreter as its
// slow path, the shadow MMU and the host fault handler — plus a ring-0 exception handler
// that records the exception frame and the registers, and helpers to assemble 32-bit guest
// code with asmjit. Tests state guest programs and check architectural results.
#pragma once

#include <asmjit/x86.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shadow-mmu/shadow_mmu.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::bttest {

// Guest-physical layout. The identity map covers the first kIdentityBytes; everything in it
// is user-accessible and writable, except the system pages below 64 KiB and from kTablePool
// to the end of the handlers, which are supervisor-only. [0x10000, 0x61000) is left to the
// differential programs (tests/differential/harness.h).
inline constexpr uint32_t kGdt = 0x1000;
inline constexpr uint32_t kIdt = 0x2000;
inline constexpr uint32_t kTss = 0x3000;
inline constexpr uint32_t kRecords = 0x4000;      ///< ExceptionRecord[kMaxRecords]
inline constexpr uint32_t kRecordCount = 0x4FF0;  ///< dword: records written so far
inline constexpr uint32_t kFixPteAddr = 0x4FF4;   ///< dword: PTE the FixPte action writes ...
inline constexpr uint32_t kFixPteValue = 0x4FF8;  ///< ... and the value it writes there
inline constexpr uint32_t kActions = 0x5000;      ///< dword[kStubVectors]: HandlerAction per vector
inline constexpr uint32_t kScratch = 0x5100;      ///< free dwords for test handlers
inline constexpr uint32_t kRing0StackTop = 0x9000;
inline constexpr uint32_t kTablePool = 0x80000;  ///< page tables and directories are taken from here
inline constexpr uint32_t kTablePoolEnd = 0xA0000;
inline constexpr uint32_t kPageDir = kTablePool;       ///< the identity address space (first from the pool)
inline constexpr uint32_t kHandlers = 0xA0000;         ///< the exception stubs and their common part
inline constexpr uint32_t kHandlersStubEnd = 0xA0800;  ///< tests may put their own handlers after it
inline constexpr uint32_t kHandlersEnd = 0xA1000;
/// Vectors whose IDT gates lead to the recording stubs: the exceptions and 16 IRQ vectors.
inline constexpr unsigned kStubVectors = 48;
inline constexpr uint32_t kCode = 0x100000;      ///< test code
inline constexpr uint32_t kData = 0x200000;      ///< test data
inline constexpr uint32_t kStackTop = 0x300000;  ///< the test's own stack (ring 0 or 3)
inline constexpr uint32_t kIdentityBytes = 8u << 20;
inline constexpr uint64_t kRamBytes = 16u << 20;
inline constexpr uint32_t kMaxRecords = 48;
/// `out kIrqPort, al` asserts INTR with vector AL (a device the guest itself triggers).
inline constexpr uint16_t kIrqPort = 0xE0;
/// Where BtMachine::install_service puts a test's ring-0 service by default: `int 0x80`,
/// code right after the recording stubs.
inline constexpr uint8_t kServiceVector = 0x80;
inline constexpr uint32_t kService = kHandlersStubEnd;

// GDT selectors.
inline constexpr uint16_t kKernelCs = 0x08, kKernelDs = 0x10, kUserCs = 0x1B, kUserDs = 0x23, kTssSel = 0x28,
                          kUserFs = 0x33;

// PTE/PDE bits.
inline constexpr uint32_t kPresent = 1, kWritable = 2, kUser = 4;
inline constexpr uint32_t kUserRw = kPresent | kWritable | kUser;

/// What the common handler does after recording (kActions[vector]).
enum class HandlerAction : uint32_t {
  Halt = 0,    ///< hlt forever (the run ends with the handler's state)
  FixPte = 1,  ///< store kFixPteValue at kFixPteAddr, then iret (retry the instruction)
};

/// What the common handler stores per exception, in order.
struct ExceptionRecord {
  uint32_t vector, error, eip, cs, eflags;
  uint32_t outer_esp, outer_ss;  ///< meaningful only for exceptions from ring 3
  uint32_t cr2;
  uint32_t edi, esi, ebp, handler_esp, ebx, edx, ecx, eax;  ///< pushad order, at the exception
};
static_assert(sizeof(ExceptionRecord) == 64);

/// Emits guest code into an assembler (a program, a part of one, a handler's body).
using Emit = std::function<void(asmjit::x86::Assembler&)>;

/// CR3 ^= kPageDir ^ `other`: switches between the identity space and `other` (clobbers EAX).
void emit_toggle_cr3(asmjit::x86::Assembler& a, uint32_t other);

/// 32-bit guest code assembled with asmjit for a fixed guest address.
class GuestCode {
 public:
  explicit GuestCode(uint32_t base);
  GuestCode(const GuestCode&) = delete;
  GuestCode& operator=(const GuestCode&) = delete;

  [[nodiscard]] asmjit::x86::Assembler& a() { return assembler_; }
  [[nodiscard]] uint32_t base() const { return base_; }
  /// Resolves labels and relocations; returns the bytes. Call once, after the last emit.
  const std::vector<uint8_t>& finish();
  /// Guest address of a bound label (after finish()).
  [[nodiscard]] uint32_t addr(const asmjit::Label& label) const;
  [[nodiscard]] const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  uint32_t base_;
  asmjit::CodeHolder code_;
  asmjit::x86::Assembler assembler_;
  std::vector<uint8_t> bytes_;
  bool finished_ = false;
};

/// Why a run ended.
enum class RunEnd : uint8_t { Halted, TripleFault, Unimplemented, Timeout };
[[nodiscard]] const char* to_string(RunEnd e);
/// Vectors for which the CPU pushes an error code.
[[nodiscard]] bool has_error_code(unsigned vector);

/// A bare machine driven by BtEngine (or, for reference runs, by the interpreter alone).
class BtMachine final : public CpuHooks {
 public:
  explicit BtMachine(size_t code_cache_bytes = 4u << 20);
  ~BtMachine() override;
  BtMachine(const BtMachine&) = delete;
  BtMachine& operator=(const BtMachine&) = delete;

  // ---- guest memory (physical) ----
  void poke(uint32_t phys, const void* bytes, size_t size);
  void poke32(uint32_t phys, uint32_t value);
  [[nodiscard]] uint32_t peek32(uint32_t phys) const;
  [[nodiscard]] uint8_t peek8(uint32_t phys) const;
  /// Loads finished code at its base (identity: physical = linear) or at `phys`.
  void load(GuestCode& code);
  void load_at(GuestCode& code, uint32_t phys);
  /// The i-th record written by the common exception handler.
  [[nodiscard]] ExceptionRecord record(uint32_t i) const;
  [[nodiscard]] uint32_t record_count() const { return peek32(kRecordCount); }

  // ---- paging ----
  /// A fresh, empty page directory from the table pool.
  [[nodiscard]] uint32_t new_directory();
  /// Maps one 4 KiB page in `dir` (allocating its page table when needed).
  void map_page(uint32_t dir, uint32_t linear, uint32_t phys, uint32_t flags);
  /// Identity-maps [0, bytes) in `dir` with `flags`.
  void identity_map(uint32_t dir, uint32_t bytes, uint32_t flags);
  /// Guest-physical address of the PTE of `linear` in `dir` (its table must exist).
  [[nodiscard]] uint32_t pte_addr(uint32_t dir, uint32_t linear) const;
  void set_pte(uint32_t dir, uint32_t linear, uint32_t value) { poke32(pte_addr(dir, linear), value); }
  /// A second address space: a fresh directory whose PDEs share the identity map's page
  /// tables (system pages stay supervisor-only; a PTE changed below kIdentityBytes changes
  /// both spaces); nothing mapped above them.
  [[nodiscard]] uint32_t new_identity_directory();
  /// Two address spaces that map `linear` (above the shared tables, kIdentityBytes)
  /// differently: to `frame` in kPageDir and to `other_frame` in a new identity directory
  /// (returned). Installs the service (int kServiceVector) that switches between them.
  uint32_t two_spaces(uint32_t linear, uint32_t frame, uint32_t other_frame);
  /// PAE tables (taken from the pool) that translate as `dir` does now: each present PTE of
  /// `dir` as a 64-bit entry with the same bits, under PDEs with the 32-bit PDE's bits.
  /// Returns the PDPT (CR3 with CR4.PAE). `dir` must hold no 4 MiB pages.
  [[nodiscard]] uint32_t pae_mirror(uint32_t dir);
  /// Makes the identity-mapped page of `linear` fault: its PTE becomes `pte` (0: not
  /// present), and the #PF handler records the fault, maps the page back user-writable and
  /// retries the access.
  void make_hole(uint32_t linear, uint32_t pte = 0);

  // ---- interrupts and exceptions ----
  /// IDT gate `vector` -> ring-0 `handler` (interrupt gate, DPL `dpl`).
  void set_gate(uint8_t vector, uint32_t handler, uint8_t dpl = 0);
  /// GDT entry `index` (selector index*8): base, limit (in units of `flags_nibble`.G), access byte.
  void set_descriptor(unsigned index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags_nibble);
  void set_action(uint8_t vector, HandlerAction action) {
    poke32(kActions + 4u * vector, static_cast<uint32_t>(action));
  }
  /// The PTE the FixPte action writes, and its value.
  void set_fix(uint32_t pte_address, uint32_t value);
  /// A ring-0 service at `at`, behind an interrupt gate of DPL 3 (so that CPL 3 may call
  /// it too) at `vector`: `body`, then iretd.
  void install_service(const Emit& body, uint8_t vector = kServiceVector, uint32_t at = kService);
  /// Asserts INTR with `vector` (thread-safe; edge: acknowledge clears it).
  void raise_irq(uint8_t vector);
  /// Steady-clock time of the last INTA cycle.
  std::chrono::steady_clock::time_point acknowledged_at{};
  uint64_t acknowledged = 0;

  // ---- running ----
  /// Points the vCPU at `eip` with `esp` at CPL 0 or 3; paging on (CR3 = kPageDir) or off.
  void start(uint32_t eip, uint32_t esp, bool user, bool paging = true, uint32_t eflags = flags::Reserved1);
  /// Runs BtEngine until the guest halts (or fails, or `limit` of wall time passes). An
  /// Interrupt stop is handed to the interpreter, as the machine's vCPU loop does.
  RunEnd run_bt(std::chrono::milliseconds limit = std::chrono::seconds(20));
  /// Runs the interpreter alone until the guest halts.
  RunEnd run_interp(uint64_t max_instructions = 10'000'000);
  /// Leaves hlt so that a further run continues after it.
  void wake() { ctx_->cpu.halted = false; }
  /// Guest instructions retired so far: in translated code plus in the interpreter.
  [[nodiscard]] uint64_t retired() const { return ctx_->retired + interp_->retired(); }

  [[nodiscard]] CpuState& cpu() { return ctx_->cpu; }
  [[nodiscard]] ExecContext& ctx() { return *ctx_; }
  [[nodiscard]] BtEngine& engine() { return *engine_; }
  [[nodiscard]] Interpreter& interp() { return *interp_; }
  [[nodiscard]] GuestMemory& mem() { return *mem_; }
  [[nodiscard]] const TranslatorStats& tstats() { return engine_->translator().stats(); }
  [[nodiscard]] const std::string& detail() const { return detail_; }

  // ---- CpuHooks ----
  uint32_t port_in(uint16_t, unsigned) override { return 0xFFFFFFFFu; }
  void port_out(uint16_t port, unsigned size, uint32_t value) override;
  uint32_t mmio_read(GuestPhys, unsigned) override { return 0xFFFFFFFFu; }
  void mmio_write(GuestPhys, unsigned, uint32_t) override {}
  CpuidResult cpuid(uint32_t, uint32_t) override { return {}; }
  uint64_t tsc_clock() override { return 0; }
  bool interrupt_pending() override { return irq_pending_.load(std::memory_order_acquire); }
  uint8_t acknowledge_interrupt() override;
  bool is_watched_page(GuestPhys page) override;
  void watched_write(GuestPhys addr, unsigned size) override;
  void paging_written() override;
  void page_invalidated(GuestLinear linear) override;

 private:
  /// The machine's callback: IF=1, no interrupt shadow, INTR asserted (or an NMI that
  /// nothing blocks). Also tells the
  /// engine (cpu.pending.external_interrupt) whether INTR is asserted, as the machine does.
  [[nodiscard]] bool interrupt_deliverable();
  static bool deliverable_thunk(void* self);
  void build_tables();
  void build_handlers();

  std::unique_ptr<GuestMemory> mem_;
  ExecContextPtr ctx_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::unique_ptr<Interpreter> interp_;
  std::unique_ptr<BtEngine> engine_;
  uint32_t next_table_ = kTablePool;
  std::atomic<bool> irq_pending_{false};
  std::atomic<uint8_t> irq_vector_{0};
  std::string detail_;
};

/// Empty when both machines wrote the same exception records; otherwise the differences.
/// The outer ESP/SS are compared only for exceptions from ring 3 (where they exist).
[[nodiscard]] std::string compare_records(const BtMachine& got, const BtMachine& want);

/// The same guest program on the BT engine and on the interpreter alone (the reference).
struct TwoRuns {
  BtMachine bt, ref;
  /// Applies the same setup to both machines.
  void setup(const std::function<void(BtMachine&)>& fn) {
    fn(bt);
    fn(ref);
  }
  /// Runs both until they halt; expects the same exception records, registers, EIP,
  /// interrupts taken and count of retired guest instructions (which checks that the
  /// translated part is counted precisely across faults and early exits), and expects
  /// some of it to have run translated. Use under ASSERT_NO_FATAL_FAILURE.
  void run_and_compare(std::chrono::milliseconds limit = std::chrono::seconds(20));
};

}  // namespace vmm86::bttest
