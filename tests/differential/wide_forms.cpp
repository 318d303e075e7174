// forms(): the instruction forms of the guest ISA, found by decoding, not listed by hand.
// Every prefix set × opcode (one-byte and 0F maps) × ModRM × a few SIB bytes goes through
// the project's Decoder; what it accepts and the classification table classifies becomes
// a form, keyed by mnemonic, operand kinds and the prefixes in effect.
#include <algorithm>
#include <map>
#include <string>

#include "decoder/decoder.h"
#include "tests/differential/wide.h"

namespace vmm86::difftest::wide {

namespace {

std::string reg_kind(ZydisRegister r) {
  switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR8: return "r8";
    case ZYDIS_REGCLASS_GPR16: return "r16";
    case ZYDIS_REGCLASS_GPR32: return "r32";
    case ZYDIS_REGCLASS_X87: return "st";
    case ZYDIS_REGCLASS_MMX: return "mm";
    case ZYDIS_REGCLASS_XMM: return "xmm";
    // Which segment, control or debug register is part of the meaning (mov ss vs mov ds).
    default: return ZydisRegisterGetString(r);
  }
}

/// The operand kinds of an instruction: what distinguishes one of its forms from another.
std::string key_of(const Instruction& insn) {
  std::string key = ZydisMnemonicGetString(insn.mnemonic());
  for (uint8_t i = 0; i < insn.raw.operand_count_visible; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    key += i == 0 ? " " : ",";
    switch (op.type) {
      case ZYDIS_OPERAND_TYPE_REGISTER: key += reg_kind(op.reg.value); break;
      case ZYDIS_OPERAND_TYPE_MEMORY: {
        key += "m";
        key += std::to_string(op.size);
        if (op.mem.type == ZYDIS_MEMOP_TYPE_AGEN) key += "agen";
        if (op.mem.base != ZYDIS_REGISTER_NONE) key += "b";
        if (op.mem.index != ZYDIS_REGISTER_NONE) key += "i";
        if (op.mem.disp.has_displacement) key += "d";
        break;
      }
      case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        key += op.imm.is_relative ? "rel" : "i";
        key += std::to_string(op.size);
        break;
      case ZYDIS_OPERAND_TYPE_POINTER: key += "ptr"; break;
      default: key += "?"; break;
    }
  }
  const auto attr = insn.raw.attributes;
  if (attr & ZYDIS_ATTRIB_HAS_LOCK) key += " lock";
  if (insn.rep_prefix() != RepPrefix::None) key += insn.rep_prefix() == RepPrefix::RepNE ? " repne" : " rep";
  if (insn.segment_override()) key += " seg";
  if (insn.address_size() == 16) key += " a16";
  if (attr & ZYDIS_ATTRIB_HAS_OPERANDSIZE) key += " o66";
  return key;
}

/// True when the instruction writes ESP as an explicit register operand: a form whose
/// other encodings leave ESP alone is better represented by one of those.
bool writes_esp(const Instruction& insn) {
  for (uint8_t i = 0; i < insn.raw.operand_count_visible; ++i) {
    const ZydisDecodedOperand& op = insn.operands[i];
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
        (op.reg.value == ZYDIS_REGISTER_ESP || op.reg.value == ZYDIS_REGISTER_SP)) {
      return true;
    }
  }
  return false;
}

bool is_prefix(uint8_t b) {
  switch (b) {
    case 0x26:
    case 0x2E:
    case 0x36:
    case 0x3E:
    case 0x64:
    case 0x65:
    case 0x66:
    case 0x67:
    case 0xF0:
    case 0xF2:
    case 0xF3: return true;
    default: return false;
  }
}

std::vector<Form> enumerate() {
  // Prefix sets: none, each kind alone, and the combinations that change meaning together
  // (66/F2/F3 are also SSE's mandatory prefixes).
  static const std::vector<std::vector<uint8_t>> kPrefixSets = {
      {},           {0x66},       {0x67},       {0xF2},       {0xF3},       {0xF0},       {0x26},
      {0x2E},       {0x36},       {0x3E},       {0x64},       {0x65},       {0x66, 0x67}, {0xF3, 0x66},
      {0xF3, 0x67}, {0xF2, 0x67}, {0xF0, 0x66}, {0x64, 0x67}, {0x65, 0x66}, {0x26, 0xF3}, {0x2E, 0x66, 0x67}};
  static const uint8_t kSibs[] = {0x24, 0x4B, 0x25, 0x8D, 0xF0};
  Decoder dec(CodeSize::Bits32);
  std::map<std::string, std::pair<std::vector<uint8_t>, bool>> found;  // key -> (bytes, writes esp)
  std::map<std::string, std::string> mnemonic_of;
  Instruction insn;
  for (const auto& prefixes : kPrefixSets) {
    for (int map = 0; map < 2; ++map) {
      for (int op = 0; op < 256; ++op) {
        if (map == 0 && (is_prefix(static_cast<uint8_t>(op)) || op == 0x0F)) continue;
        bool has_modrm = true;
        for (int modrm = 0; modrm < 256 && has_modrm; ++modrm) {
          const bool sib = (modrm & 7) == 4 && (modrm >> 6) != 3;
          for (uint8_t s : kSibs) {
            std::vector<uint8_t> bytes = prefixes;
            if (map == 1) bytes.push_back(0x0F);
            bytes.push_back(static_cast<uint8_t>(op));
            bytes.push_back(static_cast<uint8_t>(modrm));
            bytes.push_back(s);
            const size_t fixed = bytes.size();
            for (uint8_t f = 0x11; bytes.size() < fixed + 10; f = static_cast<uint8_t>(f + 0x22)) bytes.push_back(f);
            if (dec.decode(bytes, &insn) != DecodeStatus::Ok || insn.classes == InsnClass::Unclassified) break;
            has_modrm = (insn.raw.attributes & ZYDIS_ATTRIB_HAS_MODRM) != 0;
            bytes.resize(insn.length());
            const std::string key = key_of(insn);
            const bool esp = writes_esp(insn);
            auto it = found.find(key);
            if (it == found.end()) {
              found.emplace(key, std::make_pair(bytes, esp));
              mnemonic_of[key] = ZydisMnemonicGetString(insn.mnemonic());
            } else if (it->second.second && !esp) {
              it->second = {bytes, false};
            }
            if (!sib || !has_modrm) break;  // the SIB byte was not part of the instruction
          }
        }
      }
    }
  }
  std::vector<Form> out;
  out.reserve(found.size());
  for (auto& [key, v] : found) out.push_back(Form{v.first, key, mnemonic_of[key]});
  return out;
}

}  // namespace

const std::vector<Form>& forms() {
  static const std::vector<Form> all = enumerate();
  return all;
}

}  // namespace vmm86::difftest::wide
