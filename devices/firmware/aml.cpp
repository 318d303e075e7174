#include "devices/firmware/aml.h"

#include "common/check.h"
#include "devices/firmware/table_linker.h"

namespace vmm86::aml {
namespace {

constexpr size_t kNameSegSize = 4;
constexpr size_t kMaxOneBytePkgLength = 0x3F;
constexpr uint8_t kEndTag = 0x79;  // small item 0xF, length 1: the checksum byte
// Small resource items: type << 3 | length (ACPI 6.5 §6.4.2).
constexpr uint8_t kIrqTag = 0x22;
constexpr uint8_t kDmaTag = 0x2A;
constexpr uint8_t kIoTag = 0x47;
constexpr uint8_t kIoDecode16 = 0x01;
// Large resource items (§6.4.3): tag, then a 16-bit length of what follows it.
constexpr uint8_t kDWordAddressTag = 0x87;
constexpr uint8_t kWordAddressTag = 0x88;
constexpr uint16_t kDWordAddressLength = 23;
constexpr uint16_t kWordAddressLength = 13;
enum AddressSpace : uint8_t { kMemorySpace = 0, kIoSpace = 1, kBusNumberSpace = 2 };
constexpr uint8_t kProducerMinMaxFixed = 0x0C;  // _MAF | _MIF, positive decode, producer
constexpr uint8_t kIoEntireRange = 0x03;        // _RNG
constexpr uint8_t kMemoryCacheableReadWrite = 0x03;

void put_name_seg(Bytes& out, std::string_view seg) {
  VMM86_CHECK(!seg.empty() && seg.size() <= kNameSegSize);
  for (size_t i = 0; i < kNameSegSize; ++i) out.push_back(static_cast<uint8_t>(i < seg.size() ? seg[i] : '_'));
}

/// opcode(s), PkgLength, body.
Bytes with_pkg_length(std::initializer_list<uint8_t> opcode, const Bytes& body) {
  Bytes out(opcode);
  append(out, pkg_length(body.size()));
  append(out, body);
  return out;
}

}  // namespace

void append(Bytes& out, const Bytes& more) {
  out.reserve(out.size() + more.size());
  out.insert(out.end(), more.begin(), more.end());
}

Bytes pkg_length(size_t body_size) {
  if (body_size + 1 <= kMaxOneBytePkgLength) return {static_cast<uint8_t>(body_size + 1)};
  // Lead byte: bits 7-6 count the bytes that follow, bits 3-0 are the low nibble; each
  // following byte carries 8 more bits.
  for (size_t follow = 1; follow <= 3; ++follow) {
    const size_t total = body_size + 1 + follow;
    if (total < (size_t{1} << (4 + 8 * follow))) {
      Bytes out{static_cast<uint8_t>(follow << 6 | (total & 0xF))};
      for (size_t i = 0; i < follow; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  VMM86_CHECK(false && "AML package longer than 256 MiB");
  return {};
}

Bytes name_string(std::string_view path) {
  Bytes out;
  while (!path.empty() && (path.front() == '\\' || path.front() == '^')) {
    out.push_back(path.front() == '\\' ? kRootChar : kParentPrefixChar);
    path.remove_prefix(1);
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  if (segs.empty()) {
    out.push_back(kZeroOp);  // NullName
  } else if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (std::string_view seg : segs) put_name_seg(out, seg);
  return out;
}

Bytes integer(uint32_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= 0xFF) {
    out.push_back(kBytePrefix);
    append_le(out, value, 1);
  } else if (value <= 0xFFFF) {
    out.push_back(kWordPrefix);
    append_le(out, value, 2);
  } else {
    out.push_back(kDWordPrefix);
    append_le(out, value, 4);
  }
  return out;
}

Bytes string(std::string_view text) {
  Bytes out{kStringPrefix};
  for (const char c : text) out.push_back(static_cast<uint8_t>(c));  // not insert: GCC 12 -Warray-bounds
  out.push_back(0);
  return out;
}

Bytes eisa_id(std::string_view id) {
  VMM86_CHECK(id.size() == 7);
  auto letter = [&](size_t i) { return static_cast<uint32_t>(id[i] - 0x40) & 0x1F; };
  auto hex = [&](size_t i) {
    const char c = id[i];
    return static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  // Bytes in memory order: the compressed letters (big-endian 15 bits), then the digits.
  const uint32_t letters = letter(0) << 10 | letter(1) << 5 | letter(2);
  const uint32_t value = (letters >> 8) | (letters & 0xFF) << 8 | (hex(3) << 4 | hex(4)) << 16 |
                         (hex(5) << 4 | hex(6)) << 24;
  Bytes out{kDWordPrefix};
  append_le(out, value, 4);
  return out;
}

Bytes name(std::string_view path, const Bytes& object) {
  Bytes out{kNameOp};
  append(out, name_string(path));
  append(out, object);
  return out;
}

Bytes package(std::span<const Bytes> elements) {
  VMM86_CHECK(elements.size() <= 0xFF);
  Bytes body{static_cast<uint8_t>(elements.size())};
  for (const Bytes& element : elements) append(body, element);
  return with_pkg_length({kPackageOp}, body);
}

Bytes scope(std::string_view path, const Bytes& body) {
  Bytes inner = name_string(path);
  append(inner, body);
  return with_pkg_length({kScopeOp}, inner);
}

Bytes device(std::string_view name, const Bytes& body) {
  Bytes inner = name_string(name);
  append(inner, body);
  return with_pkg_length({kExtOpPrefix, kDeviceOp}, inner);
}

Bytes buffer(std::span<const uint8_t> data) {
  Bytes inner = integer(static_cast<uint32_t>(data.size()));
  inner.insert(inner.end(), data.begin(), data.end());
  return with_pkg_length({kBufferOp}, inner);
}

ResourceTemplate& ResourceTemplate::io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  descriptors_.push_back(kIoTag);
  descriptors_.push_back(kIoDecode16);
  append_le(descriptors_, min, 2);
  append_le(descriptors_, max, 2);
  descriptors_.push_back(alignment);
  descriptors_.push_back(length);
  return *this;
}

ResourceTemplate& ResourceTemplate::irq(unsigned irq) {
  VMM86_CHECK(irq < 16);
  descriptors_.push_back(kIrqTag);
  append_le(descriptors_, 1u << irq, 2);
  return *this;
}

ResourceTemplate& ResourceTemplate::dma(unsigned channel) {
  VMM86_CHECK(channel < 8);
  descriptors_.push_back(kDmaTag);
  descriptors_.push_back(static_cast<uint8_t>(1u << channel));
  descriptors_.push_back(0);  // compatibility timing, not a bus master, 8-bit transfers
  return *this;
}

ResourceTemplate& ResourceTemplate::address_space(uint8_t space, uint8_t type_flags, uint32_t min, uint32_t max,
                                                  unsigned field_size) {
  // Word or DWord Address Space Descriptor: tag, length, resource type, general flags,
  // type-specific flags, then granularity, minimum, maximum, translation offset, length.
  const bool dword = field_size == 4;
  descriptors_.push_back(dword ? kDWordAddressTag : kWordAddressTag);
  append_le(descriptors_, dword ? kDWordAddressLength : kWordAddressLength, 2);
  descriptors_.push_back(space);
  descriptors_.push_back(kProducerMinMaxFixed);
  descriptors_.push_back(type_flags);
  for (const uint64_t field : {uint64_t{0}, uint64_t{min}, uint64_t{max}, uint64_t{0}, uint64_t{max} - min + 1}) {
    append_le(descriptors_, field, field_size);
  }
  return *this;
}

ResourceTemplate& ResourceTemplate::word_bus_number(uint16_t min, uint16_t max) {
  return address_space(kBusNumberSpace, 0, min, max, 2);
}

ResourceTemplate& ResourceTemplate::word_io(uint16_t min, uint16_t max) {
  return address_space(kIoSpace, kIoEntireRange, min, max, 2);
}

ResourceTemplate& ResourceTemplate::dword_memory(uint32_t min, uint32_t max) {
  return address_space(kMemorySpace, kMemoryCacheableReadWrite, min, max, 4);
}

Bytes ResourceTemplate::finish() const {
  Bytes data = descriptors_;
  data.push_back(kEndTag);
  data.push_back(0);  // checksum 0: "the template is consistent" (what ASL compilers emit)
  return buffer(data);
}

}  // namespace vmm86::aml
