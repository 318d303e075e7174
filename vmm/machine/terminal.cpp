#include "vmm/machine/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace vmm86 {

namespace console_escape {

Step step(State state, uint8_t byte) {
  if (state == State::Normal) {
    if (byte == kEscapeByte) return {State::AfterEscape, Action::None, 0};
    return {State::Normal, Action::Forward, byte};
  }
  switch (byte) {
    case kEscapeByte: return {State::Normal, Action::Forward, kEscapeByte};
    case 'x':
    case 'X': return {State::Normal, Action::Quit, 0};
    case 'h':
    case 'H':
    case '?': return {State::Normal, Action::Help, 0};
    default: return {State::Normal, Action::None, 0};  // unknown command: dropped, as QEMU does
  }
}

}  // namespace console_escape

namespace {

// Process-wide, because a signal handler has to find it. Written before g_tty_dirty is set.
constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGABRT};
constexpr size_t kNumRestoreSignals = std::size(kRestoreSignals);
std::atomic<bool> g_terminal_exists{false};
std::atomic<bool> g_tty_dirty{false};  ///< raw mode is on and must be undone
int g_tty_fd = -1;
struct termios g_saved_tty {};
struct sigaction g_previous_actions[kNumRestoreSignals] {};
bool g_handler_installed[kNumRestoreSignals] = {};
static_assert(std::atomic<bool>::is_always_lock_free, "used from signal handlers");

/// Async-signal-safe: an atomic exchange and tcsetattr.
void restore_tty() {
  if (g_tty_dirty.exchange(false)) ::tcsetattr(g_tty_fd, TCSANOW, &g_saved_tty);
}

extern "C" void restore_tty_at_exit() { restore_tty(); }

extern "C" void restore_tty_on_signal(int sig) {
  const int saved_errno = errno;
  restore_tty();
  // Give the signal back to its previous owner (usually the default action, which ends the
  // process); raised now, it is delivered again as soon as this handler returns.
  for (size_t i = 0; i < kNumRestoreSignals; ++i) {
    if (kRestoreSignals[i] == sig && g_handler_installed[i]) {
      ::sigaction(sig, &g_previous_actions[i], nullptr);
      g_handler_installed[i] = false;
    }
  }
  ::raise(sig);
  errno = saved_errno;
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = restore_tty_on_signal;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < kNumRestoreSignals; ++i) {
    struct sigaction previous {};
    ::sigaction(kRestoreSignals[i], nullptr, &previous);
    // A signal someone ignores (nohup, a shell's SIGPIPE) cannot end us: leave it be.
    if (previous.sa_handler == SIG_IGN) continue;
    g_previous_actions[i] = previous;
    g_handler_installed[i] = true;
    ::sigaction(kRestoreSignals[i], &action, nullptr);
  }
}

void remove_signal_handlers() {
  for (size_t i = 0; i < kNumRestoreSignals; ++i) {
    if (g_handler_installed[i]) ::sigaction(kRestoreSignals[i], &g_previous_actions[i], nullptr);
    g_handler_installed[i] = false;
  }
}

/// QEMU's stdio settings: no echo, no line editing, no signals from keys, 8-bit clean;
/// output post-processing stays on so host messages' "\n" still returns the carriage.
struct termios raw_attributes(struct termios t) {
  t.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
  t.c_cflag |= CS8;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  return t;
}

}  // namespace

Result<std::unique_ptr<Terminal>> Terminal::open(const Options& options) {
  if (g_terminal_exists.exchange(true)) return make_error("the console is already in use");
  const bool is_tty = ::isatty(options.input_fd) == 1;
  if (is_tty) {
    struct termios saved {};
    if (::tcgetattr(options.input_fd, &saved) != 0) {
      g_terminal_exists = false;
      return make_error("cannot read the terminal settings: {}", std::strerror(errno));
    }
    static const bool at_exit_registered = std::atexit(restore_tty_at_exit) == 0;
    (void)at_exit_registered;
    g_tty_fd = options.input_fd;
    g_saved_tty = saved;
    install_signal_handlers();
    g_tty_dirty = true;  // before the change, so a signal arriving right after it restores
    const struct termios raw = raw_attributes(saved);
    if (::tcsetattr(options.input_fd, TCSANOW, &raw) != 0) {
      const int err = errno;
      restore_tty();
      remove_signal_handlers();
      g_terminal_exists = false;
      return make_error("cannot put the terminal in raw mode: {}", std::strerror(err));
    }
  }
  const bool escapes = options.escapes == Escapes::On || (options.escapes == Escapes::Auto && is_tty);
  return std::unique_ptr<Terminal>(new Terminal(options, is_tty, escapes));
}

