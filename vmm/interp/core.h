// Internal to vmm/interp: the interpreter's engine. Handlers (one per instruction family,
// in interp_*.cpp) are free functions over Core, found through the one table in
// handler_table.cpp. Nothing outside vmm/interp includes this header.
#pragma once

#include <Zydis/Zydis.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "decoder/decoder.h"
#include "shadow-mmu/page_walker.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/interp/interpreter.h"

namespace vmm86::interp {

struct FpuRunner;  // interp_fpu.cpp

/// What a handler did. Anything but Ok leaves the instruction un-retired.
enum class [[nodiscard]] Exec : uint8_t{
    Ok,             ///< retired; EIP = Core::next_eip
    Fault,          ///< Core::fault holds the exception to deliver at the instruction
    Halt,           ///< HLT retired
    Unimplemented,  ///< Core::detail says what
    Unsupported,    ///< a feature outside this vCPU model (task switch, ...); Core::detail says what
};

class Core;
using Handler = Exec (*)(Core&);

/// A direct-mapped cache of successful decodes. Each entry keeps the instruction's bytes
/// and a hit compares them with the bytes now in memory, so no write (guest stores, DMA,
/// a test poking code) needs to invalidate anything and a stale decode is never used.
class DecodeCache {
 public:
  struct Entry {
    uint64_t phys;  ///< of the first byte
    uint8_t len;    ///< 0: empty
    bool big;       ///< decoded as 32-bit code (CS.D)
    std::array<uint8_t, 15> bytes;
    Handler handler;  ///< handler_for(insn), possibly nullptr (unimplemented)
    Instruction insn;
  };

  DecodeCache() = default;
  ~DecodeCache();
  DecodeCache(const DecodeCache&) = delete;
  DecodeCache& operator=(const DecodeCache&) = delete;

  /// The entry for an instruction at `phys` whose bytes are still `code[0..len)`, where at
  /// most `avail` bytes may be looked at (page end, CS limit); nullptr on a miss.
  [[nodiscard]] const Entry* find(uint64_t phys, bool big, const uint8_t* code, uint32_t avail) {
    if (entries_ == nullptr) return nullptr;
    const Entry& e = entries_[slot_of(phys)];
    if (e.phys != phys || e.big != big || e.len == 0 || e.len > avail) return nullptr;
    return std::memcmp(e.bytes.data(), code, e.len) == 0 ? &e : nullptr;
  }
  /// Remembers a decode made from the bytes at `phys` (the instruction fits in `code`);
  /// returns the entry, or nullptr when there is no memory for the cache.
  const Entry* insert(uint64_t phys, bool big, const uint8_t* code, Handler handler, const Instruction& insn);

 private:
  // 8192 entries of ~1.2 KiB: enough for the kernel's hot code. The memory is mapped
  // lazily and zero-filled by the host, so an interpreter that runs little costs little.
  static constexpr size_t kEntries = 8192;
  static size_t slot_of(uint64_t phys) { return static_cast<size_t>((phys ^ ((phys >> 12) * 0x9Du)) & (kEntries - 1)); }

