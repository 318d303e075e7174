// wide_diff: the wide differential test at any scale, with a report by divergence class.
//
//   wide_diff [--count N] [--first SEED] [--length L] [--coverage] [--examples K] [--all] [--jobs J] [--trace] [--match
//   TEXT]
//
// --coverage runs one program per instruction form (forms()), then N random programs.
// Divergences are shrunk (minimize) and grouped by class; classes on the known list are
// counted apart; --match keeps the coverage forms whose key contains TEXT; --trace adds the reference run of each
// shrunk program, step by step. Exit status 1 when an unknown divergence or a hang was found.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include <sys/mman.h>

#include <atomic>
#include <vector>

#include "tests/differential/isolate.h"
#include "tests/differential/wide.h"

using namespace vmm86::difftest::wide;
using vmm86::difftest::crashes_in_child;
using vmm86::difftest::IsolateOptions;
using vmm86::difftest::ItemEnd;
using vmm86::difftest::run_isolated;

namespace {

struct Class {
  uint64_t count = 0;
  std::string example;
  const char* known = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t count = 1000, first = 0x3DE70000, examples = 1;
  int length = 16;
  unsigned jobs = 1;
  std::string match;
  bool coverage = false, all = false, trace = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto num = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 0) : 0ull; };
    if (a == "--count") count = num();
    else if (a == "--first") first = num();
    else if (a == "--length") length = static_cast<int>(num());
    else if (a == "--coverage") coverage = true;
    else if (a == "--examples") examples = num();
    else if (a == "--all") all = true;
    else if (a == "--jobs") jobs = static_cast<unsigned>(num());
    else if (a == "--trace") trace = true;
    else if (a == "--match" && i + 1 < argc) match = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: wide_diff [--count N] [--first SEED] [--length L] [--coverage] [--examples K] [--all] "
                   "[--jobs J] [--trace] [--match TEXT]\n");
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Counters the children add to (they run in other processes).
  struct Shared {
    std::atomic<uint64_t> divergent, undefined, accessed_only, hangs, inconclusive, translated;
  };
  auto* shared = static_cast<Shared*>(
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::vector<uint32_t> coverage_forms;
  if (coverage) {
    for (uint32_t f = 0; f < forms().size(); ++f) {
      if (form_usable(f) && forms()[f].key.find(match) != std::string::npos) coverage_forms.push_back(f);
    }
  }
  auto program = [&](uint64_t i) {
    return i < coverage_forms.size() ? form_program(coverage_forms[i], first)
                                     : random_program(first + (i - coverage_forms.size()), length);
  };
  std::map<std::string, Class> classes;
  uint64_t unknown = 0, crashes = 0, stuck = 0;
  auto add = [&](const std::string& cls, const std::string& example) {
    Class& c = classes[cls];
    if (c.count++ == 0) c.known = known_divergence(cls);
    if (!c.known) ++unknown;
    if (c.count <= examples && (all || !c.known)) {
      std::printf("---- divergence %s\n%s", cls.c_str(), example.c_str());
      std::fflush(stdout);
    }
  };
  const uint64_t total = coverage_forms.size() + count;
  // In the child: run, and report a divergence as "class\nexample".
  auto work = [&](uint64_t i) -> std::string {
    const Program p = program(i);
    const Verdict v = run(p);
    shared->translated.fetch_add(v.bt.translated);
    if (v.ref.end == vmm86::bttest::RunEnd::Timeout) {
      shared->inconclusive.fetch_add(1);
      return {};
    }
    if (v.diff.empty()) return {};
    if (sdm_undefined(p, v)) {  // both outcomes legal
      shared->undefined.fetch_add(1);
      return {};
    }
    if (!v.hang && differs_only_in_accessed_bits(p, v)) {  // which operand is translated first
      shared->accessed_only.fetch_add(1);
      return {};
    }
    shared->divergent.fetch_add(1);
    if (v.hang) shared->hangs.fetch_add(1);
    const Program m = minimize(p, v);
    const Verdict mv = run(m);
    const std::string cls = divergence_class(m, mv.diff.empty() ? v : mv);
    char tail[96];
    std::snprintf(tail, sizeof tail, "(original seed %llx, %zu units)\n", static_cast<unsigned long long>(p.seed),
                  p.units.size());
    return cls + "\n" + describe(m) + (mv.diff.empty() ? v.diff : mv.diff) + tail +
           (trace ? "interpreter steps (eip, eflags, eax..edi):\n" + trace_reference(m) : std::string());
  };
  auto report = [&](uint64_t i, ItemEnd how, const std::string& msg) {
    if (how == ItemEnd::Reported) {
      const size_t nl = msg.find('\n');
      add(msg.substr(0, nl), msg.substr(nl + 1));
      return;
    }
    // The monitor died or hung on this program: shrink it, each trial in a child of its own.
    (how == ItemEnd::Crashed ? crashes : stuck)++;
    const Program m = minimize_crash(program(i));
    std::string cls = std::string(how == ItemEnd::Crashed ? "MONITOR CRASH" : "MONITOR STUCK") + " (" + msg + "): ";
    cls += divergence_class(m, Verdict{});
    add(cls, describe(m));
  };
  IsolateOptions options;
  options.progress_seconds = 300;
  vmm86::difftest::run_isolated_parallel(0, total, jobs, work, report, options);
  const uint64_t programs = total, divergent = shared->divergent.load(), undefined = shared->undefined.load(),
                 accessed_only = shared->accessed_only.load(), hangs = shared->hangs.load(),
                 inconclusive = shared->inconclusive.load(), translated = shared->translated.load();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "==== wide differential: %llu programs (%zu coverage) in %.0f s, %llu divergent (%llu in unknown "
      "classes), %llu SDM-undefined, %llu only in accessed bits after #PF, %llu hangs, %llu monitor crashes, %llu "
      "monitor stuck, %llu inconclusive (the interpreter "
      "looped), %llu guest instructions translated\n",
      static_cast<unsigned long long>(programs), coverage_forms.size(), secs,
      static_cast<unsigned long long>(divergent), static_cast<unsigned long long>(unknown),
      static_cast<unsigned long long>(undefined), static_cast<unsigned long long>(accessed_only),
      static_cast<unsigned long long>(hangs), static_cast<unsigned long long>(crashes),
      static_cast<unsigned long long>(stuck), static_cast<unsigned long long>(inconclusive),
      static_cast<unsigned long long>(translated));
  for (const auto& [cls, c] : classes) {
    std::printf("%8llu  %s%s%s\n", static_cast<unsigned long long>(c.count), cls.c_str(), c.known ? "  KNOWN: " : "",
                c.known ? c.known : "");
  }
  return unknown || hangs || crashes || stuck ? 1 : 0;
}
