// Finding the default guest (guest/build-image.sh) from tests. Tests that need the real
// Debian kernel skip when it is absent, unless VMM86_REQUIRE_GUEST=1 (CI), where they fail.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace vmm86::test {

/// $VMM86_GUEST_DIR, else $XDG_CACHE_HOME/vmm86/guest, else ~/.cache/vmm86/guest: the
/// same rule as guest/build-image.sh.
inline std::filesystem::path guest_dir() {
  if (const char* dir = std::getenv("VMM86_GUEST_DIR"); dir && *dir) return dir;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache) {
    return std::filesystem::path(cache) / "vmm86" / "guest";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/") / ".cache" / "vmm86" / "guest";
}

inline bool guest_required() {
  const char* v = std::getenv("VMM86_REQUIRE_GUEST");
  return v && std::string(v) == "1";
}

/// The kernel and initrd of the default guest.
struct GuestFiles {
  std::string kernel;
  std::string initrd;
};

/// The guest files, or nullopt when they are missing.
inline std::optional<GuestFiles> find_guest_files() {
  const std::filesystem::path dir = guest_dir();
  GuestFiles files{(dir / "vmlinuz").string(), (dir / "initrd.cpio.gz").string()};
  std::error_code ec;
  if (!std::filesystem::is_regular_file(files.kernel, ec) || !std::filesystem::is_regular_file(files.initrd, ec)) {
    return std::nullopt;
  }
  return files;
}

}  // namespace vmm86::test

/// Declares `var` as the GuestFiles, or skips the test (fails it under VMM86_REQUIRE_GUEST=1).
#define VMM86_GUEST_FILES_OR_SKIP(var)                                                             \
  const auto var##_found = ::vmm86::test::find_guest_files();                                      \
  if (!var##_found) {                                                                              \
    if (::vmm86::test::guest_required()) {                                                         \
      FAIL() << "VMM86_REQUIRE_GUEST=1 but the guest is missing in " << ::vmm86::test::guest_dir() \
             << " (run guest/build-image.sh)";                                                     \
    }                                                                                              \
    GTEST_SKIP() << "no guest in " << ::vmm86::test::guest_dir() << " (run guest/build-image.sh)"; \
  }                                                                                                \
  const ::vmm86::test::GuestFiles& var = *var##_found
