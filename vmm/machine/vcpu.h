// One virtual CPU: its registers (the ExecContext), its engines (the interpreter and the BT
// engine with its own code cache), its shadow MMU windows and its host timer, and the
// vCPU loop that runs them. With --smp N each vCPU runs on its own host thread; what they
// share (RAM, devices, the code-page set) lives in the Machine (docs/design-notes.md, "SMP").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shadow-mmu/shadow_mmu.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"

namespace vmm86 {

class Machine;
enum class MachineExit : uint8_t;

/// Makes the engine running on this thread come back to its vCPU loop soon: translated code
/// at its next block boundary (or right now, inside a host string instruction), the
/// interpreter at its next instruction boundary. For signal handlers (`ucontext` may be null).
void interrupt_this_thread_engine(void* ucontext);

class Vcpu final : public CpuHooks {
 public:
  /// vCPU `index` (its local APIC ID); `cpu` its state at power-on (the BSP's is the loaded
  /// guest's; an AP's waits for a start-up IPI).
  Vcpu(Machine& machine, unsigned index, const CpuState& cpu);
  ~Vcpu() override;
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  /// Creates the engines. `code_pages` is the machine's set when there are several vCPUs.
  [[nodiscard]] Status init(CodePageSet* code_pages);
  /// On the thread that will run the vCPU: its host timer and signal stack.
  [[nodiscard]] Status init_thread();
  /// The vCPU loop, until the machine stops (this vCPU's reason, or MachineExit of another's).
  [[nodiscard]] MachineExit run();

  /// The vCPU whose loop runs on this thread (nullptr elsewhere).
  [[nodiscard]] static Vcpu* current();

  // --- From other threads (any vCPU's, under the machine's device lock or not) ------------
  /// Brings the vCPU back to its loop soon: out of translated code, the interpreter or its
  /// sleep. Async-signal-safe. Nothing when called on the vCPU's own thread.
  void kick();
  /// Another vCPU wrote a page this one has code on.
  void post_code_write(PhysPage page);
  /// What guest-physical [start, start + size) is changed (every vCPU's caches forget it).
  void post_physical_map_change(GuestPhys start, uint64_t size);
  void post_a20(bool on);
  /// The local APIC accepted INIT / a start-up IPI / an NMI.
  void post_init();
  void post_startup(uint8_t vector);
  void post_nmi();
  /// A reset of the machine: the BSP to the reset vector, an AP to wait for a start-up IPI.
  void post_reset();

  // --- On the vCPU's own thread -------------------------------------------------------------
  [[nodiscard]] CpuState& cpu() { return ctx_->cpu; }
  [[nodiscard]] const CpuState& cpu() const { return ctx_->cpu; }
  [[nodiscard]] unsigned index() const { return index_; }
  [[nodiscard]] ExecContext& exec_context() { return *ctx_; }
  [[nodiscard]] const ExecContext& exec_context() const { return *ctx_; }
  [[nodiscard]] Interpreter& interpreter() { return *interp_; }
  [[nodiscard]] const Interpreter& interpreter() const { return *interp_; }
  [[nodiscard]] BtEngine* bt() { return bt_.get(); }
  [[nodiscard]] const BtEngine* bt() const { return bt_.get(); }
  [[nodiscard]] const ShadowMmu& mmu() const { return *mmu_; }
  [[nodiscard]] const std::string& detail() const { return detail_; }
  /// Guest instructions retired so far, in translated code and in the interpreter.
  [[nodiscard]] uint64_t retired() const;
  [[nodiscard]] uint64_t interrupts_delivered() const { return interrupts_delivered_; }
  [[nodiscard]] uint64_t interrupts_held() const { return interrupts_held_; }
  [[nodiscard]] uint64_t idle_ns() const { return idle_ns_; }
  [[nodiscard]] uint64_t startups() const { return startups_; }
  /// What the whole machine's caches must forget, done now on this vCPU.
  void physical_map_changed(GuestPhys start, uint64_t size);
  void set_a20(bool on);
  /// The NMI input, on this vCPU's thread.
  void raise_nmi() { ctx_->cpu.pending.nmi = true; }
  /// Back to the power-on state at the reset vector (a reboot); the engines forget RAM.
  void reset_to_reset_vector();
  void disarm_host_timer();

  // CpuHooks.
  uint32_t port_in(uint16_t port, unsigned size) override;
  void port_out(uint16_t port, unsigned size, uint32_t value) override;
  uint32_t mmio_read(GuestPhys addr, unsigned size) override;
  void mmio_write(GuestPhys addr, unsigned size, uint32_t value) override;
  CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) override;
  uint64_t tsc_clock() override;
  bool rdmsr(uint32_t index, uint64_t* value) override;
  bool wrmsr(uint32_t index, uint64_t value) override;
  bool interrupt_pending() override;
  uint8_t acknowledge_interrupt() override;
  bool is_watched_page(GuestPhys page) override;
  void watched_write(GuestPhys addr, unsigned size) override;
  void paging_written() override;
  void page_invalidated(GuestLinear linear) override;
  void event_delivering(const GuestEvent& event) override;
  void shutdown(ShutdownReason reason) override;

 private:
  /// What other threads asked of this vCPU, taken at its loop's top (and when it wakes).
  struct Mailbox {
    std::vector<PhysPage> code_writes;
    std::vector<std::pair<GuestPhys, uint64_t>> map_changes;
    std::optional<bool> a20;
    bool init = false, nmi = false, reset = false;
    std::optional<uint8_t> startup;
  };
  /// Takes what the mailbox holds.
  void serve_mailbox();
  template <typename Fn>
  void post(Fn&& fill);

  /// Timers (and, on the BSP, console input); false when the machine must stop.
  [[nodiscard]] bool service_host();
  /// The interpreter engine, one traced instruction at a time (--trace).
  [[nodiscard]] StepStatus step_traced();
  /// Sleeps until the next timer deadline, console input (BSP) or a kick.
  void idle_wait(bool until_kicked);
  void arm_host_timer();
  void arm_host_timer_soon();
  [[nodiscard]] bool interrupt_deliverable();
  static bool interrupt_deliverable_thunk(void* self);
  /// False while an interrupt must wait for Machine::kInstructionsBetweenInterrupts.
  [[nodiscard]] bool interrupt_gate_open() const;
  [[nodiscard]] bool intr_deliverable_now() const;
  /// INIT: the registers of INIT, then waiting for a start-up IPI (an AP; a BSP ignores it).
  void enter_wait_for_sipi();
  void start_up(uint8_t vector);

  Machine& m_;
  const unsigned index_;
  ExecContextPtr ctx_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::unique_ptr<Interpreter> interp_;
  std::unique_ptr<BtEngine> bt_;
  bool host_timer_ready_ = false;
  void* host_timer_ = nullptr;  ///< timer_t
  int thread_id_ = 0;           ///< the host thread running the loop (for kicks)
  int wake_fd_ = -1;            ///< an eventfd a kick writes, polled while the vCPU sleeps
  bool waiting_for_sipi_ = false;
  std::mutex mailbox_lock_;
  Mailbox mailbox_;
  std::atomic<bool> mail_{false};
  uint64_t retired_at_interrupt_ = 0;  ///< retired() at the last external interrupt taken
  uint64_t interrupts_held_ = 0;       ///< times a deliverable interrupt waited at the gate
  uint64_t interrupts_delivered_ = 0;
  uint64_t idle_ns_ = 0;
  uint64_t startups_ = 0;
  std::string detail_;
};

}  // namespace vmm86
