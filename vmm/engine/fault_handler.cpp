#include "vmm/engine/fault_handler.h"

#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace vmm86 {

namespace {

thread_local ActiveEngine* t_active = nullptr;
FatalReportFn g_fatal_report = nullptr;
FatalCleanupFn g_fatal_cleanup = nullptr;
constexpr size_t kAltStackBytes = 64 * 1024;
constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

void write_str(const char* s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

/// The fatal path. Returns with `sig` reset to its default action and raised (blocked
/// while the handler runs, it is delivered on return and ends the process).
void die(int sig, siginfo_t* si, ucontext_t* uc) {
  if (g_fatal_cleanup) g_fatal_cleanup();
  char buf[256];
  const auto& g = uc->uc_mcontext.gregs;
  snprintf(buf, sizeof buf, "\r\nvmm86: internal error: signal %d (%s) at host pc %#llx, address %p\r\n", sig,
           strsignal(sig), static_cast<unsigned long long>(g[REG_RIP]), si->si_addr);
  write_str(buf);
  if (g_fatal_report) g_fatal_report(STDERR_FILENO);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

/// Translated code runs on the return stack; the monitor's C++ (the dispatcher, a callout
/// that may be translating, dropping blocks or allocating right now) on the host stack or
/// the signal stack. A signal that finds RSP on the return stack and the PC in a block has
/// interrupted no C++: the heap, the code cache's tables and the shadow MMU's maps are
/// between calls, and the handler may use them (ShadowMmu::fill allocates).
bool on_return_stack(const ActiveEngine& e, const ucontext_t* uc) {
  const auto rsp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSP]);
  const uint64_t top = e.ctx->return_stack_top + 8;
  return rsp <= top && rsp >= top - kReturnStackBytes;
}

/// Sends translated code to the exit trampoline with `exit` and the guest EIP of the
/// instruction at the faulting host PC.
bool redirect(ucontext_t* uc, ActiveEngine& e, ExitRecord* exit) {
  auto& g = uc->uc_mcontext.gregs;
  GuestLocation where;
  if (!e.translator->locate(reinterpret_cast<void*>(g[REG_RIP]), &where)) return false;
  e.ctx->cpu.eip = where.eip;
  where.apply(g, e.ctx->window_base);  // so that the interpreter resumes precisely
  g[REG_R13] = reinterpret_cast<greg_t>(exit);
  g[REG_RIP] = reinterpret_cast<greg_t>(e.translator->exit_trampoline());
  return true;
}

void on_fault(int sig, siginfo_t* si, void* raw) {
  auto* uc = static_cast<ucontext_t*>(raw);
  ActiveEngine* e = t_active;
  const void* pc = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
  // SIGILL from the code cache is a translator bug (an encoding the host rejects), not a
  // guest #UD: those are raised by the interpreter.
  if (sig == SIGILL || !e || !e->translator->in_code_cache(pc)) return die(sig, si, uc);

  if (sig == SIGSEGV && is_return_stack_guard(e->ctx, si->si_addr)) {
    // A push (a host call, a pushf) ran off the return stack: start it over and retry.
    // The host calls it held lose their pairing, so their guest rets take the miss path.
    ++e->stats.return_stack_resets;
    uc->uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(e->ctx->return_stack_top);
    return;
  }
  if (sig == SIGSEGV && is_poll_page(e->ctx, si->si_addr)) {
    ++e->stats.polls;
    if (!redirect(uc, *e, e->translator->poll_exit())) die(sig, si, uc);
    return;
  }
  e->last = RedirectedFault{sig, FillOutcome::Mapped, GuestLinear{}, false};
  if (sig == SIGSEGV) {
    AddressWindow& w = e->mmu->window(e->user_window);
    if (w.contains(si->si_addr)) {
      // With the PC in a block (checked above), the rule that makes allocating here safe.
      if (!on_return_stack(*e, uc)) return die(sig, si, uc);
      const GuestLinear linear = w.linear_of(si->si_addr);
      const bool write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;  // #PF error code, W bit
      const FillResult r = e->mmu->fill(e->user_window, linear, write);
      if (r.outcome == FillOutcome::Mapped) {
        ++e->stats.fills;
        return;  // retry the access
      }
      e->last = RedirectedFault{sig, r.outcome, linear, write};
      switch (r.outcome) {
        case FillOutcome::GuestPageFault: ++e->stats.page_faults; break;
        case FillOutcome::Mmio: ++e->stats.mmio; break;
        case FillOutcome::CodeWrite: ++e->stats.code_writes; break;
        case FillOutcome::Mapped: break;
      }
    } else {
      ++e->stats.other;
    }
  } else {
    ++e->stats.other;
  }
  ++e->stats.redirected;
  if (!redirect(uc, *e, e->translator->fault_exit())) die(sig, si, uc);
}

}  // namespace

bool leave_host_string_instruction(void* ucontext) {
  ActiveEngine* e = t_active;
  if (!e || !ucontext) return false;
  auto* uc = static_cast<ucontext_t*>(ucontext);
  auto& g = uc->uc_mcontext.gregs;
  // Only then are the code cache's tables quiescent (locate() checks the PC).
  if (!on_return_stack(*e, uc)) return false;
  GuestLocation where;
  if (!e->translator->locate(reinterpret_cast<void*>(g[REG_RIP]), &where) || where.host_pointer_regs == 0) {
    return false;  // elsewhere, the poll page stops it at the next block boundary
  }
  if (!redirect(uc, *e, e->translator->poll_exit())) return false;
  ++e->stats.string_stops;
  return true;
}

Status install_fault_handler() {
  static thread_local bool stack_installed = false;
  if (!stack_installed) {
    stack_t ss{};
    ss.ss_sp = std::malloc(kAltStackBytes);
    ss.ss_size = kAltStackBytes;
    if (!ss.ss_sp) return make_error("cannot allocate the {} KiB alternate signal stack", kAltStackBytes >> 10);
    if (sigaltstack(&ss, nullptr) != 0) {
      const int why = errno;
      std::free(ss.ss_sp);
      return make_error("sigaltstack: {}", strerror(why));
    }
    stack_installed = true;
  }
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : kFaultSignals) {
    if (sigaction(sig, &sa, nullptr) != 0) return make_error("sigaction for signal {}: {}", sig, strerror(errno));
  }
  return ok_status();
}

void set_active_engine(ActiveEngine* engine) { t_active = engine; }

void set_fatal_report(FatalReportFn fn) { g_fatal_report = fn; }

void set_fatal_cleanup(FatalCleanupFn fn) { g_fatal_cleanup = fn; }

}  // namespace vmm86