  Entry* entries_ = nullptr;
};

/// Propagates a failed memory/descriptor access (the fault is already recorded) as
/// Exec::Fault; common/result.h's VMM86_TRY is the same for Result, which no handler returns.
#define VMM86_TRY_ACCESS(expr)                        \
  do {                                                \
    if (!(expr)) return ::vmm86::interp::Exec::Fault; \
  } while (0)
/// Propagates any non-Ok Exec.
#define VMM86_PROPAGATE(expr)                                         \
  do {                                                                \
    const ::vmm86::interp::Exec vmm86_exec_ = (expr);                 \
    if (vmm86_exec_ != ::vmm86::interp::Exec::Ok) return vmm86_exec_; \
  } while (0)

/// Exception vectors.
namespace vec {
inline constexpr uint8_t DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8, TS = 10, NP = 11,
                         SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, XM = 19;
}

struct Fault {
  uint8_t vector = 0;
  bool has_error = false;
  uint32_t error = 0;
};

enum class Access : uint8_t { Read, Write, ReadWrite, Fetch };

/// One page-contained piece of a guest memory access, already translated.
struct Chunk {
  uint64_t phys = 0;
  uint8_t* host = nullptr;  ///< direct pointer for RAM (null for ROM writes, MMIO, watched writes)
  uint32_t len = 0;
  PhysKind kind = PhysKind::Unbacked;
  bool watched = false;
};

/// A translated access of up to one page plus one byte: split at most once.
struct MemTarget {
  uint32_t size = 0;
  uint8_t count = 0;
  std::array<Chunk, 2> chunk{};
};

/// A resolved instruction operand: a register or translated memory.
struct OpRef {
  bool is_mem = false;
  ZydisRegister reg = ZYDIS_REGISTER_NONE;
  unsigned size = 0;  ///< bytes
  MemTarget mem{};
};

enum class EventKind : uint8_t {
  Exception,    ///< fault or trap raised by the CPU
  SoftwareInt,  ///< INT n / INT3 / INTO: gate DPL is checked against CPL, no EXT bit
  External,     ///< INTR from the interrupt controller
  Nmi,
};

struct Event {
  uint8_t vector = 0;
  EventKind kind = EventKind::Exception;
  bool has_error = false;
  uint32_t error = 0;
};

/// What started a task switch: it decides the busy bits, NT and the link (SDM Vol. 3 Table 7-2).
enum class TaskSource : uint8_t { Jmp, Call, Iret, Event };

/// An unpacked 8-byte descriptor.
struct Descriptor {
  uint32_t lo = 0, hi = 0;
  [[nodiscard]] uint32_t base() const { return (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000u); }
  [[nodiscard]] uint32_t limit() const {
    const uint32_t raw = (lo & 0xFFFF) | (hi & 0x000F0000u);
    return (hi & (1u << 23)) ? (raw << 12) | 0xFFF : raw;
  }
  /// In SegmentCache::attr layout.
  [[nodiscard]] uint16_t attr() const { return static_cast<uint16_t>(((hi >> 8) & 0xFF) | ((hi >> 8) & 0xF000)); }
  [[nodiscard]] uint8_t type() const { return static_cast<uint8_t>((hi >> 8) & 0xF); }
  [[nodiscard]] bool is_system() const { return (hi & (1u << 12)) == 0; }
  [[nodiscard]] uint8_t dpl() const { return static_cast<uint8_t>((hi >> 13) & 3); }
  [[nodiscard]] bool present() const { return (hi & (1u << 15)) != 0; }
  [[nodiscard]] bool is_code() const { return !is_system() && (type() & 8) != 0; }
  [[nodiscard]] bool is_data() const { return !is_system() && (type() & 8) == 0; }
  [[nodiscard]] bool conforming() const { return is_code() && (type() & 4) != 0; }
  [[nodiscard]] bool readable() const { return is_data() || (is_code() && (type() & 2) != 0); }
  [[nodiscard]] bool writable_data() const { return is_data() && (type() & 2) != 0; }
  // Gate fields.
  [[nodiscard]] uint16_t gate_selector() const { return static_cast<uint16_t>(lo >> 16); }
  [[nodiscard]] uint32_t gate_offset() const { return (lo & 0xFFFF) | (hi & 0xFFFF0000u); }
  [[nodiscard]] uint8_t gate_params() const { return static_cast<uint8_t>(hi & 0x1F); }
};

/// A task switch request: the new TSS and how it was reached.
struct TaskSwitch {
  uint16_t selector = 0;  ///< of the new TSS (in the GDT)
  Descriptor tss{};
  TaskSource source = TaskSource::Jmp;
  uint32_t ext = 0;         ///< EXT bit for the error codes (events other than INT n)
  uint32_t return_eip = 0;  ///< saved in the old TSS
  bool push_error = false;  ///< an exception with an error code: pushed on the new task's stack
  uint32_t error = 0;
};

/// Result of reading a descriptor table entry.
enum class DescRead : uint8_t { Ok, OutOfLimit, Fault };

/// Registers an instruction may change before it faults; restored so faults are precise.
struct Snapshot {
  std::array<uint32_t, kNumGprs> gpr{};
  uint32_t eflags = 0;
  std::array<SegmentCache, kNumSegRegs> seg{};
  uint32_t eip = 0;
};

/// Software TLB entry: one linear page mapped to RAM for one privilege.
struct TlbEntry {
  uint32_t read_tag = 0;   ///< page | 1 when reads (and fetches) may use `host`
  uint32_t write_tag = 0;  ///< page | 1 when writes may (D already set, not watched)
  uint8_t* host = nullptr;
  uint64_t phys = 0;
  bool large = false;  ///< from a 4 MiB page: INVLPG anywhere in it drops the entry
};

class Core {
 public:
  Core(CpuState& cpu_state, GuestMemory& memory, CpuHooks& cpu_hooks);

