#include "vmm/loader/multiboot.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <utility>

#include "vmm/loader/flat_boot.h"
#include "vmm/loader/host_file.h"

namespace vmm86::multiboot {

namespace {

static_assert(offsetof(Info, mods_addr) == 24 && offsetof(Info, mmap_length) == 44 && offsetof(Info, mmap_addr) == 48 &&
              offsetof(Info, boot_loader_name) == 64 && offsetof(Info, vbe_mode) == 80);

constexpr uint64_t kMiB = 1ull << 20;
/// The size field of a memory map entry counts the 20 bytes after it.
constexpr uint32_t kMmapEntrySizeField = 20;
/// boot_device when there is no BIOS disk to name (`--kernel` has no drives).
constexpr uint32_t kNoBootDevice = 0xFFFFFFFF;
/// mem_lower never exceeds the 640 KiB of conventional memory.
constexpr uint64_t kMaxMemLowerKib = 640;

constexpr uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) / align * align; }

bool overlaps(uint64_t start, uint64_t end, uint64_t other_start, uint64_t other_end) {
  return start < other_end && other_start < end;
}

/// One past the highest RAM byte of `e820`.
uint64_t ram_end(std::span<const E820Range> e820) {
  uint64_t end = 0;
  for (const E820Range& r : e820) {
    if (r.type == linux_boot::E820Type::Ram) end = std::max(end, r.end());
  }
  return end;
}

/// Why [start, end) of the kernel image cannot be loaded, if it cannot.
Status check_segment(uint64_t start, uint64_t end, std::span<const E820Range> e820) {
  const std::string where = fmt::format("the kernel's segment {}", range_string(start, end));
  if (start < kBiosDataEnd) {
    return make_error("{} overlaps the real-mode interrupt table and BIOS data area (below {:#x})", where,
                      kBiosDataEnd);
  }
  if (overlaps(start, end, kBootAreaStart, kBootAreaEnd)) {
    return make_error("{} overlaps the boot area {} (GDT, memory map, Multiboot information)", where,
                      range_string(kBootAreaStart, kBootAreaEnd));
  }
  if (overlaps(start, end, linux_boot::kEbdaStart, linux_boot::kHighMemStart)) {
    return make_error("{} overlaps the PC's reserved range {} (EBDA, VGA memory, BIOS ROM)", where,
                      range_string(linux_boot::kEbdaStart, linux_boot::kHighMemStart));
  }
  if (!linux_boot::ram_range_containing(e820, start, end)) {
    if (end > ram_end(e820)) return make_error("{} runs past the end of guest RAM at {:#x}", where, ram_end(e820));
    return make_error("{} lies in a range the platform reserves", where);
  }
  return ok_status();
}

/// The module list, strings and modules after the image (QEMU's order).
Layout place_boot_data(const KernelImage& image, const BootData& data) {
  Layout layout;
  uint64_t at = align_up(image.end, kPageSize);
  layout.mods = GuestPhys{at};
  at += data.module_sizes.size() * sizeof(ModuleEntry);
  for (const std::string& text : data.module_strings) {
    layout.modules.push_back({0, 0, GuestPhys{at}});
    at += text.size() + 1;
  }
  layout.cmdline = GuestPhys{at};
  at += data.cmdline.size() + 1;
  layout.loader_name = GuestPhys{at};
  at += kBootLoaderName.size() + 1;
  at = align_up(at, kPageSize);
  for (size_t i = 0; i < data.module_sizes.size(); ++i) {
    layout.modules[i].start = at;
    layout.modules[i].size = data.module_sizes[i];
    at = align_up(at + data.module_sizes[i], kPageSize);
  }
  layout.end = at;
  return layout;
}

struct OpenedKernel {
  HostFile file;
  KernelImage image;
};

Result<OpenedKernel> open_kernel(const std::string& path) {
  auto opened = open_head(path, "kernel", kSearchBytes);
  if (!opened) return std::move(opened).take_error();
  auto header = find_header(opened->head);
  if (!header) return make_error("kernel '{}': {}", path, header.error());
  if (!*header) return make_error("kernel '{}': no Multiboot header in its first 8192 bytes", path);
  const HostFile& reader = opened->file;
  const ImageSource source{reader.size(), opened->head,
                           [&reader](uint64_t offset, std::span<uint8_t> dst) { return reader.read_at(offset, dst); }};
  auto image = parse_kernel(source, **header);
  if (!image) return make_error("kernel '{}': {}", path, image.error());
  return OpenedKernel{std::move(opened->file), std::move(image).value()};
}

struct OpenedModules {
  std::vector<HostFile> files;
  BootData data;
};

