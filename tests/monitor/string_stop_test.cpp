// A host timer signal that lands inside a host string instruction of translated code (a
// long `rep stos`, which the poll page cannot interrupt) stops it there through
// leave_host_string_instruction(): the guest state is precise (EIP on the instruction,
// ECX/ESI/EDI at the next element, the flags of the last element done), the instruction
// goes on afterwards, and the end state and retired count equal the interpreter's.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/bt_machine.h"
#include "vmm/engine/fault_handler.h"

namespace vmm86::bttest {
namespace {

using namespace asmjit;

extern "C" void stop_string_on_timer(int, siginfo_t*, void* ucontext) {
  const int saved_errno = errno;
  (void)leave_host_string_instruction(ucontext);
  errno = saved_errno;
}

/// A POSIX timer that sends SIGALRM to this thread every `period_ns` while it exists.
class StringStopTimer {
 public:
  explicit StringStopTimer(long period_ns) {
    struct sigaction sa {};
    sa.sa_sigaction = stop_string_on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &previous_);
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGALRM;
    sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    ok_ = timer_create(CLOCK_MONOTONIC, &sev, &timer_) == 0;
    itimerspec spec{};
    spec.it_value.tv_nsec = period_ns;
    spec.it_interval.tv_nsec = period_ns;
    if (ok_) timer_settime(timer_, 0, &spec, nullptr);
  }
  ~StringStopTimer() {
    if (ok_) timer_delete(timer_);
    sigaction(SIGALRM, &previous_, nullptr);
  }
  StringStopTimer(const StringStopTimer&) = delete;
  StringStopTimer& operator=(const StringStopTimer&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  timer_t timer_{};
  bool ok_ = false;
  struct sigaction previous_ {};
};

constexpr uint32_t kBytes = 512 * 1024;
constexpr uint32_t kSecond = kData + kBytes;  ///< a second buffer right after the first

/// Runs `body` `rounds` times (EBX counts down), then halts; on both engines, with the
/// timer on, and compares them. Returns the stops made. (A 512 KiB rep takes about 0.3 ms
/// translated; a shorter period mostly measures the host's signal delivery.)
uint64_t run_with_timer(const std::function<void(x86::Assembler&)>& body, uint32_t rounds, long period_ns = 100'000) {
  TwoRuns runs;
  runs.setup([&](BtMachine& m) {
    GuestCode c(kCode);
    auto& a = c.a();
    Label loop = a.newLabel();
    a.mov(x86::ebx, rounds);
    a.bind(loop);
    body(a);
    a.dec(x86::ebx);
    a.jnz(loop);
    a.hlt();
    m.load(c);
    m.start(kCode, kStackTop, false);
  });
  StringStopTimer timer(period_ns);
  EXPECT_TRUE(timer.ok());
  runs.run_and_compare();
  return runs.bt.engine().fault_stats().string_stops;
}

TEST(StringStop, RepStosStoppedByTheTimerEndsAsTheInterpreter) {
  const uint64_t stops = run_with_timer(
      [](x86::Assembler& a) {
        a.mov(x86::edi, kData);
        a.mov(x86::ecx, kBytes);
        a.mov(x86::eax, x86::ebx);
        a.rep().stosb();
      },
      16);
  EXPECT_GT(stops, 0u) << "the timer never landed in the rep stosb";
}

TEST(StringStop, RepMovsdBackwardStoppedByTheTimer) {
  const uint64_t stops = run_with_timer(
      [](x86::Assembler& a) {
        a.std();
        a.mov(x86::esi, kData + kBytes - 4);
        a.mov(x86::edi, kSecond + kBytes - 4);
        a.mov(x86::ecx, kBytes / 4);
        a.rep().movsd();
        a.cld();
        a.add(x86::dword_ptr(kData + 8), x86::ebx);
      },
      16);
  EXPECT_GT(stops, 0u);
}

TEST(StringStop, RepeCmpsbKeepsItsFlagsAndPointersWhenStopped) {
  // Equal buffers but for their last byte: the repe runs to it; at any stop the flags
  // are those of the last comparison (equal), which the interpreter then goes on from.
  const uint64_t stops = run_with_timer(
      [](x86::Assembler& a) {
        a.mov(x86::byte_ptr(kSecond + kBytes - 1), 1);
        a.mov(x86::esi, kData);
        a.mov(x86::edi, kSecond);
        a.mov(x86::ecx, kBytes);
        a.repe().cmpsb();
        a.setne(x86::al);
        a.movzx(x86::eax, x86::al);
        a.add(x86::dword_ptr(kScratch), x86::eax);  // counts the differences found
      },
      16);
  EXPECT_GT(stops, 0u);
}

}  // namespace
}  // namespace vmm86::bttest
