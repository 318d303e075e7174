#include "vmm/loader/linux_boot.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "vmm/loader/flat_boot.h"
#include "vmm/loader/host_file.h"

namespace vmm86::linux_boot {

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t k4GiB = 1ull << 32;
/// Protocol 2.10 adds pref_address and init_size.
constexpr uint16_t kProtocolWithInitSize = 0x020A;
/// Protocol 2.12 adds xloadflags.
constexpr uint16_t kProtocolWithXloadflags = 0x020C;
/// The header must reach at least through cmdline_size (2.06) / init_size (2.10).
constexpr size_t kHeaderEnd206 = VMM86_HDR_OFFSET(cmdline_size) + sizeof(uint32_t);
constexpr size_t kHeaderEnd210 = VMM86_HDR_OFFSET(init_size) + sizeof(uint32_t);
/// The byte after the short jump at 0x200 is the jump's displacement: the header ends there.
constexpr size_t kJumpDisplacementOffset = 0x201;
constexpr size_t kJumpEnd = 0x202;
constexpr size_t kSectorSize = 512;
/// setup_sects == 0 means 4, for images older than the field.
constexpr uint64_t kDefaultSetupSects = 4;
/// The version string is located relative to 0x200 in the file.
constexpr uint64_t kVersionStringBase = 0x200;
constexpr size_t kMaxVersionLength = 200;
/// ext_mem_k is 16 bits; BIOSes cap the int 15h/88h answer at 63 MiB.
constexpr uint64_t kExtMemKibCap = 0xFC00;

constexpr uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) / align * align; }
constexpr uint64_t align_down(uint64_t value, uint64_t align) { return value / align * align; }
constexpr bool is_power_of_two(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

/// "256 MiB" when whole, "1.3 MiB" otherwise: sizes in messages.
std::string mib_string(uint64_t bytes) {
  if (bytes % kMiB == 0) return fmt::format("{} MiB", bytes / kMiB);
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / static_cast<double>(kMiB));
}

uint64_t mib_rounded_up(uint64_t bytes) { return align_up(bytes, kMiB) / kMiB; }

std::string protocol_string_of(uint16_t version) { return fmt::format("{}.{:02}", version >> 8, version & 0xFF); }

/// The NUL-terminated text at `offset`, or "" when it runs past `limit` or is not printable.
std::string version_string_at(std::span<const uint8_t> head, uint64_t offset, uint64_t limit) {
  std::string text;
  for (uint64_t i = offset; i < limit && i < head.size() && text.size() < kMaxVersionLength; ++i) {
    const uint8_t c = head[i];
    if (c == 0) return text;
    if (c < 0x20 || c > 0x7E) return {};
    text.push_back(static_cast<char>(c));
  }
  return {};
}

/// The protocol's entry: __BOOT_CS and __BOOT_DS in a GDT at kGdtAddr.
flat_boot::FlatEntry boot_entry(uint32_t entry) {
  return {.code_selector = kBootCs, .data_selector = kBootDs, .gdt = kGdtAddr, .entry = entry, .esp = kBootStackTop};
}

struct OpenedKernel {
  HostFile file;
  KernelImage image;
};

Result<OpenedKernel> open_kernel(const std::string& path) {
  auto opened = open_head(path, "kernel", kHeadBytes);
  if (!opened) return std::move(opened).take_error();
  auto image = parse_bzimage(opened->head, opened->file.size());
  if (!image) return make_error("kernel '{}': {}", path, image.error());
  return OpenedKernel{std::move(opened->file), std::move(image).value()};
}

BootParams make_boot_params(const KernelImage& kernel, const BootLayout& layout) {
  BootParams bp{};
  // The protocol: copy the image's setup header verbatim, then fill in the loader's fields.
  std::memcpy(reinterpret_cast<uint8_t*>(&bp) + kSetupHeaderOffset, kernel.header_bytes.data(),
              kernel.header_bytes.size());
  bp.hdr.type_of_loader = kLoaderTypeUndefined;  // non-zero, or the kernel ignores the initrd
  bp.hdr.loadflags = static_cast<uint8_t>(bp.hdr.loadflags & ~loadflags::CanUseHeap);  // no real-mode heap
  bp.hdr.code32_start = static_cast<uint32_t>(layout.kernel.load_addr);
  bp.hdr.ramdisk_image = static_cast<uint32_t>(layout.initrd.value);
  bp.hdr.ramdisk_size = static_cast<uint32_t>(layout.initrd_size);
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(layout.cmdline.value);
  bp.hdr.hardware_subarch = 0;  // a plain PC
  bp.hdr.setup_data = 0;

  for (size_t i = 0; i < layout.e820.size(); ++i) {
    const E820Range& r = layout.e820[i];
    bp.e820_table[i] = BootE820Entry{r.start, r.size, static_cast<uint32_t>(r.type)};
  }
  bp.e820_entries = static_cast<uint8_t>(layout.e820.size());

  // The old memory-size answers, for code that looks before the e820 map.
  const uint64_t ext_kib = extended_memory_kib(layout.e820);
  bp.alt_mem_k = static_cast<uint32_t>(ext_kib);
  bp.screen_info.ext_mem_k = static_cast<uint16_t>(std::min(ext_kib, kExtMemKibCap));
  // No video: zero columns and lines make the kernel skip the VGA text console (there is no
  // VGA), so its output goes to console=ttyS0 and the dummy console.
  bp.screen_info.orig_video_isVGA = 0;
  bp.screen_info.orig_video_cols = 0;
  bp.screen_info.orig_video_lines = 0;
  return bp;
}

}  // namespace

