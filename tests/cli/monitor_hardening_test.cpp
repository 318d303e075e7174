// The built vmm86 binary against guests and events that must not take the monitor down or
// leave the user's terminal broken: a monitor crash (made on purpose through the
// VMM86_TEST_CRASH hook), SIGTERM/SIGINT/SIGHUP, Ctrl-A x during one very long `rep stosb`
// and with the UART full, a PIT far faster than the guest can run, `cli; hlt`, and
// --stats. vmm86 runs on a pseudo-terminal as a user would run it; the guests are small
// synthetic bzImages whose 32-bit entry holds code assembled here.
#include <asmjit/x86.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/loader/test_files.h"
#include "vmm/machine/config.h"

namespace vmm86 {
namespace {

using namespace asmjit;
using Clock = std::chrono::steady_clock;

// The loader puts a relocatable kernel's protected-mode code at its preferred address.
constexpr uint32_t kEntry = 0x1000000;
constexpr uint32_t kScratch = 0x1100000;  ///< guest RAM past the image: IDT, counters
constexpr uint16_t kCom1 = 0x3F8;

/// Guest code at kEntry: `body`, assembled for 32-bit protected mode.
std::vector<uint8_t> assemble(const std::function<void(x86::Assembler&)>& body) {
  CodeHolder code;
  code.init(Environment(Arch::kX86), kEntry);
  x86::Assembler a(&code);
  body(a);
  EXPECT_EQ(code.flatten(), kErrorOk);
  EXPECT_EQ(code.resolveUnresolvedLinks(), kErrorOk);
  EXPECT_EQ(code.relocateToBase(kEntry), kErrorOk);
  std::vector<uint8_t> bytes(code.codeSize());
  code.copyFlattenedData(bytes.data(), bytes.size());
  return bytes;
}

void emit_putc(x86::Assembler& a, char c) {
  a.mov(x86::dx, kCom1);
  a.mov(x86::al, static_cast<uint8_t>(c));
  a.out(x86::dx, x86::al);
}

/// A bzImage whose 32-bit entry is `code` (the rest hlt).
std::unique_ptr<test::TempFile> kernel_with(const std::vector<uint8_t>& code) {
  test::FakeKernel k;
  std::vector<uint8_t> image = test::make_bzimage(k);
  const size_t entry = (size_t{k.setup_sects} + 1) * 512;
  std::fill(image.begin() + static_cast<std::ptrdiff_t>(entry), image.end(), 0xF4);
  std::copy(code.begin(), code.end(), image.begin() + static_cast<std::ptrdiff_t>(entry));
  return std::make_unique<test::TempFile>(image);
}

/// Prints "R", then spins with interrupts off.
std::vector<uint8_t> spinning_guest() {
  return assemble([](x86::Assembler& a) {
    emit_putc(a, 'R');
    a.cli();
    Label spin = a.newLabel();
    a.bind(spin);
    a.jmp(spin);
  });
}

/// Prints "R", then one `rep stosb` of 0xFFFFFFF0 bytes from past the image (through the
/// rest of RAM, the unbacked addresses above it, around 4G and back), then "D".
std::vector<uint8_t> long_rep_stos_guest() {
  return assemble([](x86::Assembler& a) {
    emit_putc(a, 'R');
    a.cli();
    a.cld();
    a.mov(x86::edi, kScratch);
    a.mov(x86::ecx, 0xFFFFFFF0u);
    a.xor_(x86::eax, x86::eax);
    a.rep().stosb();
    emit_putc(a, 'D');
    a.hlt();
  });
}

struct PtyRun {
  int wstatus = -1;
  bool timed_out = false;
  std::string console;  ///< what vmm86 wrote to the terminal
  std::string err;      ///< its stderr
  bool cooked_after = false;
  double seconds = 0;  ///< from `act` returning true to the end
};

/// What the test does while vmm86 runs: called with the console output so far; returns
/// true once it has acted (keys sent, a signal raised), after which the clock runs.
using Act = std::function<bool(pid_t pid, int master, const std::string& console)>;

/// Runs vmm86 `args` with stdin and stdout on a fresh pseudo-terminal (cooked), `env`
/// added to the environment, until it ends or `limit` passes (then it is killed).
PtyRun run_on_pty(const std::vector<std::string>& args, const std::vector<std::string>& env, const Act& act,
                  std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  PtyRun run;
  int master = -1, slave = -1;
  if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) {
    ADD_FAILURE() << "openpty: " << std::strerror(errno);
    return run;
  }
  const std::string err_path = ::testing::TempDir() + "/vmm86-pty-err-" + std::to_string(getpid());
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(err, 2);
    close(master);
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string binary = VMM86_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (auto& s : copies) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  const auto start = Clock::now();
  std::optional<Clock::time_point> acted;
  for (;;) {
    pollfd p{master, POLLIN, 0};
    poll(&p, 1, 10);
    char buf[4096];
    ssize_t n;
    while ((n = read(master, buf, sizeof buf)) > 0) run.console.append(buf, static_cast<size_t>(n));
    if (waitpid(pid, &run.wstatus, WNOHANG) == pid) break;
    if (!acted && act(pid, master, run.console)) acted = Clock::now();
    if (Clock::now() - start > limit) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &run.wstatus, 0);
      break;
    }
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - acted.value_or(start)).count();
  termios t{};
  tcgetattr(slave, &t);
  run.cooked_after = (t.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG);
  std::ifstream in(err_path);
  std::stringstream s;
  s << in.rdbuf();
  run.err = s.str();
  std::remove(err_path.c_str());
  close(master);
  close(slave);
  return run;
}

