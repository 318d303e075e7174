// The Multiboot loader (vmm/loader/multiboot.h): the module list, where the boot data
// goes (QEMU's layout), the information structure and memory map, the entry state, every
// refusal, and whole loads of hand-built kernels from files. Also which loader
// vmm/loader/kernel_boot.h picks for a file.
#include "vmm/loader/multiboot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/loader/multiboot_images.h"
#include "tests/loader/test_files.h"
#include "vmm/loader/flat_boot.h"
#include "vmm/loader/kernel_boot.h"

namespace vmm86::multiboot {
namespace {

using linux_boot::E820Type;
using test::AoutLayout;
using test::kLoadAddr;
using test::make_aout_kernel;
using test::make_elf_kernel;
using test::peek;
using test::poke;
using test::TempFile;

constexpr uint64_t kMiB = 1 << 20;

std::vector<E820Range> map_of(uint64_t ram_bytes, std::vector<E820Range> holes = {}) {
  auto map = linux_boot::build_e820_map(ram_bytes, holes);
  EXPECT_TRUE(map.ok()) << map.error();
  return *map;
}

/// An image of one segment [start, end) (as parse_kernel would give it).
KernelImage image_at(uint64_t start, uint64_t end) {
  KernelImage image;
  image.segments.push_back({start, 0, end - start, end - start});
  image.start = start;
  image.end = end;
  image.entry = static_cast<uint32_t>(start);
  return image;
}

GuestMemory make_memory(uint64_t bytes) {
  auto memory = GuestMemory::create(bytes);
  if (!memory) ADD_FAILURE() << memory.error();
  return std::move(*memory);
}

template <typename T>
T read_guest(const GuestMemory& memory, uint64_t at) {
  T value{};
  EXPECT_TRUE(memory.read(GuestPhys{at}, &value, sizeof value));
  return value;
}

std::string read_cstring(const GuestMemory& memory, uint64_t at) {
  std::string text;
  for (char c = 0; memory.read(GuestPhys{at + text.size()}, &c, 1) && c != 0;) text.push_back(c);
  return text;
}

// ---- The module list (QEMU's -initrd syntax) ------------------------------------------

TEST(MultibootModules, CommasSeparateSpacesStartArguments) {
  auto specs = parse_module_list("a.bin arg1 arg2,b.bin,c,,d.bin x,");
  ASSERT_TRUE(specs.ok()) << specs.error();
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_EQ((*specs)[0].path, "a.bin");
  EXPECT_EQ((*specs)[0].string, "a.bin arg1 arg2");
  EXPECT_EQ((*specs)[1].path, "b.bin");
  EXPECT_EQ((*specs)[2].path, "c,d.bin") << "',,' is a comma in the entry";
  EXPECT_EQ((*specs)[2].string, "c,d.bin x");
}

TEST(MultibootModules, EmptyNamesAndTooManyAreRefused) {
  for (const char* list : {",a", "a,,b, ,c", " a", "a, b"}) {
    auto specs = parse_module_list(list);
    ASSERT_FALSE(specs.ok()) << list;
    EXPECT_NE(specs.error().find("has no file name"), std::string::npos) << specs.error();
  }
  std::string many;
  for (size_t i = 0; i <= kMaxModules; ++i) many += "m,";
  auto specs = parse_module_list(many);
  ASSERT_FALSE(specs.ok());
  EXPECT_NE(specs.error().find("257 modules, more than the 256 accepted"), std::string::npos) << specs.error();
  many.resize(many.size() - 2);
  EXPECT_TRUE(parse_module_list(many).ok());
}

// ---- Where the boot data goes ---------------------------------------------------------

// The addresses QEMU 7.2 gave tests/guest-programs/multiboot_info.asm (a.out build: image
// 0x100000-0x1054c0) with -initrd 'modA.bin arg1 arg2,modB.bin' (5000 and 5 bytes) and
// -append 'hello world': the guest sees the same ones on vmm86.
TEST(MultibootLayout, IsQemus) {
  BootData data;
  data.cmdline = "mbinfo_aout.bin hello world";
  data.module_strings = {"modA.bin arg1 arg2", "modB.bin"};
  data.module_sizes = {5000, 5};
  auto layout = plan_layout(image_at(kLoadAddr, 0x1054C0), data, map_of(64 * kMiB));
  ASSERT_TRUE(layout.ok()) << layout.error();
  EXPECT_EQ(layout->mods.value, 0x106000u);
  ASSERT_EQ(layout->modules.size(), 2u);
  EXPECT_EQ(layout->modules[0].string.value, 0x106020u);
  EXPECT_EQ(layout->modules[1].string.value, 0x106033u);
  EXPECT_EQ(layout->cmdline.value, 0x10603Cu);
  EXPECT_EQ(layout->loader_name.value, 0x106058u);
  EXPECT_EQ(layout->modules[0].start, 0x107000u);
  EXPECT_EQ(layout->modules[0].size, 5000u);
  EXPECT_EQ(layout->modules[1].start, 0x109000u);
  EXPECT_EQ(layout->end, 0x10A000u);
}

TEST(MultibootLayout, ModulesArePageAlignedEvenAfterAnUnalignedImage) {
  BootData data;
  data.module_strings = {"a", "b", "c"};
  data.module_sizes = {1, 0, 0x1000};
  auto layout = plan_layout(image_at(kLoadAddr + 4, kLoadAddr + 0x1234), data, {});
  ASSERT_TRUE(layout.ok()) << layout.error();
  EXPECT_EQ(layout->mods.value, kLoadAddr + 0x2000);
  EXPECT_EQ(layout->modules[0].start, kLoadAddr + 0x3000);
  EXPECT_EQ(layout->modules[1].start, kLoadAddr + 0x4000) << "an empty module takes no room";
  EXPECT_EQ(layout->modules[2].start, kLoadAddr + 0x4000);
  EXPECT_EQ(layout->end, kLoadAddr + 0x5000);
}

TEST(MultibootLayout, SegmentsWhereTheyCannotGoAreRefused) {
  const auto map = map_of(64 * kMiB);
  const BootData data;
  struct Case {
    uint64_t start, end;
    const char* needle;
  };
  const Case cases[] = {
      {0x0, 0x1000, "real-mode interrupt table and BIOS data area"},
      {0x4F0, 0x1000, "real-mode interrupt table and BIOS data area"},
      {0x9000, 0xA000, "overlaps the boot area 0x8000-0x9600"},
      {0x7000, 0x8001, "overlaps the boot area"},
      {0x10000, 0xA0000, "PC's reserved range 0x9fc00-0x100000"},
      {0xF0000, 0x101000, "PC's reserved range"},
      {63 * kMiB, 65 * kMiB, "runs past the end of guest RAM at 0x4000000"},
  };
  for (const Case& c : cases) {
    auto layout = plan_layout(image_at(c.start, c.end), data, map);
    ASSERT_FALSE(layout.ok()) << c.needle;
    EXPECT_NE(layout.error().find(c.needle), std::string::npos) << layout.error();
  }
  // A range the platform claims for itself inside RAM.
  const auto holed = map_of(64 * kMiB, {{16 * kMiB, kMiB, E820Type::Reserved}});
  auto layout = plan_layout(image_at(16 * kMiB, 17 * kMiB), data, holed);
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.error().find("lies in a range the platform reserves"), std::string::npos) << layout.error();
  // Low memory outside those ranges is fine.
  EXPECT_TRUE(plan_layout(image_at(0x10000, 0x20000), data, map).ok());
}

TEST(MultibootLayout, BootDataThatDoesNotFitIsRefused) {
  BootData data;
  data.module_strings = {"big"};
  data.module_sizes = {0x20000};
  // A kernel in low memory: its module would run into the EBDA.
  auto low = plan_layout(image_at(0x80000, 0x90000), data, map_of(64 * kMiB));
  ASSERT_FALSE(low.ok());
  EXPECT_NE(low.error().find("do not fit in guest RAM (it ends at 0x4000000)"), std::string::npos) << low.error();
  // Past the end of RAM.
  data.module_sizes = {64 * kMiB};
  EXPECT_FALSE(plan_layout(image_at(kLoadAddr, 2 * kMiB), data, map_of(64 * kMiB)).ok());
  // Past what vmm86 can ever give a guest, without a memory map too.
  auto high = plan_layout(image_at(0xC0000000, 0xC0001000), {}, {});
  ASSERT_FALSE(high.ok());
  EXPECT_NE(high.error().find("above the 3 GiB"), std::string::npos) << high.error();
  data.module_sizes = {3ull << 30};
  auto huge = plan_layout(image_at(kLoadAddr, 2 * kMiB), data, {});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().find("more than the 3 GiB"), std::string::npos) << huge.error();
}