  // ---- step (interpreter.cpp) ----
  StepStatus step();
  StepStatus deliver(Event ev);  ///< with #DF/triple-fault escalation
  StepStatus finish(Exec e);     ///< turns a handler's outcome into a StepStatus
  /// A #DB trap after an instruction or a task switch, with these DR6 bits set.
  StepStatus debug_trap(uint32_t dr6_bits);
  Exec unimplemented();
  [[nodiscard]] Snapshot take_snapshot() const { return Snapshot{cpu.gpr, cpu.eflags, cpu.seg, cpu.eip}; }
  /// `progress` false keeps GPRs and EFLAGS (a string instruction's completed iterations).
  void restore(const Snapshot& s, bool progress = true) {
    if (progress) {
      cpu.gpr = s.gpr;
      cpu.eflags = s.eflags;
    }
    cpu.seg = s.seg;
    cpu.eip = s.eip;
  }
  /// Writes EFLAGS from popf/iret with the privilege rules (IOPL, IF, VM untouched).
  void write_eflags(uint32_t value, unsigned size, bool is_iret);

  // ---- memory (memory.cpp) ----
  [[nodiscard]] bool raise(uint8_t vector);
  [[nodiscard]] bool raise(uint8_t vector, uint32_t error);
  [[nodiscard]] Exec fail(uint8_t vector) {
    (void)raise(vector);
    return Exec::Fault;
  }
  [[nodiscard]] Exec fail(uint8_t vector, uint32_t error) {
    (void)raise(vector, error);
    return Exec::Fault;
  }

  /// Segment checks (type, present, limit incl. expand-down) and the linear address.
  [[nodiscard]] bool seg_check(SegReg s, uint32_t offset, uint32_t size, Access a, uint32_t* linear);
  /// Paging (and physical-map lookup) for an access of `size` <= 4096 bytes.
  [[nodiscard]] bool translate_linear(uint32_t linear, uint32_t size, Access a, bool user, MemTarget* t);
  [[nodiscard]] bool translate(SegReg s, uint32_t offset, uint32_t size, Access a, MemTarget* t);
  void read_target(const MemTarget& t, void* dst);
  void write_target(const MemTarget& t, const void* src);
  [[nodiscard]] bool read_mem(SegReg s, uint32_t offset, unsigned size, uint32_t* v);
  [[nodiscard]] bool write_mem(SegReg s, uint32_t offset, unsigned size, uint32_t v);
  [[nodiscard]] bool read_bytes(SegReg s, uint32_t offset, void* dst, uint32_t size);
  [[nodiscard]] bool write_bytes(SegReg s, uint32_t offset, const void* src, uint32_t size);
  /// Implicit supervisor accesses by linear address (descriptor tables, TSS, IDT).
  [[nodiscard]] bool read_sys(uint32_t linear, void* dst, uint32_t size);
  [[nodiscard]] bool write_sys(uint32_t linear, const void* src, uint32_t size);
  void flush_tlb();
  void invalidate_page(uint32_t linear);

  // ---- stack ----
  [[nodiscard]] bool stack32() const { return cpu.sreg(SegReg::Ss).default_big(); }
  [[nodiscard]] uint32_t sp() const { return stack32() ? cpu.reg(Gpr::Esp) : (cpu.reg(Gpr::Esp) & 0xFFFF); }
  void set_sp(uint32_t v);
  [[nodiscard]] bool push(uint32_t v, unsigned size);
  [[nodiscard]] bool pop(unsigned size, uint32_t* v);
  /// Reads at SP + `delta` without changing SP.
  [[nodiscard]] bool stack_peek(uint32_t delta, unsigned size, uint32_t* v);

