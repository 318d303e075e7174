// The Linux boot protocol loader: the real Debian kernel (when the guest is built) and
// synthetic bzImages for everything the real one cannot show.
#include "vmm/loader/linux_boot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tests/loader/guest_files.h"
#include "tests/loader/test_files.h"

namespace vmm86::linux_boot {
namespace {

using test::FakeKernel;
using test::make_bzimage;
using test::peek;
using test::poke;
using test::TempFile;

constexpr uint64_t kMiB = 1 << 20;

GuestMemory make_memory(uint64_t bytes) {
  auto memory = GuestMemory::create(bytes);
  if (!memory) ADD_FAILURE() << memory.error();
  return std::move(*memory);
}

/// A copy of a field of a packed struct: gtest's macros bind references, which packed
/// fields cannot take.
template <typename T>
T val(T value) {
  return value;
}

BootParams read_boot_params(const GuestMemory& memory) {
  BootParams bp{};
  EXPECT_TRUE(memory.read(kBootParamsAddr, &bp, sizeof bp));
  return bp;
}

std::string read_cstring(const GuestMemory& memory, GuestPhys at) {
  std::string text;
  for (char c = 0; memory.read(at + text.size(), &c, 1) && c != 0;) text.push_back(c);
  return text;
}

/// Loads `request` into fresh RAM of `ram` bytes and expects an error containing `needle`.
void expect_load_error(uint64_t ram, const BootRequest& request, const std::string& needle) {
  GuestMemory memory = make_memory(ram);
  auto boot = load_linux(memory, request);
  ASSERT_FALSE(boot.ok()) << "loaded, but expected an error containing: " << needle;
  EXPECT_NE(boot.error().find(needle), std::string::npos) << "error was: " << boot.error();
  EXPECT_EQ(boot.error().find('\n'), std::string::npos) << "one line: " << boot.error();
}

std::string expected_error_for(const std::vector<uint8_t>& kernel) {
  auto image = parse_bzimage(kernel, kernel.size());
  return image.ok() ? "" : image.error();
}

// ---- The real Debian kernel -------------------------------------------------------------

TEST(LinuxBootDebian, LoadsKernelInitrdAndCommandLine) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  const std::vector<uint8_t> kernel_file = test::read_file(guest.kernel);
  const std::vector<uint8_t> initrd_file = test::read_file(guest.initrd);
  const std::string cmdline = "console=ttyS0 earlyprintk=serial nokaslr rdinit=/init-scripted";
  GuestMemory memory = make_memory(256 * kMiB);
  auto boot = load_linux(memory, {guest.kernel, guest.initrd, cmdline, {}});
  ASSERT_TRUE(boot.ok()) << boot.error();

  // What the image says about itself (Debian 6.1 686: relocatable, 16 MiB, protocol 2.15).
  const KernelImage& k = boot->kernel;
  EXPECT_GE(k.protocol, 0x020A);
  EXPECT_TRUE(k.relocatable);
  EXPECT_EQ(k.pref_address, 0x1000000u);
  EXPECT_EQ(k.version.rfind("6.1.0-", 0), 0u) << k.version;
  EXPECT_EQ(k.setup_bytes + k.code_bytes, kernel_file.size());

  // The protected-mode code sits at its preferred address, byte for byte.
  const KernelPlacement& kp = boot->layout.kernel;
  EXPECT_EQ(kp.load_addr, k.pref_address);
  EXPECT_EQ(kp.run_addr, k.pref_address);
  EXPECT_EQ(kp.claim_end, k.pref_address + k.init_size);
  ASSERT_TRUE(std::equal(kernel_file.begin() + static_cast<ptrdiff_t>(k.setup_bytes), kernel_file.end(),
                         memory.host_ptr(GuestPhys{kp.load_addr}, k.code_bytes)));

  // The initrd: page aligned, in its last page of RAM, clear of the kernel, byte for byte.
  const GuestPhys initrd = boot->layout.initrd;
  EXPECT_EQ(initrd.value % kPageSize, 0u);
  EXPECT_EQ(boot->layout.initrd_size, initrd_file.size());
  EXPECT_LE(initrd.value + initrd_file.size(), 256 * kMiB);
  EXPECT_GT(initrd.value + initrd_file.size(), 256 * kMiB - kPageSize);
  EXPECT_GE(initrd.value, kp.claim_end);
  ASSERT_TRUE(std::equal(initrd_file.begin(), initrd_file.end(), memory.host_ptr(initrd, initrd_file.size())));

