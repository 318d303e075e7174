// The assembled guest programs keep the contract of README.md that an engine relies on
// before running them: they fit the load window and start in real mode with `cli`.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "decoder/decoder.h"

namespace vmm86 {
namespace {

std::vector<uint8_t> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_contract(const char* path) {
  SCOPED_TRACE(path);
  const std::vector<uint8_t> image = read_file(path);
  ASSERT_FALSE(image.empty());
  EXPECT_LE(image.size(), 32u * 1024u);  // loaded at 0x8000, below 0x10000
  // Entered in real mode: the first instruction decodes as 16-bit code and is cli.
  Instruction insn;
  ASSERT_EQ(Decoder(CodeSize::Bits16).decode(image, &insn), DecodeStatus::Ok);
  EXPECT_EQ(insn.mnemonic(), ZYDIS_MNEMONIC_CLI);
}

TEST(GuestPrograms, PmodeKeepsTheContract) { expect_contract(VMM86_GUEST_PMODE_BIN); }
TEST(GuestPrograms, TripleFaultKeepsTheContract) { expect_contract(VMM86_GUEST_TRIPLE_FAULT_BIN); }

}  // namespace
}  // namespace vmm86