  // ---- operands (operands.cpp) ----
  [[nodiscard]] const ZydisDecodedOperand& op(unsigned i) const { return insn->operands[i]; }
  [[nodiscard]] unsigned op_bytes(unsigned i) const { return insn->operands[i].size / 8u; }
  [[nodiscard]] uint32_t effective_address(const ZydisDecodedOperand& o) const;
  [[nodiscard]] static SegReg seg_of(ZydisRegister r);
  /// Segment of a memory operand (its override or default).
  [[nodiscard]] SegReg mem_seg(const ZydisDecodedOperand& o) const { return seg_of(o.mem.segment); }
  /// The data segment of string ops and xlat: DS unless overridden.
  [[nodiscard]] SegReg override_or_ds() const;
  [[nodiscard]] uint32_t get_reg(ZydisRegister r) const;
  void set_reg(ZydisRegister r, uint32_t v);
  [[nodiscard]] bool resolve(unsigned i, Access a, OpRef* r);
  [[nodiscard]] uint32_t load(const OpRef& r);
  void store(const OpRef& r, uint32_t v);
  [[nodiscard]] bool read_op(unsigned i, uint32_t* v);
  [[nodiscard]] bool write_op(unsigned i, uint32_t v);
  [[nodiscard]] uint32_t imm(unsigned i) const;
  [[nodiscard]] uint32_t addr_mask() const { return insn->address_size() == 16 ? 0xFFFFu : 0xFFFFFFFFu; }
  [[nodiscard]] uint32_t branch_target(unsigned i) const;
  [[nodiscard]] bool cond(unsigned cc) const;
  void set_status_flags(uint32_t new_eflags) {
    cpu.eflags = (cpu.eflags & ~flags::Status) | (new_eflags & flags::Status);
  }

  // ---- segments (segments.cpp) ----
  [[nodiscard]] DescRead read_descriptor(uint16_t sel, Descriptor* d);
  [[nodiscard]] bool write_descriptor_hi(uint16_t sel, uint32_t hi);
  [[nodiscard]] bool set_accessed(uint16_t sel, Descriptor* d);
  [[nodiscard]] static SegmentCache make_cache(uint16_t sel, const Descriptor& d);
  /// mov/pop/lds-style load with the protected-mode checks.
  [[nodiscard]] bool load_sreg(SegReg s, uint16_t sel);
  void load_real_sreg(SegReg s, uint16_t sel);
  [[nodiscard]] Exec far_jump(uint16_t sel, uint32_t offset);
  [[nodiscard]] Exec far_call(uint16_t sel, uint32_t offset);
  [[nodiscard]] Exec far_return(uint16_t pop_bytes);
  [[nodiscard]] Exec iret();
  /// Reads SS:ESP for privilege level `dpl` from the current TSS.
  [[nodiscard]] bool tss_stack(uint8_t dpl, uint16_t* ss, uint32_t* esp, uint32_t ext);
  /// Loads SS for a privilege change to `cpl` with the #TS checks.
  [[nodiscard]] bool load_inner_ss(uint16_t sel, uint8_t cpl, uint32_t ext, SegmentCache* out);
  /// Nulls DS/ES/FS/GS that the new (outer) CPL may not use (ret/iret to outer level).
  void null_inaccessible_segments();
  [[nodiscard]] bool jump_within_cs(uint32_t target);

  // ---- task switches (task_switch.cpp) ----
  /// jmp/call far to a TSS descriptor or a task gate (`d` read from `sel`), with the
  /// privilege, type and presence checks of the JMP/CALL pseudocode.
  [[nodiscard]] Exec task_transfer(uint16_t sel, const Descriptor& d, TaskSource source);
  /// iret with EFLAGS.NT: back to the task in the current TSS's link field.
  [[nodiscard]] Exec task_return();
  /// An event through a task gate of the IDT (`gate` already checked for DPL and presence).
  [[nodiscard]] Exec task_gate_event(const Descriptor& gate, const Event& ev, uint32_t ext);
  /// The switch itself (SDM Vol. 3 §7.3), from the TSS limit check on.
  [[nodiscard]] Exec switch_task(const TaskSwitch& ts);

