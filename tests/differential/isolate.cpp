#include "tests/differential/isolate.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace vmm86::difftest {

namespace {

/// Shared with the child: the item it is on (so a crash can be attributed).
struct Progress {
  std::atomic<uint64_t> current;
  std::atomic<uint64_t> done;  ///< items finished (the watchdog's sign of life)
};

bool write_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    const ssize_t w = ::write(fd, b, n);
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// Parses complete frames [u64 index][u32 length][bytes] out of `buf`.
template <typename F>
void drain_frames(std::vector<uint8_t>& buf, F&& on_frame) {
  size_t at = 0;
  while (buf.size() - at >= 12) {
    uint64_t index;
    uint32_t len;
    std::memcpy(&index, &buf[at], 8);
    std::memcpy(&len, &buf[at + 8], 4);
    if (buf.size() - at - 12 < len) break;
    on_frame(index, std::string(reinterpret_cast<const char*>(&buf[at + 12]), len));
    at += 12 + len;
  }
  buf.erase(buf.begin(), buf.begin() + static_cast<long>(at));
}

}  // namespace

uint64_t run_isolated(uint64_t begin, uint64_t end, const std::function<std::string(uint64_t)>& work,
                      const std::function<void(uint64_t, ItemEnd, const std::string&)>& report,
                      const IsolateOptions& options) {
  auto* progress = static_cast<Progress*>(
      mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (progress == MAP_FAILED) return 0;
  uint64_t children = 0;
  uint64_t next = begin;
  const auto started = std::chrono::steady_clock::now();
  auto last_progress = started;
  while (next < end) {
    int fds[2];
    if (pipe(fds) != 0) break;
    progress->current.store(next);
    progress->done.store(0);
    const pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      close(fds[0]);
      for (uint64_t i = next; i < end; ++i) {
        progress->current.store(i);
        const std::string msg = work(i);
        if (!msg.empty()) {
          const auto len = static_cast<uint32_t>(msg.size());
          if (!write_all(fds[1], &i, 8) || !write_all(fds[1], &len, 4) || !write_all(fds[1], msg.data(), len)) _exit(3);
        }
        progress->done.fetch_add(1);
      }
      progress->current.store(end);
      _exit(0);
    }
    ++children;
    close(fds[1]);
    std::vector<uint8_t> buf;
    uint64_t last_done = 0;
    auto last_change = std::chrono::steady_clock::now();
    bool stuck = false;
    for (;;) {
      pollfd pfd{fds[0], POLLIN, 0};
      const int r = poll(&pfd, 1, 500);
      if (r > 0) {
        uint8_t tmp[65536];
        const ssize_t n = read(fds[0], tmp, sizeof tmp);
        if (n <= 0) break;  // the child closed the pipe: it ended
        buf.insert(buf.end(), tmp, tmp + n);
        drain_frames(buf, [&](uint64_t i, const std::string& m) { report(i, ItemEnd::Reported, m); });
      }
      const uint64_t d = progress->done.load();
      const auto now = std::chrono::steady_clock::now();
      if (options.progress_seconds > 0 && now - last_progress >= std::chrono::seconds(options.progress_seconds)) {
        last_progress = now;
        const uint64_t finished = next - begin + d;
        const double secs = std::chrono::duration<double>(now - started).count();
        std::fprintf(stderr, "progress: %llu of items [%llu, %llu) done in %.0f s (%.0f/s)\n",
                     static_cast<unsigned long long>(finished), static_cast<unsigned long long>(begin),
                     static_cast<unsigned long long>(end), secs, static_cast<double>(finished) / secs);
      }
      if (d != last_done) {
        last_done = d;
        last_change = now;
      } else if (now - last_change > std::chrono::seconds(options.stuck_seconds)) {
        stuck = true;
        kill(pid, SIGKILL);
        break;
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    const uint64_t at = progress->current.load();
    if (stuck) {
      report(at, ItemEnd::Stuck, "no progress for " + std::to_string(options.stuck_seconds) + " s");
      next = at + 1;
    } else if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0) || at < end) {
      const std::string why = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                  : "exit status " + std::to_string(WEXITSTATUS(status));
      report(at, ItemEnd::Crashed, why);
      next = at + 1;
    } else {
      next = end;
    }
  }
  munmap(progress, sizeof(Progress));
  return children;
}

void run_isolated_parallel(uint64_t begin, uint64_t end, unsigned jobs,
                           const std::function<std::string(uint64_t)>& work,
                           const std::function<void(uint64_t, ItemEnd, const std::string&)>& report,
                           const IsolateOptions& options) {
  if (jobs <= 1 || end - begin < jobs) {
    run_isolated(begin, end, work, report, options);
    return;
  }
  struct Slice {
    pid_t pid;
    int fd;
    std::vector<uint8_t> buf;
  };
  std::vector<Slice> slices;
  const uint64_t per = (end - begin + jobs - 1) / jobs;
  for (unsigned j = 0; j < jobs; ++j) {
    const uint64_t b = begin + j * per, e = std::min(end, b + per);
    if (b >= e) break;
    int fds[2];
    if (pipe(fds) != 0) break;
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      // Each report travels up as a frame: index, then "<kind digit><message>".
      run_isolated(
          b, e, work,
          [&](uint64_t i, ItemEnd how, const std::string& msg) {
            const std::string m = std::to_string(static_cast<int>(how)) + msg;
            const auto len = static_cast<uint32_t>(m.size());
            (void)(write_all(fds[1], &i, 8) && write_all(fds[1], &len, 4) && write_all(fds[1], m.data(), len));
          },
          options);
      _exit(0);
    }
    close(fds[1]);
    slices.push_back(Slice{pid, fds[0], {}});
  }
  size_t open_slices = slices.size();
  while (open_slices > 0) {
    std::vector<pollfd> pfds;
    for (const Slice& s : slices) pfds.push_back(pollfd{s.fd, POLLIN, 0});
    if (poll(pfds.data(), pfds.size(), 1000) <= 0) continue;
    for (size_t k = 0; k < slices.size(); ++k) {
      if (slices[k].fd < 0 || !(pfds[k].revents & (POLLIN | POLLHUP))) continue;
      uint8_t tmp[65536];
      const ssize_t n = read(slices[k].fd, tmp, sizeof tmp);
      if (n <= 0) {
        close(slices[k].fd);
        slices[k].fd = -1;
        --open_slices;
        continue;
      }
      slices[k].buf.insert(slices[k].buf.end(), tmp, tmp + n);
      drain_frames(slices[k].buf,
                   [&](uint64_t i, const std::string& m) { report(i, static_cast<ItemEnd>(m[0] - '0'), m.substr(1)); });
    }
  }
  for (const Slice& s : slices) waitpid(s.pid, nullptr, 0);
}

bool crashes_in_child(const std::function<void()>& fn, int seconds, int* signal_out) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    alarm(static_cast<unsigned>(seconds));  // a hang counts as a crash (SIGALRM)
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (signal_out) *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

}  // namespace vmm86::difftest
