// ACPICA's own tools judge the tables: `iasl -d` disassembles each one (the data tables
// field by field, the DSDT's AML term by term) and the disassembled DSDT must compile again
// without errors. iasl rejecting our tables is a defect. Debian's acpica-tools
// (scripts/setup.sh installs it); the test skips when iasl is absent.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "devices/firmware/acpi_tables.h"

namespace vmm86 {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

bool have_iasl() { return std::system("command -v iasl >/dev/null 2>&1") == 0; }

/// Runs `command` in `dir`; returns its exit status and appends its output to *output.
int run_in(const fs::path& dir, const std::string& command, std::string* output) {
  const std::string full = "cd '" + dir.string() + "' && " + command + " 2>&1";
  std::FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class AcpiIasl : public ::testing::TestWithParam<bool> {};

TEST_P(AcpiIasl, DisassemblesEveryTableAndRecompilesTheDsdt) {
  if (!have_iasl()) GTEST_SKIP() << "iasl (Debian's acpica-tools) is not installed";
  PlatformTablesConfig config;
  config.apic = GetParam();
  config.pci = GetParam();
  config.floppy = GetParam();
  config.com2 = GetParam();
  const LinkedTables tables = build_acpi_tables(config);
  const auto linked = tables.link(std::vector<uint32_t>{0xF0000, 0x0FFE0000});
  const Bytes& blob = linked[tables.find(acpi::kTablesFile)];

  const fs::path dir = fs::temp_directory_path() /
                       ("vmm86-iasl-" + std::to_string(::getpid()) + "-" + std::to_string(GetParam()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> names;
  for (size_t at = 0; at + 8 <= blob.size();) {
    const std::string signature(blob.begin() + static_cast<ptrdiff_t>(at),
                                blob.begin() + static_cast<ptrdiff_t>(at + 4));
    const uint32_t length = blob[at + 4] | blob[at + 5] << 8 | blob[at + 6] << 16 | uint32_t{blob[at + 7]} << 24;
    ASSERT_LE(at + length, blob.size());
    std::ofstream(dir / (signature + ".dat"), std::ios::binary)
        .write(reinterpret_cast<const char*>(blob.data() + at), length);
    names.push_back(signature);
    at += length;
  }
  EXPECT_EQ(names.size(), config.apic ? 5u : 4u);
  for (const std::string& name : names) {
    std::string output;
    EXPECT_EQ(run_in(dir, "iasl -d " + name + ".dat", &output), 0) << name << ":\n" << output;
    const std::string dsl = read_text(dir / (name + ".dsl"));
    EXPECT_NE(dsl.find("Signature"), std::string::npos) << name << " was not disassembled:\n" << output;
    // iasl marks what it finds wrong: "Incorrect checksum", "Invalid ...", or "****" (the one
    // allowed is its note that a revision-1 table has 32-bit integers).
    std::istringstream lines(dsl);
    for (std::string line; std::getline(lines, line);) {
      const bool marked = line.find("****") != std::string::npos && line.find("32-bit table (V1)") == std::string::npos;
      if (marked || line.find("Incorrect") != std::string::npos || line.find("Invalid") != std::string::npos) {
        ADD_FAILURE() << name << ": iasl flags " << line;
      }
    }
  }
  const std::string dsdt = read_text(dir / "DSDT.dsl");
  EXPECT_NE(dsdt.find("Name (\\_S5, Package (0x04)"), std::string::npos) << dsdt;
  EXPECT_EQ(dsdt.find("PNP0A03") != std::string::npos, config.pci) << dsdt;
  std::string compiled;
  EXPECT_EQ(run_in(dir, "iasl -p recompiled DSDT.dsl", &compiled), 0) << compiled;
  EXPECT_NE(compiled.find("0 Errors"), std::string::npos) << compiled;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Machines, AcpiIasl, ::testing::Values(false, true));

}  // namespace
}  // namespace vmm86
