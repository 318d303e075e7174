// A small encoder for ACPI Machine Language (ACPI 6.5, chapter 20): just the terms a PC's
// DSDT needs to describe fixed hardware — names, integers, strings, packages, scopes,
// devices and resource templates. Each function returns the encoded bytes of one term, so
// a table is built by nesting calls, the way the ASL source nests. No methods, no
// operators: what the tables say is static.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vmm86::aml {

using Bytes = std::vector<uint8_t>;

/// Opcodes and prefixes used here (ACPI 6.5 §20.2).
enum : uint8_t {
  kZeroOp = 0x00,
  kOneOp = 0x01,
  kNameOp = 0x08,
  kBytePrefix = 0x0A,
  kWordPrefix = 0x0B,
  kDWordPrefix = 0x0C,
  kStringPrefix = 0x0D,
  kScopeOp = 0x10,
  kBufferOp = 0x11,
  kPackageOp = 0x12,
  kDualNamePrefix = 0x2E,
  kMultiNamePrefix = 0x2F,
  kRootChar = 0x5C,
  kParentPrefixChar = 0x5E,
  kExtOpPrefix = 0x5B,
  kDeviceOp = 0x82,  ///< after kExtOpPrefix
};

/// PkgLength for a body of `body_size` bytes: the encoded length counts itself (§20.2.4).
[[nodiscard]] Bytes pkg_length(size_t body_size);
/// A NameString: "\\_SB.PCI0", "_S5", "^ISA"; segments shorter than 4 are padded with '_'.
[[nodiscard]] Bytes name_string(std::string_view path);
/// The shortest integer encoding (ZeroOp, OneOp, Byte/Word/DWord prefixes); at most 32
/// bits, as a revision-1 definition block holds.
[[nodiscard]] Bytes integer(uint32_t value);
[[nodiscard]] Bytes string(std::string_view text);
/// ASL's EisaId("PNP0A03"): three letters of 5 bits and four hex digits, as a DWord.
[[nodiscard]] Bytes eisa_id(std::string_view id);
/// Name(path, object).
[[nodiscard]] Bytes name(std::string_view path, const Bytes& object);
/// Package(n) {elements...}.
[[nodiscard]] Bytes package(std::span<const Bytes> elements);
/// Scope(path) {body}.
[[nodiscard]] Bytes scope(std::string_view path, const Bytes& body);
/// Device(name) {body}.
[[nodiscard]] Bytes device(std::string_view name, const Bytes& body);
/// Buffer() {data}.
[[nodiscard]] Bytes buffer(std::span<const uint8_t> data);

/// Appends `more` to `out`.
void append(Bytes& out, const Bytes& more);

/// ASL's ResourceTemplate: resource descriptors (ACPI 6.5 §6.4) ended by an End Tag, in a
/// Buffer.
class ResourceTemplate {
 public:
  /// IO(Decode16, min, max, alignment, length).
  ResourceTemplate& io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
  /// IRQNoFlags() {irq}: edge, active high, exclusive (ISA).
  ResourceTemplate& irq(unsigned irq);
  /// DMA(Compatibility, NotBusMaster, Transfer8) {channel}.
  ResourceTemplate& dma(unsigned channel);
  /// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, count).
  ResourceTemplate& word_bus_number(uint16_t min, uint16_t max);
  /// WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, count).
  ResourceTemplate& word_io(uint16_t min, uint16_t max);
  /// DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0,
  /// min, max, 0, count).
  ResourceTemplate& dword_memory(uint32_t min, uint32_t max);
  /// The Buffer term.
  [[nodiscard]] Bytes finish() const;

 private:
  /// A Word (field_size 2) or DWord (4) Address Space Descriptor for [min, max].
  ResourceTemplate& address_space(uint8_t space, uint8_t type_flags, uint32_t min, uint32_t max, unsigned field_size);

  Bytes descriptors_;
};

}  // namespace vmm86::aml
