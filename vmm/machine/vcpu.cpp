#include "vmm/machine/vcpu.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <x86intrin.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "vmm/machine/cpuid.h"
#include "vmm/machine/machine.h"

namespace vmm86 {

namespace {

constexpr uint64_t kMaxSliceNs = 10'000'000;  // service the console at least every 10 ms
constexpr uint64_t kInterpSlice = 20'000;     // instructions per interpreter slice
constexpr uint64_t kDispatchSlice = 50'000;   // block entries per BT slice
constexpr size_t kCodeCacheBytes = 64 << 20;
constexpr long kRetickNs = 1'000'000;  // host timer period after its first tick

// The host timer's and the kicks' signal handler finds this thread's engine through these.
thread_local ExecContext* t_timer_ctx = nullptr;
thread_local Interpreter* t_timer_interp = nullptr;  ///< the interpreter engine (Engine::Interp) only
thread_local BtEngine* t_timer_bt = nullptr;
thread_local Vcpu* t_current = nullptr;

int host_thread_id() { return static_cast<int>(syscall(SYS_gettid)); }

}  // namespace

void interrupt_this_thread_engine(void* ucontext) {
  if (t_timer_ctx) request_exit(t_timer_ctx);
  if (t_timer_bt) t_timer_bt->request_stop();
  (void)leave_host_string_instruction(ucontext);
  if (t_timer_interp) t_timer_interp->request_stop();
}

Vcpu::Vcpu(Machine& machine, unsigned index, const CpuState& cpu) : m_(machine), index_(index) {
  ctx_ = create_exec_context();
  if (ctx_) ctx_->cpu = cpu;
}

Vcpu::~Vcpu() {
  if (host_timer_ready_) timer_delete(static_cast<timer_t>(host_timer_));
  if (wake_fd_ >= 0) close(wake_fd_);
}

Vcpu* Vcpu::current() { return t_current; }

Status Vcpu::init(CodePageSet* code_pages) {
  if (!ctx_) return make_error("cannot allocate the context of vCPU {}", index_);
  const MachineConfig& config = m_.config_;
  mmu_ = code_pages ? std::make_unique<ShadowMmu>(m_.mem_, *code_pages, index_) : std::make_unique<ShadowMmu>(m_.mem_);
  VMM86_TRY(mmu_->init());
  if (code_pages) {
    code_pages->attach(index_, mmu_.get());
    // The host's mappings limit is per process: each vCPU's windows get their share.
    mmu_->set_mapping_budget(mmu_->mapping_budget() / m_.config_.smp);
  }
  interp_ = std::make_unique<Interpreter>(ctx_->cpu, m_.mem_, *this);
  if (config.engine == Engine::Bt) {
    bt_ = std::make_unique<BtEngine>(*ctx_, m_.mem_, *mmu_, *interp_, kCodeCacheBytes);
    bt_->count_interpreted_mnemonics(config.stats);
    bt_->translator().count_indirect_lookups(config.stats);
    // A debugging switch, not an option: every relocated block is also translated afresh
    // and compared (docs/design-notes.md, "Relocated blocks").
    if (const char* check = std::getenv("VMM86_CHECK_RELOCATION"); check && *check == '1') {
      bt_->translator().check_relocations(true);
    }
    VMM86_TRY(bt_->init());
    if (config.verify) VMM86_TRY(bt_->enable_verification(config.verify_period, *this));
    Tracer& tracer = m_.tracer_;
    PerfMap& perf_map = m_.perf_map_;
    if (tracer.active() || perf_map.active()) {
      bt_->set_block_observer([&tracer, &perf_map](const Block& block, std::span<const uint8_t> code) {
        if (tracer.active()) tracer.block(block.key.eip, code, block.guest_insns);
        if (perf_map.active()) perf_map.block(block.host_code, block.host_size, block.key.eip, block.guest_insns);
      });
    }
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return make_error("eventfd: {}", std::strerror(errno));
  if (index_ != 0) enter_wait_for_sipi();
  return ok_status();
}

Status Vcpu::init_thread() {
  VMM86_TRY(install_fault_handler());  // this thread's signal stack
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGALRM;
  sev._sigev_un._tid = host_thread_id();
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) return make_error("timer_create: {}", std::strerror(errno));
  host_timer_ = timer;
  host_timer_ready_ = true;
  thread_id_ = host_thread_id();
  t_current = this;
  t_timer_ctx = ctx_.get();
  t_timer_interp = bt_ ? nullptr : interp_.get();
  t_timer_bt = bt_.get();
  return ok_status();
}

uint64_t Vcpu::retired() const { return ctx_->retired + interp_->retired(); }

// ---- Requests from other threads ------------------------------------------------------------

void Vcpu::kick() {
  if (t_current == this || thread_id_ == 0) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  syscall(SYS_tgkill, getpid(), thread_id_, SIGALRM);
}

template <typename Fn>
void Vcpu::post(Fn&& fill) {
  {
    const std::lock_guard lock(mailbox_lock_);
    fill(mailbox_);
  }
  mail_.store(true, std::memory_order_release);
  kick();
}

void Vcpu::post_code_write(PhysPage page) {
  post([page](Mailbox& mb) { mb.code_writes.push_back(page); });
}
void Vcpu::post_physical_map_change(GuestPhys start, uint64_t size) {
  post([start, size](Mailbox& mb) { mb.map_changes.emplace_back(start, size); });
}
void Vcpu::post_a20(bool on) {
  post([on](Mailbox& mb) { mb.a20 = on; });
}
void Vcpu::post_init() {
  post([](Mailbox& mb) {
    mb.init = true;
    mb.startup.reset();  // a start-up IPI before this INIT is void
  });
}
void Vcpu::post_startup(uint8_t vector) {
  post([vector](Mailbox& mb) {
    if (!mb.startup) mb.startup = vector;  // the second SIPI of the pair finds it started
  });
}
void Vcpu::post_nmi() {
  post([](Mailbox& mb) { mb.nmi = true; });
}
void Vcpu::post_reset() {
  post([](Mailbox& mb) { mb.reset = true; });
}

void Vcpu::serve_mailbox() {
  if (!mail_.load(std::memory_order_acquire)) return;
  Mailbox mb;
  {
    const std::lock_guard lock(mailbox_lock_);
    mb = std::exchange(mailbox_, Mailbox{});
    mail_.store(false, std::memory_order_relaxed);
  }
  if (mb.reset) {
    if (index_ == 0) {
      reset_to_reset_vector();
    } else {
      enter_wait_for_sipi();
    }
  }
  for (const auto& [start, size] : mb.map_changes) physical_map_changed(start, size);
  if (mb.a20) set_a20(*mb.a20);
  if (bt_) {
    for (const PhysPage page : mb.code_writes) bt_->foreign_code_write(page);
  }
  // The interpreter caches which pages are watched for code writes: other vCPUs' new code
  // pages change the answer (their windows protect it already, SMP's coherence point).
  if (!mb.code_writes.empty() || !mb.map_changes.empty()) interp_->flush_tlb();
  if (mb.init) enter_wait_for_sipi();
  if (mb.startup) start_up(*mb.startup);
  if (mb.nmi) raise_nmi();
}

void Vcpu::enter_wait_for_sipi() {
  // The BSP ignores INIT here (it would restart at the reset vector; no guest of ours
  // sends one to itself).
  if (index_ == 0) return;
  interp_->reset();
  ctx_->cpu.halted = true;
  waiting_for_sipi_ = true;
}

void Vcpu::start_up(uint8_t vector) {
  if (!waiting_for_sipi_) return;  // SDM §8.4.4.1: a start-up IPI to a running CPU is ignored
  waiting_for_sipi_ = false;
  ++startups_;
  CpuState& cpu = ctx_->cpu;
  // Real mode at vector:0000, as after INIT with CS = vector << 8.
  SegmentCache& cs = cpu.sreg(SegReg::Cs);
  cs.selector = static_cast<uint16_t>(vector << 8);
  cs.base = uint32_t{vector} << 12;
  cpu.eip = 0;
  cpu.halted = false;
  retired_at_interrupt_ = retired();
}

void Vcpu::physical_map_changed(GuestPhys start, uint64_t size) {
  if (bt_) {
    bt_->physical_map_changed(start, size);
  } else {
    interp_->flush_tlb();
  }
}

void Vcpu::set_a20(bool on) {
  ctx_->cpu.a20_mask = on ? kA20Enabled : kA20Masked;
  // Now, not at the next dispatch: the callout that wrote the port must not go on in its
  // block with windows mapped for the other setting (the code TLB flush also stops it).
  // The resync flushes the interpreter's TLB as well.
  if (bt_) {
    bt_->sync_paging();
  } else {
    interp_->flush_tlb();
  }
}

void Vcpu::reset_to_reset_vector() {
  interp_->reset();  // the vCPU's power-on state, at FFFF:FFF0 (CS base FFFF0000)
  retired_at_interrupt_ = retired();
  // RAM keeps its bytes, but no translation or shadow mapping of it may outlive the reset.
  if (bt_) bt_->physical_map_changed(GuestPhys{0}, m_.mem_.ram_size());
}

// ---- CpuHooks ---------------------------------------------------------------------------

uint32_t Vcpu::port_in(uint16_t port, unsigned size) {
  const std::lock_guard lock(m_.device_lock_);
  return m_.pc_->io_bus().read(port, size);
}
void Vcpu::port_out(uint16_t port, unsigned size, uint32_t value) {
  const std::lock_guard lock(m_.device_lock_);
  m_.pc_->io_bus().write(port, size, value);
}
uint32_t Vcpu::mmio_read(GuestPhys addr, unsigned size) {
  const std::lock_guard lock(m_.device_lock_);
  return m_.pc_->mmio_read(addr, size, index_);
}
void Vcpu::mmio_write(GuestPhys addr, unsigned size, uint32_t value) {
  const std::lock_guard lock(m_.device_lock_);
  m_.pc_->mmio_write(addr, size, value, index_);
}
CpuidResult Vcpu::cpuid(uint32_t leaf, uint32_t subleaf) {
  const LocalApic* lapic = m_.pc_->local_apic(index_);
  CpuidResult r = virtual_cpuid(leaf, subleaf, host_tsc_hz(), lapic && lapic->globally_enabled());
  if (leaf == 1) r.ebx |= index_ << 24;  // the initial APIC ID
  return r;
}
// The virtual TSC is the host's (translated rdtsc runs natively): it ticks at the host's
// constant rate, which CPUID leaf 0x15 tells the guest, and every vCPU reads the same one.
uint64_t Vcpu::tsc_clock() { return __rdtsc(); }
bool Vcpu::rdmsr(uint32_t index, uint64_t* value) {
  switch (index) {
    case 0x17:  // IA32_PLATFORM_ID: read by the microcode driver; no platform bits
      *value = 0;
      return true;
    case LocalApic::kMsrApicBase: {
      const LocalApic* lapic = m_.pc_->local_apic(index_);
      if (!lapic) return false;
      *value = lapic->base_msr();
      return true;
    }
    default: return false;  // #GP, as for an MSR the CPU does not have
  }
}
bool Vcpu::wrmsr(uint32_t index, uint64_t value) {
  const std::lock_guard lock(m_.device_lock_);
  LocalApic* lapic = m_.pc_->local_apic(index_);
  if (index == LocalApic::kMsrApicBase && lapic) return lapic->write_base_msr(value);
  return false;
}
bool Vcpu::interrupt_pending() { return intr_deliverable_now(); }
uint8_t Vcpu::acknowledge_interrupt() {
  ++interrupts_delivered_;
  retired_at_interrupt_ = retired();
  const std::lock_guard lock(m_.device_lock_);
  return m_.pc_->acknowledge_interrupt(index_);
}
bool Vcpu::is_watched_page(GuestPhys page) { return bt_ && mmu_->is_code_page(page.page()); }
void Vcpu::watched_write(GuestPhys addr, unsigned size) {
  if (bt_) bt_->physical_write(addr, size);
}
void Vcpu::paging_written() {
  if (bt_) bt_->paging_written();
}
void Vcpu::page_invalidated(GuestLinear linear) {
  if (bt_) bt_->invlpg(linear);
}
void Vcpu::event_delivering(const GuestEvent& event) { m_.tracer_.event(ctx_->cpu, event); }
void Vcpu::shutdown(ShutdownReason) { m_.triple_fault_ = true; }

// ---- The vCPU loop ------------------------------------------------------------------------

bool Vcpu::interrupt_gate_open() const {
  // A halted vCPU retires nothing, and has nothing to run.
  return ctx_->cpu.halted || retired() - retired_at_interrupt_ >= Machine::kInstructionsBetweenInterrupts;
}

bool Vcpu::intr_deliverable_now() const { return m_.pc_->interrupt_pending(index_) && interrupt_gate_open(); }

bool Vcpu::interrupt_deliverable() {
  // Work posted by another vCPU (code it changed) is taken before any more blocks run.
  if (mail_.load(std::memory_order_acquire) && bt_) bt_->request_stop();
  CpuState& cpu = ctx_->cpu;
  const bool intr = m_.pc_->interrupt_pending(index_);
  const bool gate = interrupt_gate_open();
  // Translated sti/popf read this to decide whether enabling interrupts must leave.
  cpu.pending.external_interrupt = intr && gate;
  const bool enabled = (cpu.eflags & flags::IF) && cpu.pending.interrupt_shadow == 0;
  if (enabled && intr && !gate) {
    // Held back: come back for it soon even if the guest now loops in chained blocks.
    ++interrupts_held_;
    arm_host_timer_soon();
  }
  return (enabled && intr && gate) || cpu.pending.nmi_deliverable();
}

bool Vcpu::interrupt_deliverable_thunk(void* self) { return static_cast<Vcpu*>(self)->interrupt_deliverable(); }

bool Vcpu::service_host() {
  const std::lock_guard lock(m_.device_lock_);
  m_.pc_->run_timers();
  if (index_ != 0) return true;
  if (m_.network_) m_.network_->poll();
  m_.pump_console_input();
  if (m_.screen_) m_.screen_->poll(m_.clock_.now_ns());
  return !m_.terminal_->quit_requested();
}

void Vcpu::arm_host_timer() {
  const uint64_t now = m_.clock_.now_ns();
  uint64_t delta = kMaxSliceNs;
  bool held = false;
  {
    const std::lock_guard lock(m_.device_lock_);
    if (const auto deadline = m_.pc_->next_timer_deadline()) {
      delta = *deadline > now ? std::min(*deadline - now, kMaxSliceNs) : 0;
    }
    held = m_.pc_->interrupt_pending(index_);
  }
  // An interrupt waiting at the gate is due within the minimum slice too.
  if (held && !interrupt_gate_open()) delta = 0;
  delta = std::max(delta, Machine::kMinSliceNs);
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(delta / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(delta % 1'000'000'000);
  // Then again every millisecond until re-armed: a tick that lands where it cannot stop
  // the engine (in the window-fill handler while a host `rep stos` touches new pages)
  // must not leave that instruction running until it ends.
  spec.it_interval.tv_nsec = kRetickNs;
  timer_settime(static_cast<timer_t>(host_timer_), 0, &spec, nullptr);
}

void Vcpu::disarm_host_timer() {
  const itimerspec off{};
  timer_settime(static_cast<timer_t>(host_timer_), 0, &off, nullptr);
}

void Vcpu::arm_host_timer_soon() {
  itimerspec current{};
  timer_gettime(static_cast<timer_t>(host_timer_), &current);
  const uint64_t left = static_cast<uint64_t>(current.it_value.tv_sec) * 1'000'000'000 +
                        static_cast<uint64_t>(current.it_value.tv_nsec);
  if (left != 0 && left <= Machine::kMinSliceNs) return;
  itimerspec spec{};
  spec.it_value.tv_nsec = static_cast<long>(Machine::kMinSliceNs);
  spec.it_interval.tv_nsec = kRetickNs;
  timer_settime(static_cast<timer_t>(host_timer_), 0, &spec, nullptr);
}

void Vcpu::idle_wait(bool until_kicked) {
  const uint64_t now = m_.clock_.now_ns();
  uint64_t wait = kMaxSliceNs;
  if (!until_kicked) {
    const std::lock_guard lock(m_.device_lock_);
    if (const auto deadline = m_.pc_->next_timer_deadline())
      wait = *deadline > now ? std::min(*deadline - now, wait) : 0;
  }
  // Wake early for a kick (another vCPU's IPI or request) and, on the BSP, console input
  // and the networks.
  std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
  if (index_ == 0) {
    if (!m_.terminal_->input_ended()) fds.push_back(pollfd{0, POLLIN, 0});
    const std::lock_guard lock(m_.device_lock_);
    if (m_.network_) m_.network_->poll_fds(&fds, &wait);
  }
  if (wait == 0) return;
  const timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
  ppoll(fds.data(), fds.size(), &ts, nullptr);
  uint64_t drained = 0;
  (void)!::read(wake_fd_, &drained, sizeof drained);
  idle_ns_ += m_.clock_.now_ns() - now;
}

MachineExit Vcpu::run() {
  CpuState& cpu = ctx_->cpu;
  for (;;) {
    serve_mailbox();
    if (const auto exit = m_.pending_exit()) return *exit;
    if (!service_host()) return MachineExit::UserQuit;
    if (index_ == 0 && m_.reset_requested_.load()) {
      if (!m_.reboots()) return MachineExit::Reset;
      m_.reboot();
    }
    if (waiting_for_sipi_) {
      disarm_host_timer();
      idle_wait(true);
      continue;
    }
    if (cpu.halted) {
      // Nothing can wake it: no interrupt with IF=0, no NMI (or one blocked until an IRET).
      // An AP in that state waits for INIT (how SeaBIOS and Linux park them).
      const bool wakeable = (cpu.eflags & flags::IF) || cpu.pending.nmi_deliverable();
      if (!wakeable && index_ == 0) return MachineExit::PowerOff;
      bool pending = false;
      {
        const std::lock_guard lock(m_.device_lock_);
        pending = m_.pc_->interrupt_pending(index_);
      }
      if (!wakeable || (!pending && !cpu.pending.nmi_deliverable())) {
        disarm_host_timer();  // the periodic re-tick would cut every sleep short
        idle_wait(false);
        continue;
      }
    }
    arm_host_timer();
    if (!bt_) {
      const RunResult r = m_.tracer_.active() ? RunResult{step_traced(), 1} : interp_->run(kInterpSlice);
      if (r.status == StepStatus::Unimplemented || r.status == StepStatus::Unsupported) {
        detail_ = interp_->detail();
        return MachineExit::Unsupported;
      }
      continue;  // Retired (slice done), Halted, TripleFault: handled at the top
    }
    switch (bt_->run(kDispatchSlice, interrupt_deliverable_thunk, this)) {
      case EngineStop::Budget:
      case EngineStop::Halted:
      case EngineStop::TripleFault: break;
      case EngineStop::Interrupt:
        // The interpreter delivers it through the IDT (and leaves hlt).
        if (interp_->step() == StepStatus::TripleFault) m_.triple_fault_ = true;
        break;
      case EngineStop::Unimplemented: detail_ = bt_->detail(); return MachineExit::Unsupported;
    }
  }
}

StepStatus Vcpu::step_traced() {
  const CpuState& cpu = ctx_->cpu;
  const uint32_t linear = cpu.sreg(SegReg::Cs).base + cpu.eip;
  const WalkResult w = walk_fetch(m_.mem_, cpu, GuestLinear{linear}, false);
  const GuestPhys phys = w.ok ? w.phys : GuestPhys{~0ull};
  const uint32_t available = kPageSize - (linear & kPageMask);
  if (const uint8_t* code = m_.mem_.host_ptr(phys, std::min<uint32_t>(available, 15))) {
    m_.tracer_.instruction(cpu, {code, std::min<uint32_t>(available, 15)});
  }
  const StepStatus s = interp_->step();
  return s == StepStatus::EventDelivered ? StepStatus::Retired : s;
}

}  // namespace vmm86