/// Acts once the guest printed `marker`, after `settle` more.
Act when_printed(char marker, std::function<void(pid_t, int)> action,
                 std::chrono::milliseconds settle = std::chrono::milliseconds(200)) {
  return [=, seen = std::optional<Clock::time_point>()](pid_t pid, int master, const std::string& console) mutable {
    if (!seen && console.find(marker) != std::string::npos) seen = Clock::now();
    if (!seen || Clock::now() - *seen < settle) return false;
    action(pid, master);
    return true;
  };
}

Act never() {
  return [](pid_t, int, const std::string&) { return false; };
}

std::string describe(const PtyRun& r) {
  std::string status = WIFEXITED(r.wstatus)     ? "exit " + std::to_string(WEXITSTATUS(r.wstatus))
                       : WIFSIGNALED(r.wstatus) ? "signal " + std::to_string(WTERMSIG(r.wstatus))
                                                : "?";
  return status + (r.timed_out ? " (timed out, killed)" : "") + "\n  console: " + r.console + "\n  stderr: " + r.err;
}

// ---- A monitor crash restores the terminal ----------------------------------------------

TEST(MonitorCrash, RestoresTheTerminalPrintsOneLineAndDiesOfTheSignal) {
  auto kernel = kernel_with(spinning_guest());
  const std::pair<const char*, int> cases[] = {{"segv", SIGSEGV}, {"ill", SIGILL}, {"bus", SIGBUS}, {"fpe", SIGFPE}};
  for (const char* engine : {"bt", "interp"}) {
    for (const auto& [how, sig] : cases) {
      const std::string what = std::string(engine) + " " + how;
      const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine},
                                  {std::string("VMM86_TEST_CRASH=") + how}, never());
      EXPECT_FALSE(r.timed_out) << what << ": " << describe(r);
      ASSERT_TRUE(WIFSIGNALED(r.wstatus)) << what << ": " << describe(r);
      EXPECT_EQ(WTERMSIG(r.wstatus), sig) << what;
      EXPECT_TRUE(r.cooked_after) << what << ": the terminal was left in raw mode";
      EXPECT_NE(r.err.find("vmm86: internal error: signal " + std::to_string(sig)), std::string::npos)
          << what << ": " << describe(r);
    }
  }
}

