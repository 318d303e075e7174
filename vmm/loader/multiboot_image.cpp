#include "vmm/loader/multiboot_image.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

namespace vmm86::multiboot {

namespace {

/// Header bytes: magic, flags, checksum; then the five address fields (bit 16); then the
/// four graphics fields (bit 2).
constexpr uint64_t kMagicFieldsBytes = 12;
constexpr uint64_t kAddressFieldsEnd = 32;
constexpr uint64_t kGraphicsFieldsEnd = 48;
/// Program headers read at most: e_phnum is 16 bits, so this is never the limit for a
/// well-formed file, only for e_phentsize garbage.
constexpr uint64_t kMaxProgramHeaderBytes = 4ull << 20;

uint32_t load32(std::span<const uint8_t> bytes, uint64_t offset) {
  uint32_t value = 0;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

/// How many bytes the header occupies, given its flags.
uint64_t header_bytes(uint32_t flags) {
  if (flags & header_flags::VideoMode) return kGraphicsFieldsEnd;
  if (flags & header_flags::AoutKludge) return kAddressFieldsEnd;
  return kMagicFieldsBytes;
}

Result<KernelImage> parse_aout_kludge(const ImageSource& source, const Header& h) {
  if (h.header_addr < h.load_addr) {
    return make_error("Multiboot header_addr {:#x} is below load_addr {:#x}", h.header_addr, h.load_addr);
  }
  if (h.header_addr - h.load_addr > h.offset) {
    return make_error(
        "Multiboot load_addr {:#x} is {:#x} bytes before header_addr, but the header is only {:#x} bytes into the file",
        h.load_addr, h.header_addr - h.load_addr, h.offset);
  }
  const uint64_t text_offset = h.offset - (h.header_addr - h.load_addr);
  uint64_t load_size = source.size - text_offset;
  if (h.load_end_addr != 0) {
    if (h.load_end_addr < h.load_addr) {
      return make_error("Multiboot load_end_addr {:#x} is below load_addr {:#x}", h.load_end_addr, h.load_addr);
    }
    load_size = h.load_end_addr - h.load_addr;
    if (text_offset + load_size > source.size) {
      return make_error("truncated: the Multiboot header loads {:#x} bytes from file offset {:#x}, the file has {:#x}",
                        load_size, text_offset, source.size);
    }
  }
  uint64_t mem_size = load_size;
  if (h.bss_end_addr != 0) {
    if (h.bss_end_addr < h.load_addr + load_size) {
      return make_error("Multiboot bss_end_addr {:#x} is below the end of the loaded bytes {:#x}", h.bss_end_addr,
                        h.load_addr + load_size);
    }
    mem_size = h.bss_end_addr - h.load_addr;
  }
  if (h.load_addr + mem_size > k4GiB) {
    return make_error("the image at {:#x} ({:#x} bytes) runs past 4 GiB", h.load_addr, mem_size);
  }
  if (mem_size == 0) return make_error("the Multiboot header loads nothing (load_addr {:#x})", h.load_addr);
  if (h.entry_addr < h.load_addr || h.entry_addr >= h.load_addr + load_size) {
    return make_error("entry point {:#x} is outside the loaded image {}", h.entry_addr,
                      range_string(h.load_addr, h.load_addr + load_size));
  }
  KernelImage image;
  image.header = h;
  image.aout_kludge = true;
  image.segments.push_back({h.load_addr, text_offset, load_size, mem_size});
  image.entry = h.entry_addr;
  return image;
}

/// Checks the ELF identification and file header; messages say what the file is instead.
Status check_elf_header(const ImageSource& source, const Elf32_Ehdr& eh) {
  if (source.head.size() < EI_NIDENT || std::memcmp(source.head.data(), ELFMAG, SELFMAG) != 0) {
    return make_error("the Multiboot header asks for an ELF image (flags bit 16 clear), but the file is not ELF");
  }
  if (source.head[EI_CLASS] == ELFCLASS64) {
    return make_error("a 64-bit ELF file: Multiboot boots 32-bit (i386) ELF kernels only");
  }
  if (source.head[EI_CLASS] != ELFCLASS32 || source.head[EI_DATA] != ELFDATA2LSB) {
    return make_error("not a 32-bit little-endian ELF file");
  }
  if (source.head.size() < sizeof(Elf32_Ehdr)) return make_error("truncated ELF header ({} bytes)", source.size);
  if (eh.e_machine != EM_386) return make_error("an ELF file for machine {}, not i386", eh.e_machine);
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
    return make_error("ELF type {} is not an executable", eh.e_type);
  }
  if (eh.e_phnum == 0) return make_error("the ELF file has no program headers");
  if (eh.e_phentsize < sizeof(Elf32_Phdr)) {
    return make_error("ELF program header size {} is below {}", eh.e_phentsize, sizeof(Elf32_Phdr));
  }
  const uint64_t table_bytes = uint64_t{eh.e_phnum} * eh.e_phentsize;
  if (table_bytes > kMaxProgramHeaderBytes || eh.e_phoff + table_bytes > source.size) {
    return make_error("truncated: the ELF program headers at {:#x} ({} of {} bytes) run past the end of the file",
                      eh.e_phoff, eh.e_phnum, eh.e_phentsize);
  }
  return ok_status();
}

/// The PT_LOAD segments with memory, checked against the file.
Result<std::vector<Elf32_Phdr>> read_load_segments(const ImageSource& source, const Elf32_Ehdr& eh) {
  std::vector<uint8_t> table(size_t{eh.e_phnum} * eh.e_phentsize);
  VMM86_TRY(source.read(eh.e_phoff, table));
  std::vector<Elf32_Phdr> loads;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf32_Phdr ph{};
    std::memcpy(&ph, table.data() + i * eh.e_phentsize, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) {
      return make_error("ELF segment {}: file size {:#x} is larger than its memory size {:#x}", i, ph.p_filesz,
                        ph.p_memsz);
    }
    if (uint64_t{ph.p_offset} + ph.p_filesz > source.size) {
      return make_error("truncated: ELF segment {} wants file bytes {}, the file has {:#x}", i,
                        range_string(ph.p_offset, uint64_t{ph.p_offset} + ph.p_filesz), source.size);
    }
    if (uint64_t{ph.p_paddr} + ph.p_memsz > k4GiB) {
      return make_error("ELF segment {} at {:#x} ({:#x} bytes) runs past 4 GiB", i, ph.p_paddr, ph.p_memsz);
    }
    loads.push_back(ph);
  }
  if (loads.empty()) return make_error("the ELF file has no loadable segment");
  return loads;
}

/// The physical entry point: e_entry inside a segment's virtual range moves with it to its
/// physical range; otherwise it must already be a physical address of loaded bytes.
Result<uint32_t> physical_entry(uint32_t e_entry, std::span<const Elf32_Phdr> loads) {
  for (const Elf32_Phdr& ph : loads) {
    if (e_entry >= ph.p_vaddr && e_entry - ph.p_vaddr < ph.p_filesz) return e_entry - ph.p_vaddr + ph.p_paddr;
  }
  for (const Elf32_Phdr& ph : loads) {
    if (e_entry >= ph.p_paddr && e_entry - ph.p_paddr < ph.p_filesz) return e_entry;
  }
  return make_error("entry point {:#x} is outside the loaded image", e_entry);
}

Result<KernelImage> parse_elf(const ImageSource& source, const Header& header) {
  Elf32_Ehdr eh{};
  std::memcpy(&eh, source.head.data(), std::min(sizeof eh, source.head.size()));
  VMM86_TRY(check_elf_header(source, eh));
  auto loads = read_load_segments(source, eh);
  if (!loads) return std::move(loads).take_error();
  auto entry = physical_entry(eh.e_entry, *loads);
  if (!entry) return std::move(entry).take_error();
  KernelImage image;
  image.header = header;
  image.entry = *entry;
  for (const Elf32_Phdr& ph : *loads) image.segments.push_back({ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz});
  return image;
}

}  // namespace