std::string KernelImage::protocol_string() const { return protocol_string_of(protocol); }

Result<KernelImage> parse_bzimage(std::span<const uint8_t> head, uint64_t file_size) {
  if (file_size == 0) return make_error("the file is empty");
  if (head.size() >= 4 && std::memcmp(head.data(),
                                      "\x7f"
                                      "ELF",
                                      4) == 0) {
    return make_error(
        "an ELF file without a Multiboot header (a vmlinux?), not a bzImage; boot the compressed kernel, e.g. "
        "/boot/vmlinuz-*");
  }
  if (head.size() < kHeaderEnd206) return make_error("too short to be a Linux bzImage ({} bytes)", file_size);

  SetupHeader hdr{};
  const size_t header_end = std::min(kJumpEnd + head[kJumpDisplacementOffset], kSetupHeaderLimit);
  std::memcpy(&hdr, head.data() + kSetupHeaderOffset,
              std::min({sizeof hdr, head.size() - kSetupHeaderOffset, kSetupHeaderLimit - kSetupHeaderOffset}));
  if (hdr.header != kHeaderMagic) return make_error("not a Linux bzImage: no 'HdrS' setup header at offset 0x202");
  if (hdr.boot_flag != kBootFlag) {
    // uint16_t{}: a copy, as formatting binds a reference, which a packed field cannot take.
    return make_error("corrupt bzImage: boot sector signature {:#06x} instead of 0xaa55", uint16_t{hdr.boot_flag});
  }
  if (hdr.version < kMinProtocol) {
    return make_error("boot protocol {} is too old: vmm86 needs {} or later (Linux 2.6.22 and newer)",
                      protocol_string_of(hdr.version), protocol_string_of(kMinProtocol));
  }
  const size_t needed_end = hdr.version >= kProtocolWithInitSize ? kHeaderEnd210 : kHeaderEnd206;
  if (header_end < needed_end || head.size() < header_end) {
    return make_error("corrupt setup header: it ends at {:#x}, protocol {} needs it to reach {:#x}", header_end,
                      protocol_string_of(hdr.version), needed_end);
  }
  // Fields past the header's end are not the header's: keep them zero.
  hdr = SetupHeader{};
  std::memcpy(&hdr, head.data() + kSetupHeaderOffset, std::min(sizeof hdr, header_end - kSetupHeaderOffset));

  if ((hdr.loadflags & loadflags::LoadedHigh) == 0) {
    return make_error("a zImage (loaded below 1 MiB), not a bzImage; vmm86 boots bzImage kernels only");
  }
  if (hdr.version >= kProtocolWithXloadflags && (hdr.xloadflags & xloadflags::Kernel64) != 0) {
    return make_error("a 64-bit (x86-64) kernel; vmm86 runs 32-bit guests on a CPU without long mode");
  }

  KernelImage image;
  image.protocol = hdr.version;
  image.setup_bytes = ((hdr.setup_sects == 0 ? kDefaultSetupSects : hdr.setup_sects) + 1) * kSectorSize;
  image.code_bytes = uint64_t{hdr.syssize} * 16;
  if (image.code_bytes == 0) return make_error("corrupt setup header: syssize is 0");
  // syssize counts 16-byte paragraphs, rounded up: a file may end up to 15 bytes short of
  // it (Debian's memtest86+ does), and QEMU and SYSLINUX load what is there.
  if (file_size < image.setup_bytes + image.code_bytes && file_size + 16 > image.setup_bytes + image.code_bytes) {
    image.code_bytes = file_size - image.setup_bytes;
  }
  if (file_size < image.setup_bytes + image.code_bytes) {
    return make_error("truncated: its setup header describes {} bytes, the file has {}",
                      image.setup_bytes + image.code_bytes, file_size);
  }
  image.relocatable = hdr.relocatable_kernel != 0;
  image.alignment = hdr.kernel_alignment;
  if (image.relocatable && (!is_power_of_two(image.alignment) || image.alignment < kPageSize)) {
    return make_error("corrupt setup header: kernel_alignment {:#x} is not a power of two of at least 4 KiB",
                      image.alignment);
  }
  if (hdr.version >= kProtocolWithInitSize) {
    image.pref_address = hdr.pref_address;
    image.init_size = hdr.init_size;
    if (image.pref_address < kHighMemStart || image.pref_address >= k4GiB) {
      return make_error("corrupt setup header: pref_address {:#x} is not between 1 MiB and 4 GiB", image.pref_address);
    }
    if (image.init_size == 0) return make_error("corrupt setup header: init_size is 0");
  } else {
    image.pref_address = kDefaultLoadAddr;
    image.init_size = image.code_bytes;
  }
  image.cmdline_max = hdr.cmdline_size;
  image.initrd_addr_max = hdr.initrd_addr_max;
  if (hdr.kernel_version != 0) {
    image.version = version_string_at(head, kVersionStringBase + hdr.kernel_version, image.setup_bytes);
  }
  image.header = hdr;
  image.header_bytes.assign(head.begin() + kSetupHeaderOffset, head.begin() + static_cast<ptrdiff_t>(header_end));
  return image;
}

