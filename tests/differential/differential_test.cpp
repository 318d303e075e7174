#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/differential/harness.h"

namespace vmm86::difftest {
namespace {

/// CI runs a few thousand sequences; VMM86_DIFF_COUNT raises it (the bench target runs more).
int sequence_count() {
  const char* env = std::getenv("VMM86_DIFF_COUNT");
  return env ? std::atoi(env) : 3000;
}

TEST(Differential, TranslatorMatchesInterpreter) {
  const int count = sequence_count();
  int failures = 0;
  uint64_t translated = 0;
  for (int i = 0; i < count && failures < 5; ++i) {
    const Program p = generate(0x5EED0000u + static_cast<uint64_t>(i), 24);
    const Outcome ref = run_interpreter(p);
    const Outcome got = run_translator(p);
    translated += got.translated_insns;
    const std::string diff = compare(ref, got);
    if (!diff.empty()) {
      ++failures;
      std::string listing;
      for (const auto& line : p.listing) listing += "  " + line + "\n";
      ADD_FAILURE() << "seed " << p.seed << " diverges:\n" << diff << "program:\n" << listing;
    }
  }
  // The comparison means something only if most of the work ran translated.
  EXPECT_GT(translated, static_cast<uint64_t>(count) * 10) << "too little ran in translated code";
  RecordProperty("sequences", count);
  std::printf("differential: %d sequences, %llu guest instructions retired in translated code, %d divergences\n", count,
              static_cast<unsigned long long>(translated), failures);
}

}  // namespace
}  // namespace vmm86::difftest
