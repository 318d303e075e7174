#include "tests/shadow-mmu/fault_probe.h"

#include <setjmp.h>
#include <ucontext.h>

#include <cstdlib>

namespace vmm86::test {

namespace {

// A correct fill() maps what the retried access needs, so one access takes at most two
// fills (a read-only mapping, then the upgrade for a write); more means fill() answers
// Mapped without mapping (the livelock the engine would spin in).
constexpr unsigned kMaxFills = 4;

/// State shared with the handler; a plain global because signal handlers take no context.
struct ProbeState {
  ShadowMmu* mmu = nullptr;
  bool user = false;
  sigjmp_buf env;
  ProbeResult result;
};
ProbeState g_probe;

void on_segv(int, siginfo_t* si, void* raw) {
  const auto* uc = static_cast<const ucontext_t*>(raw);
  ProbeState& s = g_probe;
  AddressWindow& w = s.mmu->window(s.user);
  if (!w.contains(si->si_addr) || s.result.fills >= kMaxFills) {
    s.result.stray = true;
    siglongjmp(s.env, 1);
  }
  const bool write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;  // host #PF error code, W bit
  const FillResult r = s.mmu->fill(s.user, w.linear_of(si->si_addr), write);
  if (r.outcome == FillOutcome::Mapped) {
    ++s.result.fills;
    return;  // retry the access
  }
  s.result.outcome = r.outcome;
  s.result.error_code = r.error_code;
  siglongjmp(s.env, 1);
}

}  // namespace

FaultProbe::FaultProbe(ShadowMmu& mmu) : mmu_(mmu) {
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &previous_) != 0) std::abort();
}

FaultProbe::~FaultProbe() { sigaction(SIGSEGV, &previous_, nullptr); }

ProbeResult FaultProbe::read32(bool user, uint32_t linear) { return access(user, linear, false, 0); }

ProbeResult FaultProbe::write32(bool user, uint32_t linear, uint32_t value) {
  return access(user, linear, true, value);
}

ProbeResult FaultProbe::access(bool user, uint32_t linear, bool write, uint32_t value) {
  g_probe.mmu = &mmu_;
  g_probe.user = user;
  g_probe.result = ProbeResult{};
  auto* p = reinterpret_cast<volatile uint32_t*>(mmu_.window(user).base() + linear);
  // savemask=1: the handler runs with SIGSEGV blocked, and the jump back must unblock it.
  if (sigsetjmp(g_probe.env, 1) == 0) {
    if (write) {
      *p = value;
    } else {
      g_probe.result.value = *p;
    }
    g_probe.result.completed = true;
  }
  return g_probe.result;
}

}  // namespace vmm86::test