// ---- SIGTERM, SIGINT, SIGHUP end the run cleanly ----------------------------------------

TEST(MonitorSignals, EndTheRunCleanlyAndDieOfTheSignal) {
  auto spin = kernel_with(spinning_guest());
  auto rep = kernel_with(long_rep_stos_guest());
  for (const char* engine : {"bt", "interp"}) {
    for (const auto* kernel : {spin.get(), rep.get()}) {
      for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
        const std::string what = std::string(engine) + (kernel == spin.get() ? " spinning" : " in rep stosb") +
                                 ", signal " + std::to_string(sig);
        const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine, "--stats"},
                                    {}, when_printed('R', [sig](pid_t pid, int) { kill(pid, sig); }));
        ASSERT_TRUE(WIFSIGNALED(r.wstatus)) << what << ": " << describe(r);
        EXPECT_EQ(WTERMSIG(r.wstatus), sig) << what;
        EXPECT_LT(r.seconds, 2.0) << what;
        EXPECT_TRUE(r.cooked_after) << what;
        EXPECT_NE(r.err.find("vmm86: terminating on signal " + std::to_string(sig)), std::string::npos)
            << what << ": " << describe(r);
        EXPECT_NE(r.err.find("vmm86 statistics"), std::string::npos) << what << ": the run ended through its exit path";
      }
    }
  }
}

// ---- Ctrl-A x acts at once -----------------------------------------------------------------

TEST(MonitorQuit, CtrlAXDuringOneLongRepStos) {
  auto kernel = kernel_with(long_rep_stos_guest());
  for (const char* engine : {"bt", "interp"}) {
    const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine}, {},
                                when_printed('R', [](pid_t, int master) { (void)!write(master, "\x01x", 2); }));
    EXPECT_FALSE(r.timed_out) << engine << ": " << describe(r);
    ASSERT_TRUE(WIFEXITED(r.wstatus)) << engine << ": " << describe(r);
    EXPECT_EQ(WEXITSTATUS(r.wstatus), kExitOk) << engine;
    EXPECT_NE(r.err.find("quit (Ctrl-A x)"), std::string::npos) << engine << ": " << describe(r);
    EXPECT_LT(r.seconds, 1.0) << engine << ": Ctrl-A x took that long";
    EXPECT_EQ(r.console.find('D'), std::string::npos) << engine << ": the rep had finished already";
    EXPECT_TRUE(r.cooked_after) << engine;
  }
}

TEST(MonitorQuit, CtrlAXDuringOneLongRepStosOverMappedRam) {
  // With 1.5G the translated rep runs as one host `rep stosb` over pages the host is
  // still allocating; a timer tick that lands in the window-fill handler instead of the
  // rep cannot stop it, the next tick must (it took seconds when there was none). A tick
  // lands there about one time in four: three runs.
  auto kernel = kernel_with(long_rep_stos_guest());
  for (int run = 0; run < 3; ++run) {
    const PtyRun r = run_on_pty(
        {"run", "--kernel", kernel->path(), "--mem", "1536M"}, {},
        when_printed(
            'R', [](pid_t, int master) { (void)!write(master, "\x01x", 2); }, std::chrono::milliseconds(100)));
    EXPECT_FALSE(r.timed_out) << describe(r);
    ASSERT_TRUE(WIFEXITED(r.wstatus)) << describe(r);
    EXPECT_EQ(WEXITSTATUS(r.wstatus), kExitOk);
    EXPECT_LT(r.seconds, 1.0) << "Ctrl-A x took that long";
    EXPECT_EQ(r.console.find('D'), std::string::npos) << "the rep had finished already";
  }
}