  // boot_params: the file's setup header plus the loader's fields.
  const BootParams bp = read_boot_params(memory);
  EXPECT_EQ(val(bp.hdr.header), kHeaderMagic);
  EXPECT_EQ(val(bp.hdr.version), k.protocol);
  EXPECT_EQ(val(bp.hdr.setup_sects), kernel_file[0x1F1]);
  EXPECT_EQ(val(bp.hdr.syssize), peek<uint32_t>(kernel_file, 0x1F4));
  EXPECT_EQ(val(bp.hdr.kernel_alignment), peek<uint32_t>(kernel_file, 0x230));
  EXPECT_EQ(val(bp.hdr.init_size), peek<uint32_t>(kernel_file, 0x260));
  EXPECT_EQ(val(bp.hdr.type_of_loader), 0xFF);
  EXPECT_EQ(val(bp.hdr.code32_start), kp.load_addr);
  EXPECT_EQ(val(bp.hdr.ramdisk_image), initrd.value);
  EXPECT_EQ(val(bp.hdr.ramdisk_size), initrd_file.size());
  EXPECT_EQ(val(bp.hdr.cmd_line_ptr), kCmdlineAddr.value);
  EXPECT_NE(bp.hdr.loadflags & loadflags::LoadedHigh, 0);
  EXPECT_EQ(val(bp.sentinel), 0);
  EXPECT_EQ(read_cstring(memory, kCmdlineAddr), cmdline);

  // e820 and the old memory-size fields.
  ASSERT_EQ(bp.e820_entries, 4);
  const uint64_t expected_e820[4][3] = {
      {0, 0x9FC00, 1}, {0x9FC00, 0x400, 2}, {0xF0000, 0x10000, 2}, {0x100000, 255 * kMiB, 1}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(val(bp.e820_table[i].addr), expected_e820[i][0]) << i;
    EXPECT_EQ(val(bp.e820_table[i].size), expected_e820[i][1]) << i;
    EXPECT_EQ(val(bp.e820_table[i].type), expected_e820[i][2]) << i;
  }
  EXPECT_EQ(val(bp.alt_mem_k), 255u * 1024);
  EXPECT_EQ(val(bp.screen_info.ext_mem_k), 0xFC00);
  EXPECT_EQ(val(bp.screen_info.orig_video_isVGA), 0);
  EXPECT_EQ(val(bp.screen_info.orig_video_cols), 0);
  EXPECT_EQ(val(bp.screen_info.orig_video_lines), 0);

  // The entry state, and the GDT it points at.
  const CpuState& cpu = boot->cpu;
  EXPECT_EQ(cpu.eip, val(bp.hdr.code32_start));
  EXPECT_EQ(cpu.reg(Gpr::Esi), kBootParamsAddr.value);
  EXPECT_TRUE(cpu.protected_mode());
  EXPECT_FALSE(cpu.paging());
  EXPECT_EQ(cpu.eflags & flags::IF, 0u);
  EXPECT_EQ(cpu.sreg(SegReg::Cs).selector, kBootCs);
  EXPECT_EQ(cpu.sreg(SegReg::Ds).selector, kBootDs);
  EXPECT_EQ(cpu.sreg(SegReg::Ss).selector, kBootDs);
  ASSERT_EQ(cpu.gdtr.base, kGdtAddr.value);
  uint64_t gdt[kBootGdtEntries] = {};
  ASSERT_TRUE(memory.read(kGdtAddr, gdt, sizeof gdt));
  EXPECT_EQ(gdt[kBootCs / 8], 0x00CF9B000000FFFFull);
  EXPECT_EQ(gdt[kBootDs / 8], 0x00CF93000000FFFFull);
}

TEST(LinuxBootDebian, WithoutInitrd) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  GuestMemory memory = make_memory(64 * kMiB);
  auto boot = load_linux(memory, {guest.kernel, "", "", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  const BootParams bp = read_boot_params(memory);
  EXPECT_EQ(val(bp.hdr.ramdisk_image), 0u);
  EXPECT_EQ(val(bp.hdr.ramdisk_size), 0u);
  EXPECT_EQ(read_cstring(memory, kCmdlineAddr), "");
}

TEST(LinuxBootDebian, InitrdStaysBelowInitrdAddrMax) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  auto loaded = load_guest(3072 * kMiB, {guest.kernel, guest.initrd, "console=ttyS0", {}});
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->memory.ram_size(), 3072 * kMiB);
  // Debian's initrd_addr_max is 0x7FFFFFFF: the initrd ends in the last page below 2 GiB.
  const uint64_t initrd_end = loaded->layout.initrd.value + loaded->layout.initrd_size;
  EXPECT_LE(initrd_end, 2048 * kMiB);
  EXPECT_GT(initrd_end, 2048 * kMiB - kPageSize);
  EXPECT_EQ(loaded->cpu.eip, loaded->layout.kernel.load_addr);
}