/// Opens every module of the request and fills in the boot data.
Result<OpenedModules> open_modules(const BootRequest& request) {
  OpenedModules opened;
  opened.data.cmdline = request.kernel_path + " " + request.cmdline;
  if (request.initrd.empty()) return opened;
  auto specs = parse_module_list(request.initrd);
  if (!specs) return make_error("--initrd '{}': {}", request.initrd, specs.error());
  for (ModuleSpec& spec : *specs) {
    auto file = HostFile::open(spec.path, "multiboot module");
    if (!file) return std::move(file).take_error();
    opened.data.module_sizes.push_back(file->size());
    opened.data.module_strings.push_back(std::move(spec.string));
    opened.files.push_back(std::move(file).value());
  }
  return opened;
}

/// Copies the image's file bytes to its segments and zeroes the rest of each.
Status copy_image(const OpenedKernel& kernel, std::span<uint8_t> ram) {
  for (const Segment& seg : kernel.image.segments) {
    VMM86_TRY(kernel.file.read_at(seg.file_offset, ram.subspan(seg.phys, seg.file_size)));
    const auto bss = ram.subspan(seg.phys + seg.file_size, seg.mem_size - seg.file_size);
    std::fill(bss.begin(), bss.end(), uint8_t{0});
  }
  return ok_status();
}

/// Writes one NUL-terminated string.
bool write_string(GuestMemory& memory, GuestPhys at, std::string_view text) {
  const std::string copy(text);
  return memory.write(at, copy.c_str(), copy.size() + 1);
}

/// The module list, the strings, the information structure, the memory map and the GDT.
Status write_boot_structures(GuestMemory& memory, const Layout& layout, const BootData& data) {
  bool ok = true;
  for (size_t i = 0; i < layout.modules.size(); ++i) {
    const PlacedModule& m = layout.modules[i];
    const ModuleEntry entry{static_cast<uint32_t>(m.start), static_cast<uint32_t>(m.start + m.size),
                            static_cast<uint32_t>(m.string.value), 0};
    ok = ok && memory.write(layout.mods + i * sizeof entry, &entry, sizeof entry) &&
         write_string(memory, m.string, data.module_strings[i]);
  }
  ok = ok && write_string(memory, layout.cmdline, data.cmdline) &&
       write_string(memory, layout.loader_name, kBootLoaderName);
  auto mmap = make_mmap(layout.e820);
  if (!mmap) return std::move(mmap).take_error();
  const Info info = make_info(layout);
  const std::vector<uint64_t> gdt = flat_boot::gdt({kBootCs, kBootDs, kGdtAddr, 0, 0});
  ok = ok && memory.write(kMmapAddr, mmap->data(), mmap->size()) && memory.write(kInfoAddr, &info, sizeof info) &&
       memory.write(kGdtAddr, gdt.data(), gdt.size() * sizeof gdt[0]);
  if (!ok)
    return make_error("guest RAM of {} MiB does not hold the Multiboot boot structures", memory.ram_size() / kMiB);
  return ok_status();
}

}  // namespace

Result<std::vector<ModuleSpec>> parse_module_list(std::string_view list) {
  std::vector<std::string> entries;
  std::string current;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] != ',') {
      current.push_back(list[i]);
    } else if (i + 1 < list.size() && list[i + 1] == ',') {
      current.push_back(',');  // ",," is a comma inside the entry
      ++i;
    } else {
      entries.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) entries.push_back(std::move(current));
  if (entries.size() > kMaxModules)
    return make_error("{} modules, more than the {} accepted", entries.size(), kMaxModules);
  std::vector<ModuleSpec> specs;
  for (std::string& entry : entries) {
    std::string path = entry.substr(0, entry.find(' '));
    if (path.empty()) return make_error("module entry '{}' has no file name", entry);
    specs.push_back({std::move(path), std::move(entry)});
  }
  return specs;
}

Result<Layout> plan_layout(const KernelImage& image, const BootData& data, std::span<const E820Range> e820) {
  if (image.end > kMaxRamBytes) {
    return make_error("the kernel's image reaches {:#x}, above the {} GiB of RAM vmm86 can give a guest", image.end,
                      kMaxRamBytes >> 30);
  }
  Layout layout = place_boot_data(image, data);
  if (layout.end > kMaxRamBytes) {
    return make_error("the kernel with its modules needs {} MiB of RAM, more than the {} GiB vmm86 can give a guest",
                      align_up(layout.end, kMiB) / kMiB, kMaxRamBytes >> 30);
  }
  if (e820.empty()) return layout;
  for (const Segment& seg : image.segments) VMM86_TRY(check_segment(seg.phys, seg.end(), e820));
  const uint64_t data_start = layout.mods.value;
  if (!linux_boot::ram_range_containing(e820, data_start, layout.end)) {
    return make_error("the Multiboot modules and boot information ({}) do not fit in guest RAM (it ends at {:#x})",
                      range_string(data_start, layout.end), ram_end(e820));
  }
  layout.e820.assign(e820.begin(), e820.end());
  return layout;
}