// ---- The information structure, memory map and entry state ----------------------------

TEST(MultibootInfo, SaysWhatVmm86Gives) {
  BootData data;
  data.cmdline = "k hi";
  data.module_strings = {"m"};
  data.module_sizes = {10};
  auto layout = plan_layout(image_at(kLoadAddr, 0x101000), data, map_of(128 * kMiB));
  ASSERT_TRUE(layout.ok()) << layout.error();
  const Info info = make_info(*layout);
  EXPECT_EQ(info.flags, info_flags::Memory | info_flags::Cmdline | info_flags::Modules | info_flags::Mmap |
                            info_flags::BootLoaderName);
  EXPECT_EQ(info.flags & info_flags::BootDevice, 0u) << "--kernel has no BIOS disk";
  EXPECT_EQ(info.boot_device, 0xFFFFFFFFu);
  EXPECT_EQ(info.mem_lower, 639u);
  EXPECT_EQ(info.mem_upper, 127u * 1024);
  EXPECT_EQ(info.cmdline, layout->cmdline.value);
  EXPECT_EQ(info.mods_count, 1u);
  EXPECT_EQ(info.mods_addr, 0x101000u);
  EXPECT_EQ(info.mmap_addr, kMmapAddr.value);
  EXPECT_EQ(info.mmap_length, layout->e820.size() * kMmapEntryBytes);
  EXPECT_EQ(info.boot_loader_name, layout->loader_name.value);
}

