// The wide differential test in CI (wide.h): one program per instruction form of the
// classification table (all of them; VMM86_WIDE_FORMS_SHARE=n runs every n-th, as the
// sanitizer build does), then seeded random programs. Each program runs in a child
// process (isolate.h), so a monitor crash is a failure with a name, not a dead test.
// Divergences are shrunk and classed; classes on the known list (wide_run.cpp) are
// reported but pass. bench/differential runs the same at 10^6 (wide_diff).
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "tests/differential/isolate.h"
#include "tests/differential/wide.h"

namespace vmm86::difftest::wide {
namespace {

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 0) : fallback;
}

struct Totals {
  std::atomic<uint64_t> programs, divergent, undefined, accessed_only, translated, inconclusive;
};

TEST(WideDifferential, TranslatorMatchesInterpreter) {
  // VMM86_WIDE_FORMS_SHARE: every n-th form (1 = all); VMM86_WIDE_COUNT random programs.
  const uint64_t share = std::max<uint64_t>(1, env_or("VMM86_WIDE_FORMS_SHARE", 1));
  const uint64_t random_count = env_or("VMM86_WIDE_COUNT", 1500);
  const uint64_t phase = env_or("VMM86_WIDE_PHASE", 0) % share;
  std::vector<uint32_t> chosen;
  for (uint32_t f = 0; f < forms().size(); ++f) {
    if (form_usable(f) && f % share == phase) chosen.push_back(f);
  }
  auto* totals = static_cast<Totals*>(
      mmap(nullptr, sizeof(Totals), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(totals, MAP_FAILED);
  auto program = [&](uint64_t i) {
    return i < chosen.size() ? form_program(chosen[i], 0x5EED) : random_program(0xD1FF0000u + (i - chosen.size()), 16);
  };
  std::map<std::string, int> known, unknown;
  std::string first_unknown;
  auto work = [&](uint64_t i) -> std::string {
    const Program p = program(i);
    const Verdict v = run(p);
    totals->programs.fetch_add(1);
    totals->translated.fetch_add(v.bt.translated);
    if (v.ref.end == bttest::RunEnd::Timeout) totals->inconclusive.fetch_add(1);
    if (v.diff.empty()) return {};
    if (sdm_undefined(p, v)) {  // both outcomes legal
      totals->undefined.fetch_add(1);
      return {};
    }
    if (differs_only_in_accessed_bits(p, v)) {  // which operand is translated first
      totals->accessed_only.fetch_add(1);
      return {};
    }
    totals->divergent.fetch_add(1);
    const Program m = minimize(p, v);
    const Verdict mv = run(m);
    return divergence_class(m, mv.diff.empty() ? v : mv) + "\n" + describe(m) + (mv.diff.empty() ? v.diff : mv.diff);
  };
  auto report = [&](uint64_t i, ItemEnd how, const std::string& msg) {
    std::string cls, text;
    if (how == ItemEnd::Reported) {
      cls = msg.substr(0, msg.find('\n'));
      text = msg;
    } else {
      const Program p = minimize_crash(program(i));
      cls = std::string(how == ItemEnd::Crashed ? "MONITOR CRASH (" : "MONITOR STUCK (") + msg +
            "): " + divergence_class(p, Verdict{});
      text = cls + "\n" + describe(p);
    }
    if (known_divergence(cls)) {
      ++known[cls];
    } else if (unknown[cls]++ == 0 && unknown.size() <= 5) {
      ADD_FAILURE() << "divergence outside the known list:\n" << text;
    }
  };
  run_isolated(0, chosen.size() + random_count, work, report);
  for (const auto& [cls, n] : known) std::printf("known divergence x%d: %s\n", n, cls.c_str());
  std::printf(
      "wide differential: %zu forms (share 1/%llu, phase %llu) + %llu random programs, %llu divergent "
      "(%zu known classes, %zu unknown), %llu SDM-undefined, %llu only in accessed bits, %llu inconclusive, %llu guest "
      "instructions translated\n",
      chosen.size(), static_cast<unsigned long long>(share), static_cast<unsigned long long>(phase),
      static_cast<unsigned long long>(random_count), static_cast<unsigned long long>(totals->divergent.load()),
      known.size(), unknown.size(), static_cast<unsigned long long>(totals->undefined.load()),
      static_cast<unsigned long long>(totals->accessed_only.load()),
      static_cast<unsigned long long>(totals->inconclusive.load()),
      static_cast<unsigned long long>(totals->translated.load()));
  EXPECT_TRUE(unknown.empty()) << unknown.size() << " unknown divergence classes";
  // Meaningful only if the programs got far enough to run translated code.
  EXPECT_GT(totals->translated.load(), totals->programs.load()) << "too little ran in translated code";
  munmap(totals, sizeof(Totals));
}

}  // namespace
}  // namespace vmm86::difftest::wide