TEST(LinuxBootDebian, PlatformHolesMoveTheInitrdAndShowInE820) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  GuestMemory memory = make_memory(256 * kMiB);
  const E820Range hole{240 * kMiB, 16 * kMiB, E820Type::Reserved};
  auto boot = load_linux(memory, {guest.kernel, guest.initrd, "", {hole}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_LE(boot->layout.initrd.value + boot->layout.initrd_size, 240 * kMiB);
  EXPECT_GT(boot->layout.initrd.value + boot->layout.initrd_size, 240 * kMiB - kPageSize);
  const BootParams bp = read_boot_params(memory);
  ASSERT_EQ(bp.e820_entries, 5);
  EXPECT_EQ(val(bp.e820_table[4].addr), 240 * kMiB);
  EXPECT_EQ(val(bp.e820_table[4].type), 2u);
}

TEST(LinuxBootDebian, HoleUnderTheKernelIsAnError) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  expect_load_error(256 * kMiB, {guest.kernel, "", "", {{20 * kMiB, kMiB, E820Type::Reserved}}},
                    "the platform reserves");
}

TEST(LinuxBootDebian, RequiredRamCoversKernelAndInitrd) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  const std::vector<uint8_t> kernel_file = test::read_file(guest.kernel);
  const uint64_t claim_end = peek<uint64_t>(kernel_file, 0x258) + peek<uint32_t>(kernel_file, 0x260);
  const uint64_t kernel_need = (claim_end + kMiB - 1) / kMiB * kMiB;
  auto kernel_only = required_ram_bytes({guest.kernel, "", "", {}});
  ASSERT_TRUE(kernel_only.ok()) << kernel_only.error();
  EXPECT_EQ(*kernel_only, kernel_need);

  // The small initrd fits under the kernel, which runs at 16 MiB: no extra RAM needed.
  auto with_initrd = required_ram_bytes({guest.kernel, guest.initrd, "", {}});
  ASSERT_TRUE(with_initrd.ok()) << with_initrd.error();
  EXPECT_EQ(*with_initrd, kernel_need);
  GuestMemory tight = make_memory(kernel_need);
  auto boot = load_linux(tight, {guest.kernel, guest.initrd, "", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_GE(boot->layout.initrd.value, kMiB);
  EXPECT_LE(boot->layout.initrd.value + boot->layout.initrd_size, boot->layout.kernel.claim_start);

  // A 20 MiB initrd does not: it goes on top of the kernel, and needs that much more.
  TempFile big_initrd(std::vector<uint8_t>(20 * kMiB, 0x5A));
  auto with_big = required_ram_bytes({guest.kernel, big_initrd.path(), "", {}});
  ASSERT_TRUE(with_big.ok()) << with_big.error();
  const uint64_t page_end = (claim_end + kPageSize - 1) / kPageSize * kPageSize;
  EXPECT_EQ(*with_big, (page_end + 20 * kMiB + kMiB - 1) / kMiB * kMiB);
  GuestMemory enough = make_memory(*with_big);
  auto big_boot = load_linux(enough, {guest.kernel, big_initrd.path(), "", {}});
  ASSERT_TRUE(big_boot.ok()) << big_boot.error();
  EXPECT_GE(big_boot->layout.initrd.value, big_boot->layout.kernel.claim_end);
  expect_load_error(*with_big - kMiB, {guest.kernel, big_initrd.path(), "", {}},
                    "(20 MiB) does not fit in guest RAM of");
}

TEST(LinuxBootDebian, KernelDoesNotFitInRam) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  expect_load_error(16 * kMiB, {guest.kernel, "", "", {}}, "guest RAM of 16 MiB is too small for this kernel");
}

