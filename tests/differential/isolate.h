// Runs test work in child processes, so that a monitor that dies (a host SIGSEGV, SIGILL
// or SIGFPE the monitor does not handle, an abort) or stops making progress is counted
// instead of ending the test: issue 14 asks that hostile guests never take the monitor
// down, and a fuzzer must be able to say how often they do.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace vmm86::difftest {

/// What happened to one item of work.
enum class ItemEnd : uint8_t {
  Reported,  ///< the work returned a non-empty message
  Crashed,   ///< the child died by a signal or exited while running it
  Stuck,     ///< no progress for the time limit: the child was killed
};

struct IsolateOptions {
  int stuck_seconds = 20;
  /// Every this many seconds, a line on stderr with the items done in each slice (0: none),
  /// so that an hours-long run shows its rate and can be stopped with a count.
  int progress_seconds = 0;
};

/// Runs work(i) for i in [begin, end), many items per child process (fork is too slow
/// for one per item). Items whose work returns a non-empty string, and items during which
/// the child died or hung, are passed to `report` in the parent, in order; a new child
/// then goes on with the next item. Returns the number of children started.
uint64_t run_isolated(uint64_t begin, uint64_t end, const std::function<std::string(uint64_t)>& work,
                      const std::function<void(uint64_t, ItemEnd, const std::string&)>& report,
                      const IsolateOptions& options = {});

/// run_isolated over `jobs` interleaved slices at once (one supervising process each);
/// `report` runs in the calling process, in no particular order across slices.
void run_isolated_parallel(uint64_t begin, uint64_t end, unsigned jobs,
                           const std::function<std::string(uint64_t)>& work,
                           const std::function<void(uint64_t, ItemEnd, const std::string&)>& report,
                           const IsolateOptions& options = {});

/// Runs `fn` once in a child; true when the child died by a signal (or hung past
/// `seconds`). For shrinking programs that crash the monitor.
bool crashes_in_child(const std::function<void()>& fn, int seconds = 20, int* signal_out = nullptr);

}  // namespace vmm86::difftest
