// Helpers shared by the decoder tests: hex parsing, readable class sets, and a walk over
// the opcode space.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "decoder/decoder.h"

namespace vmm86::test {

/// "0F 22 D8" -> {0x0F, 0x22, 0xD8}; nullopt on a malformed byte.
inline std::optional<std::vector<uint8_t>> parse_hex(std::string_view text) {
  std::vector<uint8_t> out;
  std::istringstream in{std::string(text)};
  std::string tok;
  while (in >> tok) {
    if (tok.size() != 2) return std::nullopt;
    size_t used = 0;
    const unsigned long v = std::stoul(tok, &used, 16);
    if (used != 2) return std::nullopt;
    out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

inline std::string hex(std::span<const uint8_t> bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string s;
  for (size_t i = 0; i < n && i < bytes.size(); ++i) {
    if (i != 0) s += ' ';
    s += kDigits[bytes[i] >> 4];
    s += kDigits[bytes[i] & 15];
  }
  return s;
}

/// "ControlFlow StackOp" (classes in enum order), "-" for the empty set.
inline std::string to_string(InsnClassSet set) {
  std::string s;
  for (unsigned c = 0; c < static_cast<unsigned>(InsnClass::Count); ++c) {
    if (!set.has(static_cast<InsnClass>(c))) continue;
    if (!s.empty()) s += ' ';
    s += insn_class_name(static_cast<InsnClass>(c));
  }
  return s.empty() ? "-" : s;
}

/// Parses class names as to_string prints them; nullopt on an unknown name.
inline std::optional<InsnClassSet> parse_classes(std::string_view text) {
  InsnClassSet set;
  std::istringstream in{std::string(text)};
  std::string tok;
  while (in >> tok) {
    bool found = false;
    for (unsigned c = 0; c < static_cast<unsigned>(InsnClass::Count); ++c) {
      if (insn_class_name(static_cast<InsnClass>(c)) == tok) {
        set.add(static_cast<InsnClass>(c));
        found = true;
      }
    }
    if (!found) return std::nullopt;
  }
  return set;
}

/// One byte pattern of the opcode-space walk that decoded successfully.
struct Sample {
  CodeSize size;
  std::array<uint8_t, 15> bytes;  ///< the pattern (the instruction is its first length() bytes)
  Instruction insn;
};

/// Decodes prefixes x {one-byte, 0F, 0F 38, 0F 3A} x opcode x ModRM (followed by zero
/// SIB/displacement/immediate bytes) in 16- and 32-bit code and calls `visit` for each
/// pattern that decodes. The prefixes are those that select other instructions (66, 67
/// and the mandatory F2/F3); others do not change the mnemonic. ModRM: every register
/// form (mod 3 selects instructions by reg and rm, e.g. 0F 01 C8 or D9 E8), one memory
/// form per reg field (rm only changes the addressing there).
inline void walk_opcode_space(const std::function<void(const Sample&)>& visit) {
  static const std::vector<std::vector<uint8_t>> kPrefixes = {{},     {0x66},       {0x67},      {0xF2},
                                                              {0xF3}, {0x66, 0xF2}, {0x66, 0xF3}};
  static const std::vector<std::vector<uint8_t>> kMaps = {{}, {0x0F}, {0x0F, 0x38}, {0x0F, 0x3A}};
  static const std::vector<uint8_t> kModrms = [] {
    std::vector<uint8_t> v;
    for (unsigned reg = 0; reg < 8; ++reg) v.push_back(static_cast<uint8_t>(reg << 3));  // [eax] / [bx+si]
    for (unsigned m = 0xC0; m <= 0xFF; ++m) v.push_back(static_cast<uint8_t>(m));
    return v;
  }();
  for (CodeSize size : {CodeSize::Bits16, CodeSize::Bits32}) {
    const Decoder decoder(size);
    Sample s{size, {}, {}};  // reused: the walk allocates nothing per pattern
    for (const auto& prefix : kPrefixes) {
      for (const auto& map : kMaps) {
        for (unsigned op = 0; op < 256; ++op) {
          for (uint8_t modrm : kModrms) {
            s.bytes.fill(0);
            auto end = std::copy(prefix.begin(), prefix.end(), s.bytes.begin());
            end = std::copy(map.begin(), map.end(), end);
            *end++ = static_cast<uint8_t>(op);
            *end = modrm;
            if (decoder.decode(s.bytes, &s.insn) == DecodeStatus::Ok) visit(s);
          }
        }
      }
    }
  }
}

}  // namespace vmm86::test