TEST(LinuxBootDebian, ProtocolTooOld) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  std::vector<uint8_t> kernel = test::read_file(guest.kernel);
  poke<uint16_t>(kernel, 0x206, 0x0205);
  TempFile file(kernel);
  expect_load_error(256 * kMiB, {file.path(), "", "", {}}, "boot protocol 2.05 is too old");
}

TEST(LinuxBootDebian, Truncated) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  std::vector<uint8_t> kernel = test::read_file(guest.kernel);
  kernel.resize(kernel.size() / 2);
  TempFile file(kernel);
  expect_load_error(256 * kMiB, {file.path(), "", "", {}}, "truncated");
}

// syssize rounds up to a 16-byte paragraph: a file up to 15 bytes short of it still loads
// (Debian's memtest86+ is 8 bytes short), one a whole paragraph short does not.
TEST(LinuxBootDebian, ShortLastParagraph) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  std::vector<uint8_t> kernel = test::read_file(guest.kernel);
  const uint32_t syssize = peek<uint32_t>(kernel, 0x1F4);
  const size_t setup_sects = kernel[0x1F1] == 0 ? 4 : kernel[0x1F1];
  kernel.resize((setup_sects + 1) * 512 + size_t{syssize} * 16 - 15);
  TempFile short_file(kernel);
  GuestMemory memory = make_memory(256 * kMiB);
  auto boot = load_linux(memory, {short_file.path(), "", "", {}});
  EXPECT_TRUE(boot.ok()) << boot.error();
  kernel.resize(kernel.size() - 1);
  TempFile too_short(kernel);
  expect_load_error(256 * kMiB, {too_short.path(), "", "", {}}, "truncated");
}

TEST(LinuxBootDebian, CommandLineTooLong) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  const uint32_t max = peek<uint32_t>(test::read_file(guest.kernel), 0x238);
  expect_load_error(64 * kMiB, {guest.kernel, "", std::string(max + 1, 'x'), {}}, "accepts at most");
  GuestMemory memory = make_memory(64 * kMiB);
  auto boot = load_linux(memory, {guest.kernel, "", std::string(max, 'x'), {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_EQ(read_cstring(memory, kCmdlineAddr).size(), max);
}

TEST(LinuxBootDebian, MissingInitrd) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  expect_load_error(64 * kMiB, {guest.kernel, "/nonexistent/initrd.img", "", {}},
                    "cannot open initrd '/nonexistent/initrd.img': No such file or directory");
}

TEST(LinuxBootDebian, SixtyFourBitKernelIsRefused) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  std::vector<uint8_t> kernel = test::read_file(guest.kernel);
  poke<uint16_t>(kernel, 0x236, static_cast<uint16_t>(peek<uint16_t>(kernel, 0x236) | xloadflags::Kernel64));
  TempFile file(kernel);
  expect_load_error(256 * kMiB, {file.path(), "", "", {}}, "64-bit");
}

// ---- Files that are not kernels ---------------------------------------------------------

TEST(LinuxBootBadFiles, EmptyFile) {
  TempFile file({});
  expect_load_error(64 * kMiB, {file.path(), "", "", {}}, "': the file is empty");
}

TEST(LinuxBootBadFiles, RandomBytes) {
  std::vector<uint8_t> bytes(8192);
  uint32_t x = 12345;
  for (auto& b : bytes) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  TempFile file(bytes);
  expect_load_error(64 * kMiB, {file.path(), "", "", {}}, "not a Linux bzImage");
}

TEST(LinuxBootBadFiles, ElfFile) {
  std::vector<uint8_t> elf(4096, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF\x01\x01\x01",
              7);
  TempFile file(elf);
  expect_load_error(64 * kMiB, {file.path(), "", "", {}}, "an ELF file");
}

TEST(LinuxBootBadFiles, TooShort) {
  TempFile file(std::vector<uint8_t>(100, 0x55));
  expect_load_error(64 * kMiB, {file.path(), "", "", {}}, "too short to be a Linux bzImage (100 bytes)");
}

TEST(LinuxBootBadFiles, MissingKernel) {
  expect_load_error(64 * kMiB, {"/nonexistent/vmlinuz", "", "", {}},
                    "cannot open kernel '/nonexistent/vmlinuz': No such file or directory");
}

TEST(LinuxBootBadFiles, DirectoryAsKernel) {
  expect_load_error(64 * kMiB, {::testing::TempDir(), "", "", {}}, "is a directory, not a regular file");
}

