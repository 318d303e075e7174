// The host side of the guest console (COM1): guest output to stdout, stdin to the guest.
// When stdin is a terminal it is put in raw mode, so every key (Ctrl-C included) reaches
// the guest, and the Ctrl-A escape of QEMU's -nographic applies:
//   Ctrl-A x         quit vmm86
//   Ctrl-A Ctrl-A    send one Ctrl-A to the guest
//   Ctrl-A h (or ?)  print these keys
//   Ctrl-A other     ignored
// The terminal is restored on every way out: destruction, exit(), and SIGINT, SIGTERM,
// SIGHUP, SIGQUIT, SIGPIPE and SIGABRT (then the signal takes its usual course); fatal
// signals and the machine's own signal handling call restore_now(). When stdin is a pipe,
// a file, /dev/null or closed, bytes pass through untouched and end of input is just the
// end of input.
// Input is read (pump()) whether or not the guest takes it, so Ctrl-A x works while the
// guest ignores its UART; keys wait in a queue until the guest reads them.
// Everything runs on the vCPU thread; pump() and poll_input() never block.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "common/result.h"

namespace vmm86 {

/// The Ctrl-A escape as a pure state machine: feed it each input byte with the state it
/// returned last time.
namespace console_escape {

inline constexpr uint8_t kEscapeByte = 0x01;  ///< Ctrl-A

enum class State : uint8_t {
  Normal,
  AfterEscape,  ///< Ctrl-A seen; the next byte is a command
};

enum class Action : uint8_t {
  None,     ///< nothing for the guest
  Forward,  ///< pass `byte` to the guest
  Quit,     ///< the user asked to quit
  Help,     ///< show the escape keys
};

struct Step {
  State next = State::Normal;
  Action action = Action::None;
  uint8_t byte = 0;  ///< the byte to forward (Action::Forward only)
  constexpr bool operator==(const Step&) const = default;
};

[[nodiscard]] Step step(State state, uint8_t byte);

/// The text Action::Help prints.
inline constexpr std::string_view kHelpText = "\r\n[vmm86] C-a x: quit   C-a C-a: send C-a   C-a h: this help\r\n";

}  // namespace console_escape

class Terminal {
 public:
  enum class Escapes : uint8_t {
    Auto,  ///< on when the input is a terminal
    On,
    Off,
  };
  struct Options {
    int input_fd = 0;
    int output_fd = 1;
    Escapes escapes = Escapes::Auto;
  };

  /// Takes over the console. At most one Terminal may exist at a time (the restore-on-
  /// signal state is process-wide). Fails only when a terminal input refuses raw mode.
  [[nodiscard]] static Result<std::unique_ptr<Terminal>> open(const Options& options);
  [[nodiscard]] static Result<std::unique_ptr<Terminal>> open() { return open(Options{}); }

  /// Restores the terminal and the previous signal handlers.
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  /// The next byte for the guest, if one is waiting; never blocks. Calls pump() when the
  /// queue is empty (a poll() system call): call it when the UART can take a byte, not
  /// once per instruction.
  [[nodiscard]] std::optional<uint8_t> poll_input();
  /// The next queued byte for the guest, without reading the input.
  [[nodiscard]] std::optional<uint8_t> take_input();
  /// Reads the input that is waiting and handles the escape keys in it (so it may set
  /// quit_requested()); bytes for the guest join the queue. With escape keys (a terminal)
  /// everything waiting is read and bytes beyond kQueueBytes are dropped, as a UART
  /// overrun drops them; without (a pipe, a file) nothing is read that does not fit, so
  /// no input is lost. Costs one poll() system call when nothing is waiting.
  void pump();

  /// Puts the terminal back as it was found. Async-signal-safe: for fatal-signal handlers
  /// (the process dies without running destructors or atexit handlers).
  static void restore_now();

  /// Writes guest output; retries short writes. Output to a closed pipe is dropped.
  void write_output(std::span<const uint8_t> bytes);

  /// Ctrl-A x was typed.
  [[nodiscard]] bool quit_requested() const { return quit_requested_; }
  /// The input has ended (EOF, closed or unreadable); poll_input() returns nothing more.
  [[nodiscard]] bool input_ended() const { return input_ended_; }
  /// The input is a terminal in raw mode.
  [[nodiscard]] bool raw_mode() const { return raw_mode_; }
  /// Keys for the guest dropped because the queue was full.
  [[nodiscard]] uint64_t dropped_input() const { return dropped_; }

  static constexpr size_t kQueueBytes = 64 * 1024;

  /// Opens /dev/null on any of fds 0, 1, 2 that is closed, so a later open() (a guest
  /// file, the RAM memfd) cannot land on them and be taken for the console. Call first
  /// thing in main().
  static void reserve_standard_fds();

 private:
  Terminal(const Options& options, bool raw_mode, bool escapes);
  /// Reads at most `max` bytes of what is available into the buffer; false when nothing came.
  bool fill_buffer(size_t max);

  int input_fd_;
  int output_fd_;
  bool raw_mode_;
  bool escapes_;
  bool quit_requested_ = false;
  bool input_ended_ = false;
  bool output_broken_ = false;
  console_escape::State escape_state_ = console_escape::State::Normal;
  uint8_t buffer_[256] = {};
  size_t buffer_len_ = 0;
  std::deque<uint8_t> queue_;  ///< keys for the guest, escapes already handled
  uint64_t dropped_ = 0;
};

}  // namespace vmm86
