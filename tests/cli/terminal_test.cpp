// The console terminal: the Ctrl-A state machine as a pure function, then the Terminal on
// pipes, /dev/null, a closed descriptor and a pseudo-terminal (raw mode and its restore).
#include "vmm/machine/terminal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

namespace vmm86 {
namespace {

using console_escape::Action;
using console_escape::State;
using console_escape::Step;

constexpr uint8_t kCtrlA = 0x01;

/// Feeds `input` through the state machine; returns what the guest gets, and the actions.
struct Fed {
  std::string guest;
  int quits = 0;
  int helps = 0;
  State final_state = State::Normal;
};

Fed feed(const std::string& input) {
  Fed fed;
  State state = State::Normal;
  for (char c : input) {
    const Step s = console_escape::step(state, static_cast<uint8_t>(c));
    state = s.next;
    if (s.action == Action::Forward) fed.guest.push_back(static_cast<char>(s.byte));
    fed.quits += s.action == Action::Quit;
    fed.helps += s.action == Action::Help;
  }
  fed.final_state = state;
  return fed;
}

TEST(ConsoleEscape, SingleSteps) {
  EXPECT_EQ(console_escape::step(State::Normal, 'a'), (Step{State::Normal, Action::Forward, 'a'}));
  EXPECT_EQ(console_escape::step(State::Normal, kCtrlA), (Step{State::AfterEscape, Action::None, 0}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, 'x'), (Step{State::Normal, Action::Quit, 0}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, 'X'), (Step{State::Normal, Action::Quit, 0}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, kCtrlA), (Step{State::Normal, Action::Forward, kCtrlA}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, 'h'), (Step{State::Normal, Action::Help, 0}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, '?'), (Step{State::Normal, Action::Help, 0}));
  EXPECT_EQ(console_escape::step(State::AfterEscape, 'q'), (Step{State::Normal, Action::None, 0}));
}

TEST(ConsoleEscape, Sequences) {
  EXPECT_EQ(feed("ls -l\r").guest, "ls -l\r");
  EXPECT_EQ(feed("\x03").guest, "\x03");  // Ctrl-C goes to the guest
  const Fed quit = feed("ab\x01xcd");
  EXPECT_EQ(quit.guest, "abcd");  // the machine itself goes on; Terminal stops reading
  EXPECT_EQ(quit.quits, 1);
  EXPECT_EQ(feed("\x01\x01").guest, "\x01");
  EXPECT_EQ(feed("\x01\x01x").guest, "\x01x");  // a literal Ctrl-A does not arm the escape
  EXPECT_EQ(feed("\x01\x01x").quits, 0);
  EXPECT_EQ(feed("\x01\x01\x01x").quits, 1);
  EXPECT_EQ(feed("a\x01zb").guest, "ab");  // unknown commands are dropped
  EXPECT_EQ(feed("\x01h").helps, 1);
  EXPECT_EQ(feed("\x01").final_state, State::AfterEscape);
}

/// A pipe whose write end the test feeds.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    close_write();
    if (read_fd >= 0) close(read_fd);
  }
  void write_text(const std::string& s) {
    ASSERT_EQ(write(write_fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void close_write() {
    if (write_fd >= 0) close(write_fd);
    write_fd = -1;
  }
};

std::string drain(Terminal& t) {
  std::string got;
  while (auto b = t.poll_input()) got.push_back(static_cast<char>(*b));
  return got;
}

std::unique_ptr<Terminal> open_terminal(const Terminal::Options& options) {
  auto t = Terminal::open(options);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error());
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(Terminal, PipeInputPassesThroughUntouched) {
  Pipe in;
  Pipe out;
  auto t = open_terminal({in.read_fd, out.write_fd, Terminal::Escapes::Auto});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->raw_mode());
  EXPECT_EQ(t->poll_input(), std::nullopt);  // nothing yet, and no blocking
  in.write_text(std::string("echo hi\n\x01x", 10));
  EXPECT_EQ(drain(*t), std::string("echo hi\n\x01x", 10));
  EXPECT_FALSE(t->quit_requested());
  EXPECT_FALSE(t->input_ended());
  in.close_write();
  EXPECT_EQ(t->poll_input(), std::nullopt);
  EXPECT_TRUE(t->input_ended());
}

TEST(Terminal, EscapesWhenAskedFor) {
  Pipe in;
  Pipe out;
  auto t = open_terminal({in.read_fd, out.write_fd, Terminal::Escapes::On});
  ASSERT_TRUE(t);
  in.write_text(
      "ab\x01\x01"
      "c\x01hd\x01xef");
  EXPECT_EQ(drain(*t),
            "ab\x01"
            "cd");
  EXPECT_TRUE(t->quit_requested());
  EXPECT_EQ(t->poll_input(), std::nullopt);  // nothing after the quit
  char buf[256] = {};
  const ssize_t n = read(out.read_fd, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), console_escape::kHelpText);
}

TEST(Terminal, WritesOutput) {
  Pipe in;
  Pipe out;
  auto t = open_terminal({in.read_fd, out.write_fd, Terminal::Escapes::Auto});
  ASSERT_TRUE(t);
  const std::string text = "Linux version 6.1\r\n";
  t->write_output({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  char buf[64] = {};
  EXPECT_EQ(read(out.read_fd, buf, sizeof buf), static_cast<ssize_t>(text.size()));
  EXPECT_EQ(std::string(buf), text);
}

TEST(Terminal, WritingToAClosedPipeIsDropped) {
  Pipe in;
  Pipe out;
  close(out.read_fd);
  out.read_fd = -1;
  auto t = open_terminal({in.read_fd, out.write_fd, Terminal::Escapes::Auto});
  ASSERT_TRUE(t);
  signal(SIGPIPE, SIG_IGN);  // EPIPE instead of death, as when the shell ignores SIGPIPE
  const uint8_t byte = 'x';
  t->write_output({&byte, 1});
  t->write_output({&byte, 1});
  signal(SIGPIPE, SIG_DFL);
}

TEST(Terminal, DevNullIsAnEmptyInput) {
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  auto t = open_terminal({fd, STDOUT_FILENO, Terminal::Escapes::Auto});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->poll_input(), std::nullopt);
  EXPECT_TRUE(t->input_ended());
  close(fd);
}

TEST(Terminal, ClosedDescriptorIsAnEmptyInput) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  close(fds[1]);  // fds[0] is now a closed descriptor number
  auto t = open_terminal({fds[0], STDOUT_FILENO, Terminal::Escapes::Auto});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->poll_input(), std::nullopt);
  EXPECT_TRUE(t->input_ended());
}

