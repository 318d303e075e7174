#include "vmm/loader/e820.h"

#include <algorithm>

#include "vmm/loader/boot_params.h"

namespace vmm86::linux_boot {

std::string_view e820_type_name(E820Type type) {
  switch (type) {
    case E820Type::Ram: return "RAM";
    case E820Type::Reserved: return "reserved";
    case E820Type::Acpi: return "ACPI data";
    case E820Type::Nvs: return "ACPI NVS";
    case E820Type::Unusable: return "unusable";
  }
  return "unknown";
}

namespace {

/// Removes [cut.start, cut.end()) from every range of `map`, splitting ranges it lies inside.
void carve(std::vector<E820Range>& map, const E820Range& cut) {
  std::vector<E820Range> out;
  out.reserve(map.size() + 1);
  for (const E820Range& r : map) {
    if (r.end() <= cut.start || cut.end() <= r.start) {
      out.push_back(r);
      continue;
    }
    if (r.start < cut.start) out.push_back({r.start, cut.start - r.start, r.type});
    if (cut.end() < r.end()) out.push_back({cut.end(), r.end() - cut.end(), r.type});
  }
  map = std::move(out);
}

}  // namespace

Result<std::vector<E820Range>> build_e820_map(uint64_t ram_bytes, std::span<const E820Range> holes) {
  std::vector<E820Range> map;
  map.push_back({0, std::min(ram_bytes, kEbdaStart), E820Type::Ram});
  map.push_back({kEbdaStart, kVgaHoleStart - kEbdaStart, E820Type::Reserved});
  map.push_back({kBiosRomStart, kHighMemStart - kBiosRomStart, E820Type::Reserved});
  if (ram_bytes > kHighMemStart) map.push_back({kHighMemStart, ram_bytes - kHighMemStart, E820Type::Ram});

  for (const E820Range& hole : holes) {
    if (hole.size == 0 || hole.end() < hole.start || hole.type == E820Type::Ram) {
      return make_error("bad reserved range {:#x}+{:#x} ({}) in the platform's memory map", hole.start, hole.size,
                        e820_type_name(hole.type));
    }
    carve(map, hole);
    map.push_back(hole);
  }

  std::erase_if(map, [](const E820Range& r) { return r.size == 0; });
  std::sort(map.begin(), map.end(), [](const E820Range& a, const E820Range& b) { return a.start < b.start; });
  std::vector<E820Range> merged;
  for (const E820Range& r : map) {
    if (!merged.empty() && merged.back().end() == r.start && merged.back().type == r.type) {
      merged.back().size += r.size;
    } else {
      merged.push_back(r);
    }
  }
  if (merged.size() > kE820MaxEntries) {
    return make_error("the memory map has {} ranges; the boot protocol passes at most {}", merged.size(),
                      kE820MaxEntries);
  }
  return merged;
}

std::optional<E820Range> ram_range_containing(std::span<const E820Range> map, uint64_t start, uint64_t end) {
  for (const E820Range& r : map) {
    if (r.type == E820Type::Ram && r.start <= start && end <= r.end()) return r;
  }
  return std::nullopt;
}

uint64_t extended_memory_kib(std::span<const E820Range> map) {
  auto r = ram_range_containing(map, kHighMemStart, kHighMemStart);
  return r ? (r->end() - kHighMemStart) / 1024 : 0;
}

}  // namespace vmm86::linux_boot