TEST(MultibootInfo, MemoryMapEntriesAreTheE820Ranges) {
  const auto map = map_of(64 * kMiB);
  auto bytes = make_mmap(map);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  ASSERT_EQ(bytes->size(), map.size() * kMmapEntryBytes);
  for (size_t i = 0; i < map.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(peek<uint32_t>(*bytes, i * 24), 20u);
    EXPECT_EQ(peek<uint64_t>(*bytes, i * 24 + 4), map[i].start);
    EXPECT_EQ(peek<uint64_t>(*bytes, i * 24 + 12), map[i].size);
    EXPECT_EQ(peek<uint32_t>(*bytes, i * 24 + 20), static_cast<uint32_t>(map[i].type));
  }
  std::vector<E820Range> many(kMmapBytes / kMmapEntryBytes + 1, {kMiB, 4096, E820Type::Ram});
  auto too_many = make_mmap(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().find("the Multiboot boot area holds 53"), std::string::npos) << too_many.error();
}

TEST(MultibootEntry, IsTheSpecificationsMachineState) {
  const CpuState cpu = boot_cpu_state(0x100080);
  EXPECT_EQ(cpu.reg(Gpr::Eax), kBootloaderMagic);
  EXPECT_EQ(cpu.reg(Gpr::Ebx), kInfoAddr.value);
  EXPECT_EQ(cpu.eip, 0x100080u);
  EXPECT_TRUE(cpu.protected_mode());
  EXPECT_FALSE(cpu.paging());
  EXPECT_EQ(cpu.eflags & (flags::IF | flags::VM), 0u);
  EXPECT_EQ(cpu.sreg(SegReg::Cs).selector, kBootCs);
  EXPECT_TRUE(cpu.sreg(SegReg::Cs).is_code());
  EXPECT_TRUE(cpu.sreg(SegReg::Cs).default_big());
  for (SegReg s : {SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs, SegReg::Ss}) {
    EXPECT_EQ(cpu.sreg(s).selector, kBootDs);
    EXPECT_EQ(cpu.sreg(s).base, 0u);
    EXPECT_EQ(cpu.sreg(s).limit, 0xFFFFFFFFu);
    EXPECT_FALSE(cpu.sreg(s).is_code());
  }
  EXPECT_EQ(cpu.gdtr.base, kGdtAddr.value);
  EXPECT_EQ(cpu.gdtr.limit, 3 * 8 - 1);
}

