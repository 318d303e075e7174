#include "devices/firmware/table_linker.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace vmm86 {
namespace {

// Offsets inside one 128-byte loader command (SeaBIOS's struct romfile_loader_entry_s).
constexpr size_t kNameAt = 4;
constexpr size_t kAllocAlignAt = 60;
constexpr size_t kAllocZoneAt = 64;
constexpr size_t kPointerSourceAt = 60;
constexpr size_t kPointerOffsetAt = 116;
constexpr size_t kPointerSizeAt = 120;
constexpr size_t kChecksumOffsetAt = 60;
constexpr size_t kChecksumStartAt = 64;
constexpr size_t kChecksumLengthAt = 68;

void store_le(uint8_t* out, uint64_t value, size_t size) {
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t get_le(const uint8_t* in, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= uint64_t{in[i]} << (8 * i);
  return value;
}

}  // namespace

void append_le(std::vector<uint8_t>& out, uint64_t value, size_t size) {
  for (size_t i = 0; i < size; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// Byte by byte: GCC 12's -O3 flags vector::insert of short ranges here (-Wstringop-overflow,
// a known false positive).
void append_text(std::vector<uint8_t>& out, std::string_view text) {
  for (const char c : text) out.push_back(static_cast<uint8_t>(c));
}

uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (const uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return sum;
}

size_t LinkedTables::find(std::string_view name) const {
  return static_cast<size_t>(
      std::find_if(files.begin(), files.end(), [&](const TableFile& f) { return f.name == name; }) - files.begin());
}

std::vector<std::vector<uint8_t>> LinkedTables::link(std::span<const uint32_t> addresses) const {
  VMM86_CHECK(addresses.size() == files.size());
  std::vector<std::vector<uint8_t>> out;
  for (const TableFile& file : files) out.push_back(file.bytes);
  for (const TablePointer& p : pointers) {
    uint8_t* field = out[p.file].data() + p.offset;
    store_le(field, get_le(field, p.size) + addresses[p.target], p.size);
  }
  for (const TableChecksum& c : checksums) {
    std::vector<uint8_t>& bytes = out[c.file];
    bytes[c.offset] = static_cast<uint8_t>(bytes[c.offset] - byte_sum({bytes.data() + c.start, c.length}));
  }
  return out;
}

Result<std::vector<uint8_t>> LinkedTables::loader_script() const {
  using namespace table_loader;
  std::vector<uint8_t> script;
  auto command = [&](Command kind) {
    script.resize(script.size() + kCommandSize);
    uint8_t* entry = script.data() + script.size() - kCommandSize;
    store_le(entry, kind, 4);
    return entry;
  };
  auto put_name = [&](uint8_t* at, const std::string& name) -> Status {
    if (name.empty() || name.size() >= kFileNameSize) return make_error("table file name '{}' does not fit", name);
    std::memcpy(at, name.data(), name.size());
    return ok_status();
  };
  for (const TableFile& file : files) {
    uint8_t* entry = command(kAllocate);
    VMM86_TRY(put_name(entry + kNameAt, file.name));
    store_le(entry + kAllocAlignAt, file.alignment, 4);
    entry[kAllocZoneAt] = static_cast<uint8_t>(file.zone);
  }
  for (const TablePointer& p : pointers) {
    uint8_t* entry = command(kAddPointer);
    VMM86_TRY(put_name(entry + kNameAt, files[p.file].name));
    VMM86_TRY(put_name(entry + kPointerSourceAt, files[p.target].name));
    store_le(entry + kPointerOffsetAt, p.offset, 4);
    entry[kPointerSizeAt] = p.size;
  }
  for (const TableChecksum& c : checksums) {
    uint8_t* entry = command(kAddChecksum);
    VMM86_TRY(put_name(entry + kNameAt, files[c.file].name));
    store_le(entry + kChecksumOffsetAt, c.offset, 4);
    store_le(entry + kChecksumStartAt, c.start, 4);
    store_le(entry + kChecksumLengthAt, c.length, 4);
  }
  return script;
}

}  // namespace vmm86