KernelPlacement place_kernel(const KernelImage& kernel) {
  KernelPlacement p;
  const uint64_t footprint = std::max(kernel.code_bytes, kernel.init_size);
  const bool pref_usable = kernel.relocatable && kernel.pref_address >= kHighMemStart &&
                           kernel.pref_address % kernel.alignment == 0 && kernel.pref_address + footprint <= k4GiB;
  p.load_addr = pref_usable ? kernel.pref_address : kDefaultLoadAddr;
  // What the decompressor computes: a relocatable kernel runs at its load address rounded
  // up to kernel_alignment, but never below LOAD_PHYSICAL_ADDR (= pref_address); others
  // move to pref_address.
  p.run_addr = kernel.relocatable ? std::max(align_up(p.load_addr, kernel.alignment), kernel.pref_address)
                                  : kernel.pref_address;
  p.claim_start = std::min(p.load_addr, p.run_addr);
  p.claim_end = std::max(p.load_addr + kernel.code_bytes, p.run_addr + kernel.init_size);
  return p;
}

uint64_t place_initrd(std::span<const E820Range> map, uint64_t size, uint64_t last_byte, uint64_t avoid_start,
                      uint64_t avoid_end) {
  const uint64_t limit = last_byte + 1;
  uint64_t best = 0;
  for (const E820Range& r : map) {
    if (r.type != E820Type::Ram) continue;
    const uint64_t lo = std::max(r.start, kHighMemStart);
    const uint64_t hi = std::min(r.end(), limit);
    // The parts of [lo, hi) below and above the avoided range.
    const std::pair<uint64_t, uint64_t> windows[] = {{lo, std::min(hi, avoid_start)}, {std::max(lo, avoid_end), hi}};
    for (const auto& [w_lo, w_hi] : windows) {
      if (w_lo >= w_hi || w_hi - w_lo < size) continue;
      const uint64_t addr = align_down(w_hi - size, kPageSize);
      if (addr >= w_lo && addr > best) best = addr;
    }
  }
  return best;
}

std::array<uint64_t, kBootGdtEntries> boot_gdt() {
  const std::vector<uint64_t> table = flat_boot::gdt(boot_entry(0));
  std::array<uint64_t, kBootGdtEntries> gdt{};
  std::copy(table.begin(), table.end(), gdt.begin());
  return gdt;
}

CpuState boot_cpu_state(GuestPhys boot_params, uint32_t entry) {
  CpuState cpu = flat_boot::cpu_state(boot_entry(entry));
  cpu.reg(Gpr::Esi) = static_cast<uint32_t>(boot_params.value);
  return cpu;
}

Result<uint64_t> required_ram_bytes(const BootRequest& request) {
  auto kernel = open_kernel(request.kernel_path);
  if (!kernel) return std::move(kernel).take_error();
  const KernelPlacement kp = place_kernel(kernel->image);
  uint64_t need = align_up(kp.claim_end, kPageSize);
  if (!request.initrd.empty()) {
    auto initrd = HostFile::open(request.initrd, "initrd");
    if (!initrd) return std::move(initrd).take_error();
    // Ask the placement itself whether the initrd fits in the RAM the kernel needs anyway
    // (below a kernel that runs at 16 MiB, say); if not, it goes on top.
    auto map = build_e820_map(need, {});
    if (!map) return std::move(map).take_error();
    if (initrd->size() > 0 &&
        place_initrd(*map, initrd->size(), kernel->image.initrd_addr_max, kp.claim_start, kp.claim_end) == 0) {
      need += align_up(initrd->size(), kPageSize);
    }
  }
  return align_up(need, kMiB);
}