  // ---- events (exceptions.cpp) ----
  [[nodiscard]] Exec deliver_once(const Event& ev);
  [[nodiscard]] Exec software_interrupt(uint8_t vector);

  // ---- I/O permission (interp_string.cpp) ----
  [[nodiscard]] bool io_allowed(uint16_t port, unsigned size);

  /// After MOV SS / POP SS: interrupts, NMIs and debug traps wait one instruction
  /// (SDM Vol. 3 §6.8.3), so that a stack switch by mov ss; mov esp is never interrupted.
  void begin_stack_load_shadow() {
    cpu.pending.interrupt_shadow = 1;
    cpu.pending.stack_load_shadow = true;
  }

  [[nodiscard]] uint8_t cpl() const { return cpu.cpl(); }
  [[nodiscard]] bool pmode() const { return cpu.protected_mode() && !cpu.v86_mode(); }

  CpuState& cpu;
  GuestMemory& mem;
  CpuHooks& hooks;
  Decoder dec16{CodeSize::Bits16};
  Decoder dec32{CodeSize::Bits32};

  /// The current instruction: in the decode cache, or `fresh` when it was not cacheable.
  const Instruction* insn = &fresh;
  Handler handler = nullptr;  ///< handler_for(*insn), nullptr when unimplemented
  Instruction fresh{};        ///< where fetches that miss the cache decode
  DecodeCache decoded;
  std::array<uint8_t, 15> insn_bytes{};  ///< the raw bytes of `insn` (the FPU path re-encodes them)
  uint32_t insn_eip = 0;                 ///< EIP of the current instruction
  uint32_t next_eip = 0;                 ///< EIP after it (handlers that branch overwrite it)
  Fault fault{};
  /// String instructions keep their per-iteration register and flag progress on a fault.
  bool keep_progress_on_fault = false;
  bool shutdown = false;
  /// A task switch passed its commit point: a fault from here on is delivered in the new
  /// task's context, so the state before the instruction or event is not restored.
  bool task_committed = false;
  bool task_switched = false;  ///< this step switched tasks (no single-step trap for the old task)
  bool task_trap = false;      ///< the new TSS has its T bit: #DB once the switch completes
  Snapshot snap{};
  std::string detail;
  uint64_t retired = 0;
  /// Arithmetic flags the SDM leaves undefined after the last instruction that wrote them
  /// (mul's SF/ZF/AF/PF, shr's AF, ...), and how many instructions since have had an
  /// outcome the SDM leaves undefined: read such a flag, or shifted a 16-bit shld/shrd by
  /// 17..31. Differential testing ignores the differences these carry on. Exact for runs
  /// that stay in this interpreter; the BT engine's stretches in between are not seen.
  uint32_t undefined_flags = 0;
  uint64_t undefined_results = 0;
  /// Accesses to memory a shadow window cannot map: MMIO, unbacked memory, writes to ROM.
  uint64_t unmappable_accesses = 0;

  /// A locked read-modify-write (lock prefix, xchg with memory) is atomic against the other
  /// vCPUs (SMP): its read records the bytes it saw, its write is a compare-and-swap
  /// against them, and a write that finds them changed runs the instruction again from
  /// its start. Within one page of RAM only; MMIO and page-crossing operands are not atomic.
  struct AtomicRmw {
    bool active = false;    ///< the current instruction is a locked read-modify-write
    bool conflict = false;  ///< its compare-and-swap failed: run it again
    uint8_t* host = nullptr;
    uint32_t len = 0;
    uint64_t seen = 0;
  };
  AtomicRmw atomic_rmw{};
  /// read_target/write_target for a locked read-modify-write: true when they did the access.
  [[nodiscard]] bool atomic_read(const MemTarget& t, void* dst);
  [[nodiscard]] bool atomic_write(const MemTarget& t, const void* src);

  /// Host-FPU execution of guest FP instructions (interp_fpu.cpp); created on first use.
  std::unique_ptr<FpuRunner, void (*)(FpuRunner*)> fpu{nullptr, nullptr};