TEST(MonitorQuit, CtrlAXWhenTheGuestReadsNoInput) {
  // The guest never reads its UART: more keys than its FIFO holds come before Ctrl-A x.
  auto kernel = kernel_with(spinning_guest());
  for (const char* engine : {"bt", "interp"}) {
    const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine}, {},
                                when_printed('R', [](pid_t, int master) {
                                  const std::string keys = std::string(100, 'k') + "\x01x";
                                  (void)!write(master, keys.data(), keys.size());
                                }));
    EXPECT_FALSE(r.timed_out) << engine << ": " << describe(r);
    ASSERT_TRUE(WIFEXITED(r.wstatus)) << engine << ": " << describe(r);
    EXPECT_EQ(WEXITSTATUS(r.wstatus), kExitOk) << engine;
    EXPECT_LT(r.seconds, 1.0) << engine;
    EXPECT_TRUE(r.cooked_after) << engine;
  }
}

// ---- A timer faster than the guest ----------------------------------------------------------

/// Programs the PIC (IRQ0 only, vector 0x20) and the PIT at `divisor`, counts ticks in a
/// handler, runs `iterations` of a dec/jnz loop with interrupts on, then prints "OK" and
/// whether ticks came ("T"), and powers off (cli; hlt).
std::vector<uint8_t> fast_timer_guest(uint16_t divisor, uint32_t iterations) {
  constexpr uint32_t kIdt = kScratch;
  constexpr uint32_t kIdtr = kScratch + 0x800;
  constexpr uint32_t kTicks = kScratch + 0x810;
  return assemble([&](x86::Assembler& a) {
    Label handler = a.newLabel(), loop = a.newLabel(), no_ticks = a.newLabel();
    a.cli();
    // IDT gate 0x20 -> handler (interrupt gate, CS 0x10).
    a.lea(x86::eax, x86::ptr(handler));
    a.mov(x86::edx, x86::eax);
    a.and_(x86::edx, 0xFFFF);
    a.or_(x86::edx, 0x10u << 16);
    a.mov(x86::dword_ptr(kIdt + 8 * 0x20), x86::edx);
    a.and_(x86::eax, 0xFFFF0000u);
    a.or_(x86::eax, 0x8E00);
    a.mov(x86::dword_ptr(kIdt + 8 * 0x20 + 4), x86::eax);
    a.mov(x86::word_ptr(kIdtr), 0x7FF);
    a.mov(x86::dword_ptr(kIdtr + 2), kIdt);
    a.lidt(x86::ptr(kIdtr));
    a.mov(x86::dword_ptr(kTicks), 0);
    auto out = [&](uint16_t port, uint8_t value) {
      a.mov(x86::al, value);
      a.out(Imm(port), x86::al);
    };
    // PICs: ICW1-4, master vectors 0x20, slave 0x28, everything masked but IRQ0.
    out(0x20, 0x11), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x01), out(0x21, 0xFE);
    out(0xA0, 0x11), out(0xA1, 0x28), out(0xA1, 0x02), out(0xA1, 0x01), out(0xA1, 0xFF);
    // PIT channel 0, lobyte/hibyte, mode 2 (rate generator).
    out(0x43, 0x34), out(0x40, static_cast<uint8_t>(divisor)), out(0x40, static_cast<uint8_t>(divisor >> 8));
    a.mov(x86::ecx, iterations);
    a.sti();
    a.bind(loop);
    a.dec(x86::ecx);
    a.jnz(loop);
    a.cli();
    emit_putc(a, 'O');
    emit_putc(a, 'K');
    a.cmp(x86::dword_ptr(kTicks), 0);
    a.je(no_ticks);
    emit_putc(a, 'T');
    a.bind(no_ticks);
    a.hlt();

    a.bind(handler);
    a.push(x86::eax);
    a.inc(x86::dword_ptr(kTicks));
    a.mov(x86::al, 0x20);
    a.out(Imm(0x20), x86::al);  // EOI
    a.pop(x86::eax);
    a.iretd();
  });
}

