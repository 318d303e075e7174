// Shared pieces of the qcow2 tests: a temporary folder, QEMU's own tools (qemu-img,
// qemu-io: Debian's qemu-utils) as the reference that makes and checks the images, and
// small file helpers. A test that needs the tools skips with the reason when they are missing.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "devices/storage/qcow2_format.h"

namespace vmm86::test {

struct CommandResult {
  int status = -1;     ///< exit status, -1 when it did not exit normally
  std::string output;  ///< stdout and stderr together
};

/// Runs `command` with /bin/sh; its output (stdout and stderr) is captured.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, got);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline bool have_qemu_tools() {
  static const bool have = run_command("qemu-img --version").status == 0 &&
                           run_command("qemu-io --version").status == 0;
  return have;
}

inline std::string quoted(const std::string& path) { return "'" + path + "'"; }

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Overwrites `bytes` big-endian bytes at `offset` of the file with `value`.
inline void patch_be(const std::string& path, uint64_t offset, unsigned bytes, uint64_t value) {
  std::vector<uint8_t> field(bytes);
  qcow2::store_be(field.data(), bytes, value);
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(reinterpret_cast<const char*>(field.data()), bytes);
}

inline uint64_t read_be(const std::string& path, uint64_t offset, unsigned bytes) {
  std::vector<uint8_t> field(bytes);
  std::ifstream file(path, std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  file.read(reinterpret_cast<char*>(field.data()), bytes);
  return qcow2::load_be(field.data(), bytes);
}

/// A fixture with a temporary folder and qemu-img / qemu-io required.
class Qcow2Test : public ::testing::Test {
 protected:
  Qcow2Test() {
    std::string pattern = ::testing::TempDir() + "vmm86-qcow2-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp";
    dir_ = pattern;
  }
  ~Qcow2Test() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  void SetUp() override {
    if (!have_qemu_tools()) GTEST_SKIP() << "qemu-img and qemu-io (Debian: qemu-utils) are not installed";
  }

  [[nodiscard]] std::string path(const std::string& name) const { return dir_ + "/" + name; }

  /// Runs a qemu-img/qemu-io command line; a failure fails the test with its output.
  CommandResult tool(const std::string& command, int expected_status = 0) {
    CommandResult result = run_command(command);
    EXPECT_EQ(result.status, expected_status) << command << "\n" << result.output;
    return result;
  }
  /// qemu-img create -f qcow2 with `options` (-o ...), `size` bytes.
  std::string create(const std::string& name, uint64_t size, const std::string& options = "") {
    const std::string file = path(name);
    tool("qemu-img create -q -f qcow2 " + (options.empty() ? "" : "-o " + options + " ") + quoted(file) + " " +
         std::to_string(size));
    return file;
  }
  void qemu_io(const std::string& file, const std::string& command, const std::string& format = "qcow2") {
    const CommandResult result = tool("qemu-io -f " + format + " -c " + quoted(command) + " " + quoted(file));
    EXPECT_EQ(result.output.find("fail"), std::string::npos) << command << "\n" << result.output;
  }
  /// qemu-img check: exit 0 and no leaks or corruptions.
  void expect_clean(const std::string& file) {
    const CommandResult result = tool("qemu-img check " + quoted(file));
    EXPECT_NE(result.output.find("No errors were found"), std::string::npos) << result.output;
  }
  /// The image's guest-visible bytes, as QEMU sees them.
  std::vector<uint8_t> as_raw(const std::string& file) {
    const std::string out = file + ".converted";
    tool("qemu-img convert -O raw " + quoted(file) + " " + quoted(out));
    std::vector<uint8_t> bytes = read_file(out);
    std::filesystem::remove(out);
    return bytes;
  }

  std::string dir_;
};

}  // namespace vmm86::test
