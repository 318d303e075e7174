// hostile_fuzz: random ring-0 guests against the monitor (issue 14, point 5).
//
//   hostile_fuzz [--count N] [--first SEED] [--jobs J] [--examples K] [--stuck SECONDS]
//   hostile_fuzz --only I      # sequence I of a report, in this process (for gdb), described
//
// Each sequence is a hostile_program (tests/differential/wide.h): random bytes, random
// encodings of any form of the classification table with random immediates and
// displacements, or a mix with sane units; paging on or off, SSE on or off (CR4.OSFXSR,
// CR0.EM/TS), random segments and FPU state. It runs on the interpreter and on the BT
// engine inside a child process (tests/differential/isolate.h), so that a monitor crash is
// counted, not fatal. Counted:
//   crashes   the child died by a signal (SIGSEGV/SIGILL/SIGFPE/abort in the monitor)
//   stuck     the child made no progress for --stuck seconds (a monitor hang outside guest code)
//   escapes   a canary mapped at the host addresses of guest-linear [64 KiB, 16 MiB) changed:
//             a guest write that missed its window (reads that escape show as differences)
//   hangs     the interpreter halted, the BT engine ran out of time
//   differ    both ended, in different architectural states (differences in the arithmetic
//             status flags alone, or after an SDM-undefined outcome in the reference (a flag
//             read that the SDM leaves undefined, a 16-bit shld/shrd by 17..31), and in
//             accessed bits alone after a #PF, are counted apart: random code does all that)
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "tests/differential/isolate.h"
#include "tests/differential/wide.h"

using namespace vmm86::difftest::wide;
using vmm86::difftest::IsolateOptions;
using vmm86::difftest::ItemEnd;