TEST(MonitorTimers, A600KHzPitStillLetsTheGuestRun) {
  // Divisor 2: 1.19 MHz / 2 ≈ 600 kHz. Delivering the next tick right at each iret would
  // leave the loop no instruction at all (as it did on the binary translator).
  auto kernel = kernel_with(fast_timer_guest(2, 2'000'000));
  for (const char* engine : {"bt", "interp"}) {
    const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine, "--stats"}, {},
                                never(), std::chrono::seconds(30));
    EXPECT_FALSE(r.timed_out) << engine << ": no progress; " << describe(r);
    ASSERT_TRUE(WIFEXITED(r.wstatus)) << engine << ": " << describe(r);
    EXPECT_EQ(WEXITSTATUS(r.wstatus), kExitOk) << engine << ": " << describe(r);
    EXPECT_NE(r.console.find("OKT"), std::string::npos) << engine << ": the loop ended and ticks came; " << describe(r);
  }
}

// ---- --stats ----------------------------------------------------------------------------------

/// The instruction counts of --stats: total, translated, interpreted.
struct Counts {
  uint64_t total = 0, translated = 0, interpreted = 0;
};

bool parse_counts(const std::string& err, Counts* c) {
  const std::regex line(R"(guest instructions\s+(\d+): translated (\d+) \([^)]*\), interpreted (\d+))");
  std::smatch m;
  if (!std::regex_search(err, m, line)) return false;
  c->total = std::stoull(m[1]);
  c->translated = std::stoull(m[2]);
  c->interpreted = std::stoull(m[3]);
  return true;
}

TEST(MonitorStats, InstructionCountsAddUpAndNeverWrap) {
  // Guests that leave translated code in the middle of blocks in every way: faults
  // (the rep over unbacked memory), interrupts, callouts (port I/O), a quit mid-run.
  auto timer = kernel_with(fast_timer_guest(2, 200'000));
  auto rep = kernel_with(long_rep_stos_guest());
  for (const char* engine : {"bt", "interp"}) {
    for (const auto* kernel : {timer.get(), rep.get()}) {
      const PtyRun r = run_on_pty(
          {"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine, "--stats"}, {},
          kernel == rep.get() ? when_printed('R', [](pid_t, int master) { (void)!write(master, "\x01x", 2); })
                              : never(),
          std::chrono::seconds(30));
      Counts c;
      ASSERT_TRUE(parse_counts(r.err, &c)) << engine << ": " << describe(r);
      EXPECT_EQ(c.total, c.translated + c.interpreted) << engine;
      EXPECT_LT(c.total, uint64_t{1} << 40) << engine << ": wrapped below zero; " << r.err;
      EXPECT_GT(c.total, 0u) << engine;
      if (std::string(engine) == "interp") {
        EXPECT_EQ(c.translated, 0u);
      }
    }
  }
}

// ---- cli; hlt ---------------------------------------------------------------------------------

TEST(MonitorHalt, CliHltEndsTheRunOnBothEngines) {
  auto kernel = kernel_with(assemble([](x86::Assembler& a) {
    emit_putc(a, 'R');
    a.cli();
    a.hlt();
  }));
  for (const char* engine : {"bt", "interp"}) {
    const PtyRun r = run_on_pty({"run", "--kernel", kernel->path(), "--mem", "64M", "--engine", engine}, {}, never(),
                                std::chrono::seconds(10));
    EXPECT_FALSE(r.timed_out) << engine << ": " << describe(r);
    ASSERT_TRUE(WIFEXITED(r.wstatus)) << engine << ": " << describe(r);
    EXPECT_EQ(WEXITSTATUS(r.wstatus), kExitOk) << engine;
    EXPECT_NE(r.err.find("halted with interrupts disabled"), std::string::npos) << engine << ": " << describe(r);
    EXPECT_TRUE(r.cooked_after) << engine;
  }
}

}  // namespace
}  // namespace vmm86
