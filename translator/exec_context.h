// The state translated code runs against: R15 points at an ExecContext for the whole time
// guest code runs in the code cache (DESIGN.md §4). Fields are addressed by offset from
// R15 by generated code, so keep this standard-layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/types.h"

namespace vmm86 {

struct ExitRecord;
struct CalloutSite;
struct ExecContext;

/// What translated code calls for an instruction the monitor executes in place (the
/// interpreter, through the callout trampoline): nullptr to go on with the block, or the
/// exit to leave by (the guest state in the context is then complete).
using CalloutFn = ExitRecord* (*)(ExecContext* ctx, const CalloutSite* site);

/// Host registers that hold guest state inside translated code.
/// Guest EAX..EDI live in host RAX..RDI (ModRM numbering), except ESP: host RSP stays a
/// real host stack, so guest ESP lives in R12. R14 counts retired guest instructions.
/// R15 is the context. R8–R11 and R13 are scratch.
inline constexpr int kGuestEspHostReg = 12;
inline constexpr int kRetiredHostReg = 14;
inline constexpr int kContextHostReg = 15;

/// One entry of the inline indirect-branch table: guest EIP -> host code. The key is
/// -(eip + lookup_salt), so generated code compares without touching flags (lea + jrcxz),
/// and a new salt (new translation mode) retires all entries without clearing. The entry
/// also names the code TLB slot of the target's page and minus the tag it must hold: the
/// lookup compares that too, so an entry made in another address space leads to the right
/// code or to a miss (translator/code_tlb.h).
struct IndirectEntry {
  uint32_t neg_key = 0;
  uint32_t neg_tag = 0;     ///< -CodeTlb::tag of the target's page
  uint32_t tlb_offset = 0;  ///< of that code TLB slot, from R15
  uint32_t pad = 0;
  uint64_t host_code = 0;  ///< the block's entry (its checked entry if it needs more checks)
  uint64_t pad2 = 0;
};
static_assert(sizeof(IndirectEntry) == 32);
/// The inline table has 2^bits entries, indexed by the low bits of the EIP: 16 (movzx) or,
/// on hosts with BMI2 (flag-free shlx/shrx), 20: the kernel's fork, exec and exit paths
/// filled a 64 Ki-entry table with colliding targets (fork+exec: 640 conflict misses per
/// iteration at 16 bits, 220 at 18, 30 at 20).
inline constexpr uint32_t kIndirectIndexBits = 16;
inline constexpr uint32_t kIndirectIndexBitsWide = 20;

/// ExecContext::segment_code_guard of a segment translated code must not use directly:
/// window + 4 GiB + (a 32-bit address) lies in the window's guard (AddressWindow::kGuard).
inline constexpr uint64_t kUnusableSegmentBase = 1ull << 32;

/// The code TLB (translator/code_tlb.h): per privilege, 4096 entries indexed by linear page
/// bits 0-11 (direct-mapped: a smaller one thrashed on kernel text), each holding
/// CodeTlb::tag(linear page, guest-physical page).
inline constexpr uint32_t kCodeTlbIndexBits = 12;
inline constexpr uint32_t kCodeTlbEntries = 1u << kCodeTlbIndexBits;
/// No tag equals it: guest-physical page 0xFFFFF is never RAM (RAM ends at 3 GiB).
inline constexpr uint32_t kCodeTlbEmpty = 0xFFFFFFFFu;

struct ExecContext {
  CpuState cpu;
  /// Host stack pointer saved by the enter trampoline; the exit trampoline restores it.
  uint64_t host_rsp = 0;
  /// Guest instructions retired in translated code (R14 is spilled here on every exit).
  uint64_t retired = 0;
  /// Host base of the guest linear window (the GS base while guest code runs).
  uint64_t window_base = 0;
  /// Host MXCSR and x87 control word, restored on exit (both callee-saved in the SysV ABI).
  uint32_t host_mxcsr = 0;
  uint16_t host_fcw = 0;
  uint16_t pad0 = 0;
  /// Scratch slot for rewrites that need one more register than they have.
  uint64_t spill[4] = {};
  /// Inline indirect-branch lookup table (2^Translator::indirect_index_bits_ entries).
  IndirectEntry* indirect_table = nullptr;
  /// Mixed into every key of the table; changes with the translation mode (salted_mode():
  /// a linear EIP names different code in another mode) and with CR0/CR4 paging changes.
  /// Not with CR3: the target block checks the code TLB instead.
  uint32_t lookup_salt = 0;
  /// The current translation mode (tmode bits), for the checked entries of blocks whose
  /// translation depends on the bits the salt leaves out.
  uint32_t mode = 0;
  /// FS and GS as fs:/gs: operands of translated code use them: linear = (ea + base) mod
  /// 2^32 (the segment's base when it is a writable, expand-up data segment with a 4 GiB
  /// limit, else 0), plus the guard offset (0, or kUnusableSegmentBase: an address past the
  /// window, so that the access faults to the interpreter, which checks the segment).
  uint64_t segment_code_base[2] = {};
  uint64_t segment_code_guard[2] = {};
  /// EFLAGS while translated code runs (DESIGN.md §4): the status flags and DF live in host
  /// RFLAGS, IF in `virtual_if`, and every other bit pushf shows (IOPL, NT, AC, ID, VIF,
  /// VIP; TF is always 0 there) in `system_flags`. The enter trampoline splits
  /// cpu.eflags into the three, the exit trampoline merges them back (keeping RF and VM
  /// from cpu.eflags), so outside translated code cpu.eflags is the only copy.
  uint32_t virtual_if = 0;    ///< 0 or flags::IF: a dword so pushf can add it flag-free
  uint32_t system_flags = 0;  ///< cpu.eflags & ~(Status | DF | IF | Reserved1 | RF | VM)
  /// Indirect branches that consulted the inline table (counted only when the translator
  /// is told to: --stats); hits = this minus the misses that reached the dispatcher.
  uint64_t indirect_lookups = 0;
  /// The callout handler and what it needs to find its engine.
  CalloutFn callout = nullptr;
  void* callout_opaque = nullptr;
  /// Guest XMM0-7 and MXCSR while a callout runs (the monitor's C++ may use SSE).
  uint8_t callout_xmm[8][16] = {};
  uint32_t callout_mxcsr = 0;
  uint32_t pad1 = 0;
  /// Host RSP while translated code runs starts here, in the return stack (see
  /// kReturnStackBytes): the slot it points at holds the address of the translator's
  /// return-miss code, so a host ret with no host call left to pair with lands there.
  uint64_t return_stack_top = 0;
  /// RSP of translated code while a callout runs on the host stack.
  uint64_t callout_rsp = 0;
  /// Guest rets the return stack did not predict (no host call to pair with, or another
  /// target than the paired call's return address): they went to the inline table.
  uint64_t return_misses = 0;
  /// The code TLB, [0] for supervisor and [1] for user fetches (translator/code_tlb.h).
  uint32_t code_tlb[2][kCodeTlbEntries] = {};
};

static_assert(std::is_standard_layout_v<ExecContext>);

/// The interrupt poll page sits right below the context: every block starts with a load
/// from [r15 - kPageSize]. Making the page inaccessible forces translated code to leave at
/// the next block boundary without any flag-clobbering test (DESIGN.md §4, Interrupts).
inline constexpr int32_t kPollPageOffset = -static_cast<int32_t>(kPageSize);

/// Translated sti and popf read CpuState::pending.external_interrupt when they set IF:
/// when a request may be waiting (nonzero) they leave translated code so that the
/// dispatcher delivers it after the interrupt shadow. Whoever enters translated code keeps
/// that byte nonzero unless it knows the interrupt controller does not assert INTR (see
/// BtEngine::run); a request raised while translated code runs comes with request_exit().
inline constexpr int32_t kExternalInterruptOffset = static_cast<int32_t>(
    offsetof(ExecContext, cpu) + offsetof(CpuState, pending) + offsetof(PendingEvents, external_interrupt));
static_assert(sizeof(PendingEvents::external_interrupt) == 1);

/// Return prediction (docs/design-notes.md): a guest call is a host call and a guest ret a
/// host ret, so the host's return predictor guesses where a guest ret goes; the code at the
/// host return address checks the guest's target. Those host calls push onto this stack,
/// which translated code runs on (RSP = return_stack_top at every entry from the
/// dispatcher, which is what empties it). A guard page lies below it: a push there faults,
/// and the fault handler starts the stack over (the pairs it drops only miss).
inline constexpr size_t kReturnStackBytes = 64 * 1024;

/// ExecContext with its poll page and the return stack below it, in one mmap'd region:
/// [guard page][return stack][poll page][context].
struct ExecContextDeleter {
  void operator()(ExecContext* ctx) const;
};
using ExecContextPtr = std::unique_ptr<ExecContext, ExecContextDeleter>;
/// A fresh context (nullptr if the host refuses the memory).
[[nodiscard]] ExecContextPtr create_exec_context();
/// Makes translated code leave at its next block boundary. Async-signal-safe.
void request_exit(ExecContext* ctx);
/// Undoes request_exit (called by the dispatcher once it has control).
void clear_exit_request(ExecContext* ctx);
/// True when `addr` is the guard page below the return stack of `ctx`.
[[nodiscard]] bool is_return_stack_guard(const ExecContext* ctx, const void* addr);
/// True when `addr` is the poll page of `ctx`.
[[nodiscard]] bool is_poll_page(const ExecContext* ctx, const void* addr);
static_assert(offsetof(ExecContext, cpu) == 0);
static_assert(offsetof(CpuState, fxsave) % 16 == 0);

}  // namespace vmm86
