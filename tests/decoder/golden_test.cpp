// Golden classification of a corpus of byte sequences (tests as data: golden_classes.txt).
// Each line: <16|32> <hex bytes> : <mnemonic> <classes...>   or   ... : !<DecodeStatus>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "decoder/decoder.h"
#include "test_util.h"

namespace vmm86 {
namespace {

struct GoldenCase {
  int line = 0;
  CodeSize size = CodeSize::Bits32;
  std::vector<uint8_t> bytes;
  std::string mnemonic;  ///< empty when a failure status is expected
  InsnClassSet classes;
  DecodeStatus status = DecodeStatus::Ok;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

std::vector<GoldenCase> load_corpus() {
  std::ifstream in(VMM86_DECODER_GOLDEN_FILE);
  EXPECT_TRUE(in.good()) << "cannot open " << VMM86_DECODER_GOLDEN_FILE;
  std::vector<GoldenCase> cases;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    GoldenCase c;
    c.line = number;
    const size_t colon = line.find(':');
    if (colon == std::string::npos || (line.rfind("16 ", 0) != 0 && line.rfind("32 ", 0) != 0)) {
      ADD_FAILURE() << "golden line " << number << " malformed: " << line;
      continue;
    }
    c.size = line.rfind("16 ", 0) == 0 ? CodeSize::Bits16 : CodeSize::Bits32;
    const auto bytes = test::parse_hex(line.substr(3, colon - 3));
    const std::string rhs = trim(line.substr(colon + 1));
    if (!bytes || bytes->empty() || rhs.empty()) {
      ADD_FAILURE() << "golden line " << number << " malformed: " << line;
      continue;
    }
    c.bytes = *bytes;
    if (rhs[0] == '!') {
      const std::string status = rhs.substr(1);
      if (status == "NeedMoreBytes") c.status = DecodeStatus::NeedMoreBytes;
      else if (status == "Invalid") c.status = DecodeStatus::Invalid;
      else if (status == "TooLong") c.status = DecodeStatus::TooLong;
      else ADD_FAILURE() << "golden line " << number << ": unknown status " << status;
    } else {
      const size_t space = rhs.find(' ');
      c.mnemonic = rhs.substr(0, space);
      const auto classes = test::parse_classes(space == std::string::npos ? "" : rhs.substr(space));
      if (!classes || classes->empty()) {
        ADD_FAILURE() << "golden line " << number << ": bad class list: " << rhs;
        continue;
      }
      c.classes = *classes;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(DecoderGolden, Corpus) {
  const std::vector<GoldenCase> cases = load_corpus();
  ASSERT_GT(cases.size(), 100u);
  const Decoder d16(CodeSize::Bits16), d32(CodeSize::Bits32);
  for (const GoldenCase& c : cases) {
    SCOPED_TRACE("golden line " + std::to_string(c.line) + ": " + test::hex(c.bytes, c.bytes.size()));
    Instruction insn;
    const DecodeStatus status = (c.size == CodeSize::Bits16 ? d16 : d32).decode(c.bytes, &insn);
    ASSERT_EQ(static_cast<int>(status), static_cast<int>(c.status));
    if (status != DecodeStatus::Ok) continue;
    EXPECT_EQ(ZydisMnemonicGetString(insn.mnemonic()), c.mnemonic);
    // The corpus lists whole instructions: a length mismatch means a typo in the data.
    EXPECT_EQ(insn.length(), c.bytes.size());
    EXPECT_EQ(test::to_string(insn.classes), test::to_string(c.classes));
  }
}

}  // namespace
}  // namespace vmm86
