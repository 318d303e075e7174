// The reference IA-32 interpreter (DESIGN.md §6): executes guest instructions one at a
// time over a CpuState, through segmentation and the shared page walker, delivering
// exceptions and interrupts through the guest's IVT/IDT. It serves real mode, the
// translator's slow path, MMIO emulation and the differential tests of the translator.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"
#include "vmm/arch/types.h"

namespace vmm86 {

/// Values CPUID returns for one leaf.
struct CpuidResult {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

/// Why the machine stops for good (until reset).
enum class ShutdownReason : uint8_t {
  TripleFault,  ///< an exception while delivering a double fault
};

/// An exception or interrupt the vCPU is about to deliver (reported for tracing).
struct GuestEvent {
  uint8_t vector = 0;
  bool software = false;  ///< INT n / INT3 / INTO
  bool external = false;  ///< from the interrupt controller (or NMI)
  bool has_error = false;
  uint32_t error = 0;
};

/// Everything outside the CPU that the interpreter reaches: devices, time, the
/// platform. Implemented by vmm/ (and by test fixtures). Calls happen on the vCPU thread.
class CpuHooks {
 public:
  virtual ~CpuHooks() = default;

  /// Port I/O; `size` is 1, 2 or 4 bytes. Reads return the value zero-extended.
  virtual uint32_t port_in(uint16_t port, unsigned size) = 0;
  virtual void port_out(uint16_t port, unsigned size, uint32_t value) = 0;
  /// Accesses to guest-physical addresses the memory map marks as MMIO; `size` is 1, 2
  /// or 4 (wider guest accesses are split).
  virtual uint32_t mmio_read(GuestPhys addr, unsigned size) = 0;
  virtual void mmio_write(GuestPhys addr, unsigned size, uint32_t value) = 0;

  /// CPUID for leaf EAX / sub-leaf ECX.
  virtual CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) = 0;
  /// The clock-derived part of the virtual TSC; the interpreter adds CpuState::msr.tsc_offset.
  virtual uint64_t tsc_clock() = 0;
  /// MSRs the interpreter does not keep in CpuState::msr. Return false for #GP(0).
  virtual bool rdmsr(uint32_t index, uint64_t* value) {
    (void)index, (void)value;
    return false;
  }
  virtual bool wrmsr(uint32_t index, uint64_t value) {
    (void)index, (void)value;
    return false;
  }

  /// True when the interrupt controller has an unmasked request (INTR is asserted).
  virtual bool interrupt_pending() { return false; }
  /// The INTA cycle: returns the vector of the highest-priority request and marks it in service.
  virtual uint8_t acknowledge_interrupt() { return 0; }

  /// True when writes to this RAM page must be reported through watched_write (e.g. it
  /// holds translated code). Asked when a page enters the software TLB; call
  /// Interpreter::flush_tlb() when the answer changes.
  virtual bool is_watched_page(GuestPhys page) {
    (void)page;
    return false;
  }
  /// A guest write landed in a watched page (after the bytes are in RAM).
  virtual void watched_write(GuestPhys addr, unsigned size) { (void)addr, (void)size; }

  /// The guest wrote CR0, CR3 or CR4 (or executed LMSW): paging structures may have changed
  /// even when the value did not (a CR3 reload flushes the non-global TLB entries).
  virtual void paging_written() {}
  /// INVLPG of the page holding `linear`.
  virtual void page_invalidated(GuestLinear linear) { (void)linear; }

  /// An event is about to be delivered through the IVT/IDT (state: before delivery).
  virtual void event_delivering(const GuestEvent& event) { (void)event; }

  /// The vCPU entered shutdown (triple fault); the platform usually resets the machine.
  virtual void shutdown(ShutdownReason reason) { (void)reason; }
};

/// The outcome of one step().
enum class StepStatus : uint8_t {
  Retired,         ///< one instruction retired (possibly followed by its trap, e.g. INT n, #DB)
  EventDelivered,  ///< an exception, NMI or external interrupt was delivered; no instruction retired
  Halted,          ///< HLT retired, or still halted with nothing deliverable pending
  TripleFault,     ///< shutdown: nothing runs until reset(); CpuHooks::shutdown was called
  Unimplemented,   ///< the instruction is valid but not implemented here; state unchanged, see detail()
  Unsupported,     ///< a feature this vCPU does not model (task switch, v86 entry); see detail()
  Stopped,         ///< request_stop() was called (run() only)
};

[[nodiscard]] const char* to_string(StepStatus s);

struct RunResult {
  StepStatus status = StepStatus::Retired;  ///< why run() returned (Retired: the budget ran out)
  uint64_t instructions = 0;                ///< instructions retired
};

namespace interp {
class Core;
}

/// One interpreter per vCPU. Holds references: CpuState, GuestMemory and CpuHooks must
/// outlive it. Not thread-safe except request_stop().
class Interpreter {
 public:
  Interpreter(CpuState& cpu, GuestMemory& mem, CpuHooks& hooks);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  /// Delivers one pending event (NMI, then an external interrupt when IF=1 and no
  /// interrupt shadow) or executes exactly one instruction. A faulting instruction
  /// leaves the state at the instruction (registers restored) and its exception
  /// delivered: EventDelivered.
  [[nodiscard]] StepStatus step();
  /// Takes up to `max_steps` steps (each retires at most one instruction or delivers one
  /// event; a paused rep string instruction retires nothing), stopping early when a step
  /// returns something other than Retired/EventDelivered (Halted, TripleFault,
  /// Unimplemented, Unsupported, Stopped).
  RunResult run(uint64_t max_steps);

  /// Makes the next run() return Stopped at an instruction boundary (safe from a hook).
  void request_stop() { stop_requested_.store(true, std::memory_order_relaxed); }
  /// Leaves shutdown and resets the CPU to its power-on state.
  void reset();
  /// Drops every cached translation (call after changing the physical memory map or
  /// the answer of CpuHooks::is_watched_page).
  void flush_tlb();
  /// Drops the cached translations of the page holding `linear` (of all of it when a
  /// 4 MiB page mapped it), as INVLPG does.
  void invalidate_page(GuestLinear linear);
  /// Injects an exception as if the current instruction raised it (for the translator's
  /// slow path and tests). Returns EventDelivered or TripleFault.
  [[nodiscard]] StepStatus raise_exception(uint8_t vector, bool has_error_code, uint32_t error_code);

  /// Human-readable detail for Unimplemented/Unsupported (mnemonic, feature).
  [[nodiscard]] const std::string& detail() const;
  /// Instructions retired since construction.
  [[nodiscard]] uint64_t retired() const;
  /// Instructions since construction whose outcome the SDM leaves undefined (a jcc or pushf
  /// reading a flag mul left undefined, a 16-bit shld by 17..31): a second engine may
  /// legally reach another state.
  [[nodiscard]] uint64_t undefined_results() const;
  /// Accesses so far to memory a shadow window cannot map (MMIO, unbacked, ROM writes).
  [[nodiscard]] uint64_t unmappable_accesses() const;
  /// Arithmetic flags the SDM leaves undefined after the last instruction that wrote them
  /// (shl's AF, mul's SF/ZF/AF/PF, ...): their values in EFLAGS are this engine's choice.
  [[nodiscard]] uint32_t undefined_flags() const;

 private:
  std::unique_ptr<interp::Core> core_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace vmm86