TEST(Terminal, OnlyOneAtATime) {
  Pipe in;
  auto first = open_terminal({in.read_fd, STDOUT_FILENO, Terminal::Escapes::Auto});
  ASSERT_TRUE(first);
  auto second = Terminal::open({in.read_fd, STDOUT_FILENO, Terminal::Escapes::Auto});
  EXPECT_FALSE(second.ok());
  first.reset();
  auto third = Terminal::open({in.read_fd, STDOUT_FILENO, Terminal::Escapes::Auto});
  EXPECT_TRUE(third.ok());
}

/// A pseudo-terminal in its default (cooked) mode.
struct Pty {
  int master = -1;
  int slave = -1;
  Pty() { EXPECT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0); }
  ~Pty() {
    close(master);
    close(slave);
  }
  [[nodiscard]] bool cooked() const {
    termios t{};
    tcgetattr(slave, &t);
    return (t.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG);
  }
};

TEST(Terminal, RawModeOnATerminalAndRestoredAfter) {
  Pty pty;
  ASSERT_TRUE(pty.cooked());
  {
    auto t = open_terminal({pty.slave, pty.slave, Terminal::Escapes::Auto});
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->raw_mode());
    termios raw{};
    tcgetattr(pty.slave, &raw);
    EXPECT_EQ(raw.c_lflag & (ICANON | ECHO | ISIG), 0u);
    EXPECT_EQ(raw.c_iflag & ICRNL, 0u);
    // Keys arrive at once (no line buffering), Ctrl-C included; Ctrl-A x quits.
    ASSERT_EQ(write(pty.master, "a\x03\x01\x01\x01x", 6), 6);
    std::string got;
    for (int i = 0; i < 1000 && !t->quit_requested(); ++i) {
      if (auto b = t->poll_input()) got.push_back(static_cast<char>(*b));
      else usleep(1000);
    }
    // The keys typed before the quit are still queued for the guest.
    while (auto b = t->take_input()) got.push_back(static_cast<char>(*b));
    EXPECT_EQ(got, "a\x03\x01");
    EXPECT_TRUE(t->quit_requested());
  }
  EXPECT_TRUE(pty.cooked());
}

/// In a child: raw mode on the pty, then `end` (a signal or exit()); returns the wait status.
template <typename End>
int child_with_raw_terminal(Pty& pty, End end) {
  const pid_t pid = fork();
  if (pid == 0) {
    auto t = Terminal::open({pty.slave, pty.slave, Terminal::Escapes::Auto});
    if (!t.ok() || !(*t)->raw_mode()) _exit(100);
    end();
    _exit(101);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  return wstatus;
}

TEST(Terminal, RestoredWhenKilledBySignals) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    Pty pty;
    const int wstatus = child_with_raw_terminal(pty, [sig] { raise(sig); });
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "signal " << sig << ", status " << wstatus;
    EXPECT_EQ(WTERMSIG(wstatus), sig);  // the signal still ends the process
    EXPECT_TRUE(pty.cooked()) << "signal " << sig;
  }
}

TEST(Terminal, RestoredOnExit) {
  Pty pty;
  const int wstatus = child_with_raw_terminal(pty, [] { std::exit(7); });
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 7);
  EXPECT_TRUE(pty.cooked());
}

}  // namespace
}  // namespace vmm86