Result<LinuxBoot> load_linux(GuestMemory& memory, const BootRequest& request) {
  auto kernel = open_kernel(request.kernel_path);
  if (!kernel) return std::move(kernel).take_error();
  const KernelImage& image = kernel->image;

  auto map = build_e820_map(memory.ram_size(), request.holes);
  if (!map) return std::move(map).take_error();

  LinuxBoot boot;
  boot.layout.e820 = std::move(map).value();
  const KernelPlacement& kp = boot.layout.kernel = place_kernel(image);
  if (!ram_range_containing(boot.layout.e820, kp.claim_start, kp.claim_end)) {
    if (kp.claim_end > memory.ram_size()) {
      return make_error(
          "guest RAM of {} is too small for this kernel: it needs at least {} MiB (it unpacks itself at {:#x}-{:#x})",
          mib_string(memory.ram_size()), mib_rounded_up(kp.claim_end), kp.run_addr, kp.run_addr + image.init_size);
    }
    return make_error("the kernel needs RAM at {:#x}-{:#x}, but the platform reserves part of that range",
                      kp.claim_start, kp.claim_end);
  }

  const std::string& cmdline = request.cmdline;
  const uint64_t cmdline_max = std::min<uint64_t>(image.cmdline_max, kCmdlineAreaEnd - kCmdlineAddr.value - 1);
  if (cmdline.size() > cmdline_max) {
    return make_error("the kernel command line is {} bytes long; this kernel accepts at most {}", cmdline.size(),
                      cmdline_max);
  }
  if (cmdline.find('\0') != std::string::npos) return make_error("the kernel command line contains a NUL byte");

  std::optional<HostFile> initrd;
  if (!request.initrd.empty()) {
    auto file = HostFile::open(request.initrd, "initrd");
    if (!file) return std::move(file).take_error();
    // An empty initrd is no initrd: the kernel ignores ramdisk_size 0 anyway.
    if (file->size() > 0) {
      const uint64_t addr = place_initrd(boot.layout.e820, file->size(), image.initrd_addr_max, kp.claim_start,
                                         kp.claim_end);
      if (addr == 0) {
        const uint64_t need = align_up(kp.claim_end, kPageSize) + align_up(file->size(), kPageSize);
        return make_error(
            "initrd '{}' ({}) does not fit in guest RAM of {} next to the kernel: it needs at least {} MiB",
            request.initrd, mib_string(file->size()), mib_string(memory.ram_size()), mib_rounded_up(need));
      }
      boot.layout.initrd = GuestPhys{addr};
      boot.layout.initrd_size = file->size();
      initrd = std::move(file).value();
    }
  }

  // Everything is checked: now copy. The checks above keep every range inside RAM.
  if (auto read = kernel->file.read_at(image.setup_bytes, memory.ram().subspan(kp.load_addr, image.code_bytes));
      !read) {
    return std::move(read).take_error();
  }
  if (initrd) {
    auto dst = memory.ram().subspan(boot.layout.initrd.value, boot.layout.initrd_size);
    if (auto read = initrd->read_at(0, dst); !read) return std::move(read).take_error();
  }
  VMM86_TRY(write_firmware_data(memory, request.firmware_data));
  const BootParams bp = make_boot_params(image, boot.layout);
  const std::array<uint64_t, kBootGdtEntries> gdt = boot_gdt();
  if (!memory.write(kCmdlineAddr, cmdline.c_str(), cmdline.size() + 1) ||
      !memory.write(kBootParamsAddr, &bp, sizeof bp) || !memory.write(kGdtAddr, gdt.data(), sizeof gdt)) {
    return make_error("guest RAM of {} does not hold the boot structures below 640 KiB", mib_string(memory.ram_size()));
  }

  boot.cpu = boot_cpu_state(kBootParamsAddr, static_cast<uint32_t>(kp.load_addr));
  boot.kernel = std::move(kernel->image);
  return boot;
}

Result<LoadedGuest> load_guest(uint64_t ram_bytes, const BootRequest& request) {
  auto memory = GuestMemory::create(ram_bytes);
  if (!memory) return make_error("cannot create {} of guest RAM: {}", mib_string(ram_bytes), memory.error());
  auto boot = load_linux(*memory, request);
  if (!boot) return std::move(boot).take_error();
  return LoadedGuest{std::move(*memory), boot->cpu, std::move(boot->layout), std::move(boot->kernel)};
}

}  // namespace vmm86::linux_boot