Terminal::Terminal(const Options& options, bool raw_mode, bool escapes)
    : input_fd_(options.input_fd), output_fd_(options.output_fd), raw_mode_(raw_mode), escapes_(escapes) {}

Terminal::~Terminal() {
  restore_tty();
  if (raw_mode_) remove_signal_handlers();
  g_terminal_exists = false;
}

bool Terminal::fill_buffer(size_t max) {
  buffer_len_ = 0;
  if (input_ended_ || max == 0) return false;
  struct pollfd p {
    input_fd_, POLLIN, 0
  };
  const int ready = ::poll(&p, 1, 0);
  if (ready <= 0) return false;  // nothing yet (or EINTR: try again next time)
  if ((p.revents & POLLNVAL) != 0) {
    input_ended_ = true;  // not an open file descriptor: no input at all
    return false;
  }
  const ssize_t n = ::read(input_fd_, buffer_, std::min(max, sizeof buffer_));
  if (n > 0) {
    buffer_len_ = static_cast<size_t>(n);
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  input_ended_ = true;  // EOF, or an error that will not go away
  return false;
}

void Terminal::pump() {
  // A bounded number of reads per call: a terminal that keeps producing (a paste, a stuck
  // key) must not keep the vCPU from running.
  for (int reads = 0; reads < 16 && !quit_requested_; ++reads) {
    const size_t room = escapes_ ? sizeof buffer_ : kQueueBytes - std::min(kQueueBytes, queue_.size());
    if (!fill_buffer(room)) return;
    for (size_t i = 0; i < buffer_len_ && !quit_requested_; ++i) {
      const uint8_t byte = buffer_[i];
      if (!escapes_) {
        queue_.push_back(byte);
        continue;
      }
      const console_escape::Step s = console_escape::step(escape_state_, byte);
      escape_state_ = s.next;
      switch (s.action) {
        case console_escape::Action::Forward:
          if (queue_.size() < kQueueBytes) {
            queue_.push_back(s.byte);
          } else {
            ++dropped_;
          }
          break;
        case console_escape::Action::Quit: quit_requested_ = true; break;
        case console_escape::Action::Help: {
          const std::string_view help = console_escape::kHelpText;
          write_output({reinterpret_cast<const uint8_t*>(help.data()), help.size()});
          break;
        }
        case console_escape::Action::None: break;
      }
    }
  }
}

std::optional<uint8_t> Terminal::take_input() {
  if (queue_.empty()) return std::nullopt;  // holds nothing typed after a Ctrl-A x
  const uint8_t byte = queue_.front();
  queue_.pop_front();
  return byte;
}

std::optional<uint8_t> Terminal::poll_input() {
  if (queue_.empty()) pump();
  return take_input();
}

void Terminal::write_output(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size() && !output_broken_) {
    const ssize_t n = ::write(output_fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Someone made the output non-blocking: wait for the reader rather than lose output.
      struct pollfd p {
        output_fd_, POLLOUT, 0
      };
      ::poll(&p, 1, -1);
    } else {
      output_broken_ = true;  // EPIPE with SIGPIPE ignored, EBADF, EIO: nobody is reading
    }
  }
}

void Terminal::restore_now() { restore_tty(); }

void Terminal::reserve_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free descriptor, which is `fd` as lower ones are open.
    const int got = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (got >= 0 && got != fd) {
      ::dup2(got, fd);
      ::close(got);
    }
  }
}

}  // namespace vmm86