Info make_info(const Layout& layout) {
  Info info;
  info.flags = info_flags::Memory | info_flags::Cmdline | info_flags::Modules | info_flags::Mmap |
               info_flags::BootLoaderName;
  const auto low = linux_boot::ram_range_containing(layout.e820, 0, 0);
  info.mem_lower = static_cast<uint32_t>(low ? std::min(low->end() / 1024, kMaxMemLowerKib) : 0);
  info.mem_upper = static_cast<uint32_t>(linux_boot::extended_memory_kib(layout.e820));
  info.boot_device = kNoBootDevice;  // and info_flags::BootDevice clear
  info.cmdline = static_cast<uint32_t>(layout.cmdline.value);
  info.mods_count = static_cast<uint32_t>(layout.modules.size());
  info.mods_addr = static_cast<uint32_t>(layout.mods.value);
  info.mmap_length = static_cast<uint32_t>(layout.e820.size() * kMmapEntryBytes);
  info.mmap_addr = static_cast<uint32_t>(kMmapAddr.value);
  info.boot_loader_name = static_cast<uint32_t>(layout.loader_name.value);
  return info;
}

Result<std::vector<uint8_t>> make_mmap(std::span<const E820Range> e820) {
  if (e820.size() * kMmapEntryBytes > kMmapBytes) {
    return make_error("the memory map has {} ranges; the Multiboot boot area holds {}", e820.size(),
                      kMmapBytes / kMmapEntryBytes);
  }
  std::vector<uint8_t> bytes(e820.size() * kMmapEntryBytes);
  for (size_t i = 0; i < e820.size(); ++i) {
    uint8_t* entry = bytes.data() + i * kMmapEntryBytes;
    const auto type = static_cast<uint32_t>(e820[i].type);
    std::memcpy(entry, &kMmapEntrySizeField, 4);
    std::memcpy(entry + 4, &e820[i].start, 8);
    std::memcpy(entry + 12, &e820[i].size, 8);
    std::memcpy(entry + 20, &type, 4);
  }
  return bytes;
}

CpuState boot_cpu_state(uint32_t entry) {
  CpuState cpu = flat_boot::cpu_state(
      {.code_selector = kBootCs, .data_selector = kBootDs, .gdt = kGdtAddr, .entry = entry, .esp = kBootStackTop});
  cpu.reg(Gpr::Eax) = kBootloaderMagic;
  cpu.reg(Gpr::Ebx) = static_cast<uint32_t>(kInfoAddr.value);
  return cpu;
}

Result<uint64_t> required_ram_bytes(const BootRequest& request) {
  auto kernel = open_kernel(request.kernel_path);
  if (!kernel) return std::move(kernel).take_error();
  auto modules = open_modules(request);
  if (!modules) return std::move(modules).take_error();
  auto layout = plan_layout(kernel->image, modules->data, {});
  if (!layout) return make_error("kernel '{}': {}", request.kernel_path, layout.error());
  return align_up(layout->end, kMiB);
}

Result<MultibootBoot> load_multiboot(GuestMemory& memory, const BootRequest& request) {
  auto kernel = open_kernel(request.kernel_path);
  if (!kernel) return std::move(kernel).take_error();
  auto modules = open_modules(request);
  if (!modules) return std::move(modules).take_error();
  auto e820 = linux_boot::build_e820_map(memory.ram_size(), request.holes);
  if (!e820) return std::move(e820).take_error();
  auto layout = plan_layout(kernel->image, modules->data, *e820);
  if (!layout) return make_error("kernel '{}': {}", request.kernel_path, layout.error());

  // Everything is checked: now copy. plan_layout keeps every range inside RAM.
  VMM86_TRY(copy_image(*kernel, memory.ram()));
  for (size_t i = 0; i < layout->modules.size(); ++i) {
    const PlacedModule& m = layout->modules[i];
    VMM86_TRY(modules->files[i].read_at(0, memory.ram().subspan(m.start, m.size)));
  }
  VMM86_TRY(write_boot_structures(memory, *layout, modules->data));
  VMM86_TRY(write_firmware_data(memory, request.firmware_data));
  return MultibootBoot{boot_cpu_state(kernel->image.entry), std::move(kernel->image), std::move(layout).value()};
}

}  // namespace vmm86::multiboot