/// A FIFO in the test's temporary directory, removed at scope exit.
struct Fifo {
  std::string path = ::testing::TempDir() + "/vmm86-fifo-" + std::to_string(::getpid());
  Fifo() { EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno); }
  ~Fifo() { ::unlink(path.c_str()); }
};

TEST(LinuxBootBadFiles, FifoAsKernelOrInitrdIsRefusedAtOnce) {
  // Opening a FIFO with no writer used to block forever: the alarm turns a hang into a failure.
  Fifo fifo;
  TempFile kernel(make_bzimage({}));
  ::alarm(20);
  expect_load_error(64 * kMiB, {fifo.path, "", "", {}}, "kernel '" + fifo.path + "' is a FIFO, not a regular file");
  expect_load_error(64 * kMiB, {kernel.path(), fifo.path, "", {}},
                    "initrd '" + fifo.path + "' is a FIFO, not a regular file");
  ::alarm(0);
}

TEST(LinuxBootBadFiles, DeviceAsKernelOrInitrd) {
  TempFile kernel(make_bzimage({}));
  expect_load_error(64 * kMiB, {"/dev/null", "", "", {}}, "kernel '/dev/null' is a character device");
  expect_load_error(64 * kMiB, {kernel.path(), "/dev/zero", "", {}}, "initrd '/dev/zero' is a character device");
}

TEST(LinuxBootBadFiles, UnreadableKernel) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of their mode";
  TempFile file(make_bzimage({}));
  ASSERT_EQ(::chmod(file.path().c_str(), 0), 0);
  expect_load_error(64 * kMiB, {file.path(), "", "", {}}, "Permission denied");
}

// ---- Synthetic images: header rules ------------------------------------------------------

TEST(ParseBzImage, SyntheticImageParses) {
  const std::vector<uint8_t> bytes = make_bzimage({});
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_EQ(image->protocol_string(), "2.15");
  EXPECT_EQ(image->setup_bytes, 5u * 512);
  EXPECT_EQ(image->code_bytes, 64u * 1024);
  EXPECT_EQ(image->version, "6.99.0-test (fake)");
  EXPECT_EQ(image->cmdline_max, 2047u);
  EXPECT_EQ(image->header_bytes.size(), 0x26Cu - 0x1F1);
}

TEST(ParseBzImage, SetupSectsZeroMeansFour) {
  FakeKernel k;
  k.setup_sects = 0;
  const std::vector<uint8_t> bytes = make_bzimage(k);
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_EQ(image->setup_bytes, 5u * 512);
}

TEST(ParseBzImage, Rejections) {
  struct Case {
    const char* name;
    FakeKernel kernel;
    const char* error;
  };
  auto with = [](auto change) {
    FakeKernel k;
    change(k);
    return k;
  };
  const Case cases[] = {
      {"zImage", with([](FakeKernel& k) { k.loadflags = 0; }), "a zImage"},
      {"protocol 2.04", with([](FakeKernel& k) { k.protocol = 0x0204; }), "boot protocol 2.04 is too old"},
      {"64-bit", with([](FakeKernel& k) { k.xloadflags = xloadflags::Kernel64; }), "64-bit (x86-64) kernel"},
      {"alignment", with([](FakeKernel& k) { k.alignment = 0x3000; }), "kernel_alignment 0x3000"},
      {"pref_address", with([](FakeKernel& k) { k.pref_address = 0x1000; }), "pref_address 0x1000"},
      {"init_size", with([](FakeKernel& k) { k.init_size = 0; }), "init_size is 0"},
  };
  for (const Case& c : cases) {
    const std::string error = expected_error_for(make_bzimage(c.kernel));
    EXPECT_NE(error.find(c.error), std::string::npos) << c.name << ": " << error;
  }
}

TEST(ParseBzImage, HeaderEndingTooEarlyIsCorrupt) {
  std::vector<uint8_t> bytes = make_bzimage({});
  bytes[0x201] = 0x30;  // header would end at 0x232, before cmdline_size
  EXPECT_NE(expected_error_for(bytes).find("corrupt setup header"), std::string::npos) << expected_error_for(bytes);
}

TEST(ParseBzImage, WrongBootFlag) {
  std::vector<uint8_t> bytes = make_bzimage({});
  poke<uint16_t>(bytes, 0x1FE, 0x1234);
  EXPECT_NE(expected_error_for(bytes).find("boot sector signature 0x1234"), std::string::npos);
}