std::string range_string(uint64_t start, uint64_t end) { return fmt::format("{:#x}-{:#x}", start, end); }

Result<std::optional<Header>> find_header(std::span<const uint8_t> head) {
  const uint64_t searched = std::min<uint64_t>(head.size(), kSearchBytes);
  for (uint64_t at = 0; at + kMagicFieldsBytes <= searched; at += kHeaderAlign) {
    const uint32_t flags = load32(head, at + 4);
    if (load32(head, at) != kHeaderMagic || kHeaderMagic + flags + load32(head, at + 8) != 0) continue;
    const uint64_t end = at + header_bytes(flags);
    if (end > searched) {
      return make_error("the Multiboot header at offset {:#x} (flags {:#x}) runs past {}", at, flags,
                        searched < kSearchBytes ? "the end of the file" : "the first 8192 bytes");
    }
    Header h;
    h.offset = at;
    h.flags = flags;
    if (flags & header_flags::AoutKludge) {
      h.header_addr = load32(head, at + 12);
      h.load_addr = load32(head, at + 16);
      h.load_end_addr = load32(head, at + 20);
      h.bss_end_addr = load32(head, at + 24);
      h.entry_addr = load32(head, at + 28);
    }
    return std::optional<Header>(h);
  }
  return std::optional<Header>();
}

Status check_flags(uint32_t flags) {
  const uint32_t refused = flags & header_flags::Required & ~header_flags::Honoured;
  if (refused == 0) return ok_status();
  if (refused == header_flags::VideoMode) {
    return make_error(
        "the Multiboot header requires a video mode (flags bit 2), and vmm86 has no display (QEMU boots such kernels "
        "without one)");
  }
  std::string bits;
  for (unsigned bit = 0; bit < 16; ++bit) {
    if (refused & (1u << bit)) bits += fmt::format("{}{}", bits.empty() ? "" : ", ", bit);
  }
  return make_error("the Multiboot header requires features vmm86 does not know (flags {:#x}, bits {})", flags, bits);
}

Result<KernelImage> parse_kernel(const ImageSource& source, const Header& header) {
  VMM86_TRY(check_flags(header.flags));
  auto image = (header.flags & header_flags::AoutKludge) ? parse_aout_kludge(source, header)
                                                         : parse_elf(source, header);
  if (!image) return image;
  std::vector<Segment>& segments = image->segments;
  std::sort(segments.begin(), segments.end(), [](const Segment& a, const Segment& b) { return a.phys < b.phys; });
  for (size_t i = 1; i < segments.size(); ++i) {
    if (segments[i].phys < segments[i - 1].end()) {
      return make_error("segments {} and {} overlap", range_string(segments[i - 1].phys, segments[i - 1].end()),
                        range_string(segments[i].phys, segments[i].end()));
    }
  }
  image->start = segments.front().phys;
  image->end = segments.back().end();
  return image;
}

}  // namespace vmm86::multiboot