// ---- Whole loads from files -----------------------------------------------------------

TEST(MultibootLoad, AoutKernelWithModules) {
  const std::vector<uint8_t> kernel = make_aout_kernel();
  TempFile mod_a(std::vector<uint8_t>(5000, 0xA5));
  TempFile mod_b(std::vector<uint8_t>{'h', 'i'});
  const std::string list = mod_a.path() + " x y," + mod_b.path();
  TempFile file(kernel);
  GuestMemory m = make_memory(64 * kMiB);
  // Dirty RAM: the loader must zero the bss itself.
  std::fill(m.ram().begin(), m.ram().end(), uint8_t{0xCC});
  auto boot = load_multiboot(m, {file.path(), list, "console=com0", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();

  EXPECT_EQ(std::memcmp(m.ram().data() + kLoadAddr, kernel.data(), kernel.size()), 0);
  for (uint64_t a = kLoadAddr + kernel.size(); a < AoutLayout::kBssEndAddr; ++a) {
    ASSERT_EQ(m.ram()[a], 0) << "bss byte at " << std::hex << a;
  }
  const Info info = read_guest<Info>(m, kInfoAddr.value);
  EXPECT_EQ(read_cstring(m, info.cmdline), file.path() + " console=com0") << "QEMU's: the kernel's path first";
  EXPECT_EQ(read_cstring(m, info.boot_loader_name), "vmm86");
  ASSERT_EQ(info.mods_count, 2u);
  EXPECT_EQ(info.mods_addr, AoutLayout::kBssEndAddr);
  const auto first = read_guest<ModuleEntry>(m, info.mods_addr);
  const auto second = read_guest<ModuleEntry>(m, info.mods_addr + sizeof(ModuleEntry));
  EXPECT_EQ(read_cstring(m, first.string), mod_a.path() + " x y");
  EXPECT_EQ(read_cstring(m, second.string), mod_b.path());
  EXPECT_EQ(first.mod_start % kPageSize, 0u);
  EXPECT_EQ(first.mod_end - first.mod_start, 5000u);
  EXPECT_EQ(m.ram()[first.mod_start], 0xA5);
  EXPECT_EQ(m.ram()[first.mod_end - 1], 0xA5);
  EXPECT_EQ(second.mod_start % kPageSize, 0u);
  EXPECT_EQ(second.mod_end - second.mod_start, 2u);
  EXPECT_EQ(m.ram()[second.mod_start + 1], 'i');
  // The memory map and the GDT in the boot area.
  EXPECT_EQ(info.mmap_length, 4 * kMmapEntryBytes);
  EXPECT_EQ(read_guest<uint64_t>(m, kMmapAddr.value + 3 * 24 + 4), kMiB);
  EXPECT_EQ(read_guest<uint64_t>(m, kMmapAddr.value + 3 * 24 + 12), 63 * kMiB);
  const std::vector<uint64_t> gdt = flat_boot::gdt({kBootCs, kBootDs, kGdtAddr, 0, 0});
  for (size_t i = 0; i < gdt.size(); ++i) EXPECT_EQ(read_guest<uint64_t>(m, kGdtAddr.value + 8 * i), gdt[i]);
  EXPECT_EQ(boot->cpu.eip, kLoadAddr + AoutLayout::kCode);
}

TEST(MultibootLoad, ElfKernelEntersAtThePhysicalEntry) {
  const std::vector<uint8_t> kernel = make_elf_kernel();
  TempFile file(kernel);
  GuestMemory m = make_memory(16 * kMiB);
  std::fill(m.ram().begin(), m.ram().end(), uint8_t{0xCC});
  auto boot = load_multiboot(m, {file.path(), "", "", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_EQ(boot->cpu.eip, kLoadAddr + test::ElfLayout::kCode);
  EXPECT_EQ(std::memcmp(m.ram().data() + kLoadAddr, kernel.data(), kernel.size()), 0);
  EXPECT_EQ(m.ram()[kLoadAddr + test::ElfLayout::kMemBytes - 1], 0) << "p_memsz past p_filesz is zeroed";
  const Info info = read_guest<Info>(m, kInfoAddr.value);
  EXPECT_EQ(info.mods_count, 0u);
  EXPECT_EQ(read_cstring(m, info.cmdline), file.path() + " ") << "QEMU's: the path, a space, the empty --append";
}

void expect_load_error(const std::vector<uint8_t>& kernel, const std::string& modules, const std::string& needle,
                       uint64_t ram = 64 * kMiB) {
  TempFile file(kernel);
  GuestMemory m = make_memory(ram);
  auto boot = load_multiboot(m, {file.path(), modules, "", {}});
  ASSERT_FALSE(boot.ok()) << "loaded, expected: " << needle;
  EXPECT_NE(boot.error().find(needle), std::string::npos) << boot.error();
  EXPECT_EQ(boot.error().find('\n'), std::string::npos) << boot.error();
}

TEST(MultibootLoad, RefusalsNameTheFile) {
  expect_load_error(make_aout_kernel(), "/nonexistent/module.bin arg",
                    "cannot open multiboot module '/nonexistent/module.bin'");
  expect_load_error(make_aout_kernel(), "/", "multiboot module '/' is a directory");
  expect_load_error(make_aout_kernel(), ",", "has no file name");
  expect_load_error(std::vector<uint8_t>(4096, 0x90), "", "no Multiboot header in its first 8192 bytes");
  std::vector<uint8_t> truncated = make_elf_kernel();
  truncated.resize(0x800);
  expect_load_error(truncated, "", "truncated: ELF segment 0");
  expect_load_error(make_aout_kernel(), "", "runs past the end of guest RAM at 0x9fc00", kMiB);
}

TEST(MultibootLoad, RequiredRamCoversImageAndModules) {
  TempFile kernel(make_aout_kernel());
  EXPECT_EQ(*required_ram_bytes({kernel.path(), "", "", {}}), 2 * kMiB);
  TempFile module(std::vector<uint8_t>(3 * kMiB, 1));
  auto need = required_ram_bytes({kernel.path(), module.path(), "", {}});
  ASSERT_TRUE(need.ok()) << need.error();
  EXPECT_EQ(*need, 5 * kMiB);
  auto missing = required_ram_bytes({kernel.path(), "/nonexistent/m", "", {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("cannot open multiboot module"), std::string::npos) << missing.error();
}

// ---- Which loader --kernel uses -------------------------------------------------------

TEST(KernelFormat, QemusOrderLinuxHeaderFirst) {
  using kernel_boot::format_of;
  using kernel_boot::KernelFormat;
  EXPECT_EQ(format_of(make_aout_kernel()), KernelFormat::Multiboot);
  EXPECT_EQ(format_of(make_elf_kernel()), KernelFormat::Multiboot);
  // A bzImage that also carries a Multiboot header boots as Linux, as in QEMU.
  std::vector<uint8_t> both = test::make_bzimage({});
  test::put_multiboot_header(both, 0x400, 0x10003);
  EXPECT_EQ(format_of(both), KernelFormat::LinuxBzImage);
  // No header at all: the Linux loader says what the file is.
  EXPECT_EQ(format_of(std::vector<uint8_t>(8192, 0)), KernelFormat::LinuxBzImage);
  EXPECT_EQ(format_of(std::vector<uint8_t>{}), KernelFormat::LinuxBzImage);
  // A header that is there but broken is Multiboot's to report.
  std::vector<uint8_t> broken(0x40, 0);
  test::put_multiboot_header(broken, 0x30, 0x10000);
  EXPECT_EQ(format_of(broken), KernelFormat::Multiboot);
}

}  // namespace
}  // namespace vmm86::multiboot