TEST(ParseBzImage, FieldsPastTheHeaderEndAreIgnored) {
  // A 2.06 header ends at 0x23C: pref_address and init_size bytes beyond it are not read.
  FakeKernel k;
  k.protocol = 0x0206;
  k.relocatable = false;
  std::vector<uint8_t> bytes = make_bzimage(k);
  bytes[0x201] = 0x3A;  // end at 0x23C
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_EQ(val(image->header.pref_address), 0u);
  EXPECT_EQ(image->pref_address, kDefaultLoadAddr);
  EXPECT_EQ(image->init_size, image->code_bytes);
  EXPECT_EQ(image->header_bytes.size(), 0x23Cu - 0x1F1);
}

// ---- Synthetic images: placement ----------------------------------------------------------

TEST(PlaceKernel, RelocatableAtItsPreferredAddress) {
  const std::vector<uint8_t> bytes = make_bzimage({});
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok());
  const KernelPlacement p = place_kernel(*image);
  EXPECT_EQ(p.load_addr, 0x1000000u);
  EXPECT_EQ(p.run_addr, 0x1000000u);
  EXPECT_EQ(p.claim_start, 0x1000000u);
  EXPECT_EQ(p.claim_end, 0x1400000u);
}

TEST(PlaceKernel, MisalignedPreferenceLoadsAtOneMegabyte) {
  FakeKernel k;
  k.pref_address = 0x1100000;  // not a multiple of 2 MiB
  const std::vector<uint8_t> bytes = make_bzimage(k);
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok()) << image.error();
  const KernelPlacement p = place_kernel(*image);
  EXPECT_EQ(p.load_addr, 0x100000u);
  EXPECT_EQ(p.run_addr, 0x1100000u);  // what the decompressor will pick: max(aligned load, pref)
  EXPECT_EQ(p.claim_start, 0x100000u);
  EXPECT_EQ(p.claim_end, 0x1100000u + k.init_size);
}

TEST(PlaceKernel, NonRelocatableLoadsLowAndRunsAtPref) {
  FakeKernel k;
  k.relocatable = false;
  const std::vector<uint8_t> bytes = make_bzimage(k);
  auto image = parse_bzimage(bytes, bytes.size());
  ASSERT_TRUE(image.ok()) << image.error();
  const KernelPlacement p = place_kernel(*image);
  EXPECT_EQ(p.load_addr, 0x100000u);
  EXPECT_EQ(p.run_addr, 0x1000000u);
  EXPECT_EQ(p.claim_start, 0x100000u);
  EXPECT_EQ(p.claim_end, 0x1400000u);
}

TEST(LoadSynthetic, OldProtocolLoadsAtOneMegabyte) {
  FakeKernel k;
  k.protocol = 0x0206;
  k.relocatable = false;
  std::vector<uint8_t> bytes = make_bzimage(k);
  TempFile file(bytes);
  GuestMemory memory = make_memory(8 * kMiB);
  auto boot = load_linux(memory, {file.path(), "", "quiet", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_EQ(boot->cpu.eip, 0x100000u);
  EXPECT_EQ(boot->layout.kernel.claim_end, 0x100000u + k.code_bytes);
  EXPECT_EQ(std::memcmp(memory.host_ptr(GuestPhys{0x100000}, k.code_bytes), bytes.data() + 5 * 512, k.code_bytes), 0);
  const BootParams bp = read_boot_params(memory);
  EXPECT_EQ(val(bp.hdr.code32_start), 0x100000u);
  EXPECT_EQ(val(bp.alt_mem_k), 7u * 1024);
  EXPECT_EQ(val(bp.screen_info.ext_mem_k), 7 * 1024);
}

TEST(LoadSynthetic, EmptyInitrdIsNoInitrd) {
  TempFile kernel(make_bzimage({}));
  TempFile initrd({});
  GuestMemory memory = make_memory(32 * kMiB);
  auto boot = load_linux(memory, {kernel.path(), initrd.path(), "", {}});
  ASSERT_TRUE(boot.ok()) << boot.error();
  EXPECT_EQ(val(read_boot_params(memory).hdr.ramdisk_image), 0u);
}

TEST(LoadSynthetic, CommandLineWithNulIsRefused) {
  TempFile kernel(make_bzimage({}));
  expect_load_error(32 * kMiB, {kernel.path(), "", std::string("a\0b", 3), {}}, "NUL");
}

}  // namespace
}  // namespace vmm86::linux_boot