  static constexpr unsigned kTlbSize = 256;
  std::array<std::array<TlbEntry, kTlbSize>, 2> tlb{};  ///< [user][index]
  bool tlb_has_large = false;                           ///< some entry came from a 4 MiB page since the last flush
  /// Entries filled from empty since the last flush ([user] * kTlbSize + index), so that
  /// flush_tlb clears only those. INVLPG empties entries that may fill again: past a
  /// bound the list gives up and the flush clears everything.
  std::vector<uint16_t> tlb_filled;
  bool tlb_filled_overflow = false;
  void note_tlb_fill(bool user, uint32_t index) {
    if (tlb_filled.size() < 4 * kTlbSize) {
      tlb_filled.push_back(static_cast<uint16_t>((user ? kTlbSize : 0) + index));
    } else {
      tlb_filled_overflow = true;
    }
  }
};

// ---- the handler table (handler_table.cpp) ----
/// The handler the instruction's table row names (Instruction::interp).
[[nodiscard]] Handler handler_for(const Instruction& insn);

// Handlers, by family (one .cpp each).
// interp_alu_ops.cpp
Exec h_binop(Core&);
Exec h_incdec(Core&);
Exec h_neg(Core&);
Exec h_not(Core&);
Exec h_shift(Core&);
Exec h_shxd(Core&);
Exec h_mul(Core&);
Exec h_imul(Core&);
Exec h_div(Core&);
Exec h_bit(Core&);
Exec h_bitscan(Core&);
Exec h_bcd(Core&);
Exec h_aam(Core&);
Exec h_aad(Core&);
Exec h_setcc(Core&);
Exec h_cmovcc(Core&);
Exec h_cmpxchg(Core&);
Exec h_cmpxchg8b(Core&);
Exec h_xadd(Core&);
Exec h_bswap(Core&);
// interp_data.cpp
Exec h_mov(Core&);
Exec h_movx(Core&);
Exec h_lea(Core&);
Exec h_xchg(Core&);
Exec h_convert(Core&);
Exec h_flagop(Core&);
Exec h_lahf(Core&);
Exec h_sahf(Core&);
Exec h_salc(Core&);
Exec h_nop(Core&);
Exec h_clflush(Core&);
Exec h_xlat(Core&);
Exec h_bound(Core&);
Exec h_ud(Core&);
// interp_control.cpp
Exec h_jmp(Core&);
Exec h_jcc(Core&);
Exec h_call(Core&);
Exec h_ret(Core&);
Exec h_loop(Core&);
Exec h_jcxz(Core&);
Exec h_int(Core&);
Exec h_iret(Core&);
Exec h_push(Core&);
Exec h_pop(Core&);
Exec h_pusha(Core&);
Exec h_popa(Core&);
Exec h_pushf(Core&);
Exec h_popf(Core&);
Exec h_enter(Core&);
Exec h_leave(Core&);
// interp_string.cpp
Exec h_string(Core&);
Exec h_in(Core&);
Exec h_out(Core&);
// interp_segments.cpp
Exec h_mov_sreg(Core&);
Exec h_load_far_pointer(Core&);
Exec h_lar_lsl(Core&);
Exec h_verr_verw(Core&);
Exec h_arpl(Core&);
// interp_system.cpp
Exec h_cli(Core&);
Exec h_sti(Core&);
Exec h_hlt(Core&);
Exec h_load_dtr(Core&);
Exec h_store_dtr(Core&);
Exec h_lldt(Core&);
Exec h_ltr(Core&);
Exec h_sldt_str(Core&);
Exec h_smsw(Core&);
Exec h_lmsw(Core&);
Exec h_clts(Core&);
Exec h_mov_cr(Core&);
Exec h_mov_dr(Core&);
Exec h_invlpg(Core&);
Exec h_cache(Core&);
Exec h_cpuid(Core&);
Exec h_rdtsc(Core&);
Exec h_rdmsr(Core&);
Exec h_wrmsr(Core&);
Exec h_rdpmc(Core&);
Exec h_sysenter(Core&);
Exec h_sysexit(Core&);
// interp_fpu.cpp
Exec h_fpu(Core&);

}  // namespace vmm86::interp