namespace {

constexpr uintptr_t kCanaryStart = 0x10000, kCanaryEnd = 0x1000000;
constexpr uint64_t kCanaryWord = 0xC5C5C5C5C5C5C5C5ull;

/// Maps the canary where a guest access without the window's base would land. Best effort:
/// a range the host already uses is left out (MAP_FIXED_NOREPLACE fails there).
bool map_canary() {
  void* p = mmap(reinterpret_cast<void*>(kCanaryStart), kCanaryEnd - kCanaryStart, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != reinterpret_cast<void*>(kCanaryStart)) return false;
  auto* w = static_cast<uint64_t*>(p);
  for (size_t i = 0; i < (kCanaryEnd - kCanaryStart) / 8; ++i) w[i] = kCanaryWord;
  return true;
}

/// First changed canary address, or 0; restores it (in this child) for the next sequence.
uintptr_t canary_hit() {
  auto* w = reinterpret_cast<uint64_t*>(kCanaryStart);
  uintptr_t hit = 0;
  for (size_t i = 0; i < (kCanaryEnd - kCanaryStart) / 8; ++i) {
    if (w[i] != kCanaryWord) {
      if (!hit) hit = kCanaryStart + 8 * i;
      w[i] = kCanaryWord;
    }
  }
  return hit;
}

struct Counters {
  std::atomic<uint64_t> sequences, translated, inconclusive, hangs, differ, escapes, flags_only, accessed_only;
};

const char* kind_name(Hostile k) {
  switch (k) {
    case Hostile::RandomBytes: return "bytes";
    case Hostile::RandomForms: return "forms";
    case Hostile::Mixed: return "mixed";
  }
  return "?";
}

/// A coarse name for an outcome difference: how each engine ended and what differs first.
std::string outcome_class(const Verdict& v) {
  auto end_of = [](const Outcome& o) {
    std::string s = "#";
    if (o.vector >= 0) return s.append(std::to_string(o.vector));
    return std::string(vmm86::bttest::to_string(o.end));
  };
  std::string first = v.diff.substr(0, v.diff.find(':'));
  if (first.rfind("mem ", 0) == 0) first = first.substr(0, first.find(' ', 4));
  std::string out = "ref ";
  out.append(end_of(v.ref)).append(" / bt ").append(end_of(v.bt)).append(", first: ").append(first);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t count = 10000, first = 0xF022000000ull, examples = 1;
  unsigned jobs = 1;
  int stuck_seconds = 30;
  int64_t only = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto num = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 0) : 0ull; };
    if (a == "--count") count = num();
    else if (a == "--first") first = num();
    else if (a == "--jobs") jobs = static_cast<unsigned>(num());
    else if (a == "--examples") examples = num();
    else if (a == "--stuck") stuck_seconds = static_cast<int>(num());
    else if (a == "--only") only = static_cast<int64_t>(num());
    else {
      std::fprintf(stderr,
                   "usage: hostile_fuzz [--count N] [--first SEED] [--jobs J] [--examples K] [--stuck S] [--only I]\n");
      return 2;
    }
  }
  auto program = [&](uint64_t i) { return hostile_program(first + i, static_cast<Hostile>(i % 3)); };
  if (only >= 0) {  // no child, no canary: a debugger sees the monitor where it stops
    const Program p = program(static_cast<uint64_t>(only));
    std::printf("%s", describe(p).c_str());
    const Verdict v = run(p);
    if (v.diff.empty()) {
      std::printf("same outcome%s\n", v.ref.end == vmm86::bttest::RunEnd::Timeout ? " (inconclusive)" : "");
      return 0;
    }
    for (const auto* o : {&v.ref, &v.bt}) {
      std::printf("%s: end %s, vector %d at eip %#x, cr2 %#x, %llu translated\n", o == &v.ref ? "interp" : "bt",
                  vmm86::bttest::to_string(o->end), o->vector, o->fault_eip, o->cpu.cr2,
                  static_cast<unsigned long long>(o->translated));
    }
    std::printf(
        "the reference had %llu SDM-undefined outcomes; status flags alone differ: %s; accessed bits alone: %s\n",
        static_cast<unsigned long long>(v.ref.undefined_results), differs_only_in_status_flags(p, v) ? "yes" : "no",
        differs_only_in_accessed_bits(p, v) ? "yes" : "no");
    const Program small = minimize(p, v);
    std::printf("%s\n%s---- shrunk to\n%s%s", outcome_class(v).c_str(), v.diff.c_str(), describe(small).c_str(),
                run(small).diff.c_str());
    std::printf("---- the reference run of the shrunk sequence (eip, eflags, eax..edi | next bytes)\n%s",
                trace_reference(small).c_str());
    return 1;
  }
  const bool canary = map_canary();
  (void)forms();  // enumerate once, before the children fork
  auto* c = static_cast<Counters*>(
      mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  auto work = [&](uint64_t i) -> std::string {
    const Program p = program(i);
    const Verdict v = run(p);
    c->sequences.fetch_add(1);
    c->translated.fetch_add(v.bt.translated);
    std::string msg;
    if (canary) {
      if (const uintptr_t hit = canary_hit()) {
        c->escapes.fetch_add(1);
        char t[64];
        std::snprintf(t, sizeof t, "ESCAPE host %#lx", static_cast<unsigned long>(hit));
        msg = std::string(t) + "\n" + describe(p);
      }
    }
    if (v.ref.end == vmm86::bttest::RunEnd::Timeout) {
      c->inconclusive.fetch_add(1);
      return msg;
    }
    if (!msg.empty() || v.diff.empty()) return msg;
    if (!v.hang && differs_only_in_accessed_bits(p, v)) {
      c->accessed_only.fetch_add(1);
      return msg;
    }
    if ((!v.hang && differs_only_in_status_flags(p, v)) || v.ref.undefined_results > 0) {
      // SDM-undefined flags (left in EFLAGS or a frame, or read by a jcc/cmovcc/pushf/adc
      // into registers, memory or a loop's condition): each engine's choice is legal.
      c->flags_only.fetch_add(1);
      return msg;
    }
    if (v.hang) c->hangs.fetch_add(1);
    c->differ.fetch_add(1);
    return std::string(v.hang ? "HANG " : "") + outcome_class(v) + " [" + kind_name(static_cast<Hostile>(i % 3)) +
           "]\n" + describe(p) + v.diff;
  };
  std::map<std::string, uint64_t> classes;
  uint64_t crashes = 0, stuck = 0;
  auto report = [&](uint64_t i, ItemEnd how, const std::string& msg) {
    std::string cls, text;
    if (how == ItemEnd::Reported) {
      cls = msg.substr(0, msg.find('\n'));
      text = msg.substr(msg.find('\n') + 1);
    } else {
      (how == ItemEnd::Crashed ? crashes : stuck)++;
      const Program p = program(i);
      cls = std::string(how == ItemEnd::Crashed ? "CRASH " : "STUCK ") + msg + " [" +
            kind_name(static_cast<Hostile>(i % 3)) + "]";
      text = describe(p);
    }
    if (++classes[cls] <= examples) {
      std::printf("---- %s (sequence %llu)\n%s", cls.c_str(), static_cast<unsigned long long>(i), text.c_str());
      std::fflush(stdout);
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  IsolateOptions options;
  options.stuck_seconds = stuck_seconds;
  options.progress_seconds = 300;
  vmm86::difftest::run_isolated_parallel(0, count, jobs, work, report, options);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "==== hostile fuzz: %llu sequences in %.0f s (%.0f/s, %u jobs): %llu crashes, %llu stuck, %llu escapes%s, "
      "%llu hangs, %llu outcome differences (+%llu SDM-undefined: flags left in EFLAGS or read, shld/shrd results; "
      "+%llu in accessed bits after a #PF), "
      "%llu inconclusive (the interpreter looped), %llu guest "
      "instructions translated\n",
      static_cast<unsigned long long>(count), secs, static_cast<double>(count) / secs, jobs,
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(stuck),
      static_cast<unsigned long long>(c->escapes.load()), canary ? "" : " (no canary: host range taken)",
      static_cast<unsigned long long>(c->hangs.load()), static_cast<unsigned long long>(c->differ.load()),
      static_cast<unsigned long long>(c->flags_only.load()), static_cast<unsigned long long>(c->accessed_only.load()),
      static_cast<unsigned long long>(c->inconclusive.load()), static_cast<unsigned long long>(c->translated.load()));
  for (const auto& [cls, n] : classes) std::printf("%8llu  %s\n", static_cast<unsigned long long>(n), cls.c_str());
  return crashes || stuck || c->escapes.load() || c->differ.load() ? 1 : 0;
}
