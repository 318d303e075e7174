// The built vmm86 binary, run as a user would: exit statuses and what it prints.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tests/loader/guest_files.h"
#include "tests/loader/multiboot_images.h"
#include "tests/loader/test_files.h"
#include "vmm/cli.h"

namespace vmm86 {
namespace {

struct Outcome {
  int status = -1;  ///< exit status, or -signal
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs vmm86 with `args`, stdin from /dev/null, stdout and stderr into files.
Outcome run_vmm86(const std::vector<std::string>& args) {
  const std::string base = ::testing::TempDir() + "/vmm86-cli-" + std::to_string(getpid());
  const std::string out_path = base + ".out";
  const std::string err_path = base + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  std::string binary = VMM86_BINARY;
  argv.push_back(binary.data());
  std::vector<std::string> copies = args;
  for (auto& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  Outcome run;
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << binary << ": " << std::strerror(spawned);
    return run;
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  run.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
  run.out = slurp(out_path);
  run.err = slurp(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return run;
}

std::string describe(const std::vector<std::string>& args, const Outcome& run) {
  std::string text = "vmm86";
  for (const auto& a : args) text += " '" + a + "'";
  return text + "\n  status " + std::to_string(run.status) + "\n  stdout: " + run.out + "\n  stderr: " + run.err;
}

/// One "vmm86: error: ..." line on stderr, nothing on stdout, and `status`.
void expect_one_error_line(const std::vector<std::string>& args, int status, const std::string& needle) {
  const Outcome run = run_vmm86(args);
  EXPECT_EQ(run.status, status) << describe(args, run);
  EXPECT_EQ(run.out, "") << describe(args, run);
  EXPECT_EQ(run.err.rfind("vmm86: error: ", 0), 0u) << describe(args, run);
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << describe(args, run);
  EXPECT_NE(run.err.find(needle), std::string::npos) << describe(args, run);
}

TEST(Vmm86Binary, BadMemValues) {
  const std::pair<const char*, const char*> cases[] = {
      {"0", "--mem 0: must be more than 0"},
      {"abc", "--mem abc: not a size"},
      {"5G", "--mem 5G: more than the 3G maximum"},
      {"-1", "--mem -1: must be positive"},
  };
  for (const auto& [value, message] : cases) {
    expect_one_error_line({"run", "--kernel", "vmlinuz", "--mem", value}, kExitUsage, message);
    expect_one_error_line({"run", "--kernel", "vmlinuz", std::string("--mem=") + value}, kExitUsage, message);
  }
}

TEST(Vmm86Binary, KernelOptionsNeedAKernel) {
  expect_one_error_line({"run", "--initrd", "initrd.img"}, kExitUsage, "--initrd needs --kernel");
  expect_one_error_line({"run", "--kernel", "vmlinuz", "--bios", "bios.bin"}, kExitUsage,
                        "--kernel and --bios together are not supported yet");
}

/// A minimal qcow2 v3 image as qemu-img makes one: 64 KiB clusters, 1 MiB, header in cluster 0,
/// refcount table in 1, its one block in 2, the L1 table (one empty entry) in 3.
std::vector<uint8_t> small_qcow2() {
  std::vector<uint8_t> image(3 * 65536 + 8, 0);
  auto put = [&](size_t offset, unsigned bytes, uint64_t value) {
    for (unsigned i = 0; i < bytes; ++i) image[offset + i] = static_cast<uint8_t>(value >> (8 * (bytes - 1 - i)));
  };
  put(0, 4, 0x514649FB);     // magic
  put(4, 4, 3);              // version
  put(20, 4, 16);            // cluster_bits
  put(24, 8, 1 << 20);       // size
  put(36, 4, 1);             // l1_size
  put(40, 8, 3 * 65536);     // l1_table_offset
  put(48, 8, 65536);         // refcount_table_offset
  put(56, 4, 1);             // refcount_table_clusters
  put(96, 4, 4);             // refcount_order
  put(100, 4, 104);          // header_length
  put(65536, 8, 2 * 65536);  // refcount table entry 0
  for (size_t cluster = 0; cluster < 4; ++cluster) put(2 * 65536 + 2 * cluster, 2, 1);
  return image;
}

// Disk images that cannot be used are refused before the guest runs, in one line, and the
// file is left as it was. A good qcow2 image opens (the error is the next drive's).
TEST(Vmm86Binary, BadDiskImages) {
  expect_one_error_line({"run", "--hda", "/nonexistent/disk.img"}, kExitFailure, "/nonexistent/disk.img");
  expect_one_error_line({"run", "--hda", "/"}, kExitFailure, "/");
  std::vector<uint8_t> corrupt = small_qcow2();
  corrupt[40 + 4] = 0x40;  // the L1 table far past the end of the file
  test::TempFile image(corrupt);
  expect_one_error_line({"run", "--hda", image.path()}, kExitFailure, "not a cluster inside the file");
  std::ifstream in(image.path(), std::ios::binary);
  const std::vector<uint8_t> after{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(after, corrupt);
  test::TempFile good(small_qcow2());
  expect_one_error_line({"run", "--drive", "file=" + good.path() + ",format=qcow2", "--hdb", "/nonexistent/b.img"},
                        kExitFailure, "/nonexistent/b.img");
  expect_one_error_line({"run", "--hda", good.path(), "--hdb", "/nonexistent/b.img"}, kExitFailure,
                        "/nonexistent/b.img");
  test::TempFile empty(std::vector<uint8_t>{});
  expect_one_error_line({"run", "--cdrom", empty.path()}, kExitFailure, empty.path());
}

// A floppy image must have one of the PC floppy sizes: anything else is refused in one line
// that names it (QEMU would guess a geometry).
TEST(Vmm86Binary, BadFloppyImages) {
  test::TempFile odd(std::vector<uint8_t>(1474560 + 512, 0));
  expect_one_error_line({"run", "--fda", odd.path()}, kExitFailure,
                        "floppy image " + odd.path() + " is 1475072 bytes: not a floppy of");
  expect_one_error_line({"run", "--fdb", "/nonexistent/b.img"}, kExitFailure, "/nonexistent/b.img");
}

// A BIOS image that is not one is refused before the machine starts, in one line.
TEST(Vmm86Binary, BadBiosImages) {
  expect_one_error_line({"run", "--bios", "/nonexistent/bios.bin"}, kExitFailure, "/nonexistent/bios.bin");
  expect_one_error_line({"run", "--bios", "/"}, kExitFailure, "/");
  test::TempFile odd_size(std::vector<uint8_t>(1000, 0x90));
  expect_one_error_line({"run", "--bios", odd_size.path()}, kExitFailure, "not a whole number of 64 KiB blocks");
  test::TempFile empty(std::vector<uint8_t>{});
  expect_one_error_line({"run", "--bios", empty.path()}, kExitFailure, "the file is empty");
  test::TempFile fine(std::vector<uint8_t>(64 << 10, 0xF4));
  expect_one_error_line({"run", "--bios", fine.path(), "--mem", "1M"}, kExitFailure, "at least 2M of guest RAM");
}

TEST(Vmm86Binary, UnknownEngine) {
  expect_one_error_line({"run", "--kernel", "vmlinuz", "--engine", "kvm"}, kExitUsage,
                        "--engine kvm: unknown engine (choose bt or interp)");
}

TEST(Vmm86Binary, NoCommand) { expect_one_error_line({}, kExitUsage, "no command given"); }

TEST(Vmm86Binary, HelpListsTheOptions) {
  const Outcome run = run_vmm86({"--help"});
  EXPECT_EQ(run.status, 0) << describe({"--help"}, run);
  EXPECT_EQ(run.err, "");
  for (const RunOptionSpec& spec : kRunOptions) {
    EXPECT_NE(run.out.find(std::string(spec.flag)), std::string::npos) << spec.flag << "\n" << run.out;
  }
  EXPECT_NE(run.out.find("--version"), std::string::npos);
  const Outcome run_help = run_vmm86({"run", "--help"});
  EXPECT_EQ(run_help.status, 0);
  EXPECT_NE(run_help.out.find("--kernel FILE"), std::string::npos) << run_help.out;
}

TEST(Vmm86Binary, Version) {
  const Outcome run = run_vmm86({"--version"});
  EXPECT_EQ(run.status, 0);
  EXPECT_EQ(run.out.rfind("vmm86 ", 0), 0u) << run.out;
}

TEST(Vmm86Binary, MissingFilesAreLoadFailures) {
  expect_one_error_line({"run", "--kernel", "/nonexistent/vmlinuz"}, kExitFailure,
                        "cannot open kernel '/nonexistent/vmlinuz': No such file or directory");
}

TEST(Vmm86Binary, TooLittleMemForTheKernel) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  expect_one_error_line({"run", "--kernel", guest.kernel, "--initrd", guest.initrd, "--mem", "16M"}, kExitUsage,
                        "--mem 16M is too small: this kernel with its initrd needs at least ");
}

TEST(Vmm86Binary, MissingInitrd) {
  VMM86_GUEST_FILES_OR_SKIP(guest);
  expect_one_error_line({"run", "--kernel", guest.kernel, "--initrd", "/nonexistent/initrd"}, kExitFailure,
                        "cannot open initrd '/nonexistent/initrd'");
}

TEST(Vmm86Binary, NotAKernel) { expect_one_error_line({"run", "--kernel", VMM86_BINARY}, kExitFailure, "an ELF file"); }

TEST(Vmm86Binary, ClosedStandardStreamsAreHarmless) {
  // With stdin, stdout and stderr closed, vmm86 must neither crash nor hang.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(0);
    close(1);
    close(2);
    execl(VMM86_BINARY, VMM86_BINARY, "run", "--kernel", "/nonexistent", static_cast<char*>(nullptr));
    _exit(127);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), kExitFailure);
}

// ---- Hostile and broken guests: a clear end, never a crash or a hang --------------------

/// Runs a synthetic bzImage whose 32-bit entry holds `code` (the rest is `fill`).
Outcome run_fake_kernel(const std::vector<uint8_t>& code, uint8_t fill, const std::vector<std::string>& extra = {}) {
  test::FakeKernel k;
  std::vector<uint8_t> image = test::make_bzimage(k);
  const size_t entry = (size_t{k.setup_sects} + 1) * 512;
  std::fill(image.begin() + static_cast<std::ptrdiff_t>(entry), image.end(), fill);
  std::copy(code.begin(), code.end(), image.begin() + static_cast<std::ptrdiff_t>(entry));
  test::TempFile kernel(image);
  std::vector<std::string> args = {"run", "--kernel", kernel.path(), "--mem", "64M"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_vmm86(args);
}

void expect_triple_fault(const Outcome& run, const std::string& what) {
  EXPECT_EQ(run.status, kExitFailure) << what << "\n" << run.err;
  EXPECT_NE(run.err.find("vmm86: error: the guest triple-faulted"), std::string::npos) << what << "\n" << run.err;
  EXPECT_NE(run.err.find("guest state: eip="), std::string::npos) << what << "\n" << run.err;
}

TEST(Vmm86HostileGuest, ExceptionWithoutAnIdtTripleFaults) {
  // The boot protocol enters with an empty IDT: int3 cannot be delivered -> #DF -> shutdown.
  for (const char* engine : {"bt", "interp"}) {
    expect_triple_fault(run_fake_kernel({0xCC}, 0x90, {"--engine", engine}), std::string("int3 on ") + engine);
  }
}

TEST(Vmm86HostileGuest, GarbageInstructionsEndCleanly) {
  // 0xFF 0xFF is not an instruction (#UD); a jump to unbacked memory fetches all-ones.
  for (const char* engine : {"bt", "interp"}) {
    expect_triple_fault(run_fake_kernel({}, 0xFF, {"--engine", engine}), std::string("garbage on ") + engine);
    const std::vector<uint8_t> jump_out = {0xB8, 0x00, 0x00, 0x00, 0xF0, 0xFF, 0xE0};  // mov eax, 0xF0000000; jmp eax
    expect_triple_fault(run_fake_kernel(jump_out, 0x90, {"--engine", engine}), std::string("wild jump on ") + engine);
  }
}

TEST(Vmm86HostileGuest, WritesAllOverMemoryThenFaults) {
  // rep stosd over all of RAM from 0 (including the code itself), then whatever follows.
  const std::vector<uint8_t> scribble = {0x31, 0xFF,                    // xor edi, edi
                                         0xB9, 0x00, 0x00, 0x00, 0x01,  // mov ecx, 0x1000000 dwords
                                         0xB8, 0xCC, 0xCC, 0xCC, 0xCC,  // mov eax, 0xCCCCCCCC
                                         0xF3, 0xAB};                   // rep stosd
  expect_triple_fault(run_fake_kernel(scribble, 0x90), "scribbler");
}

TEST(Vmm86HostileGuest, GarbageAppendIsPassedOnOrRefusedCleanly) {
  // Bytes of every value but NUL (argv cannot hold one), quotes and escapes: the kernel
  // gets them as they are; the machine then runs as usual (here: the int3 triple fault).
  std::string garbage;
  for (int i = 0; i < 600; ++i) garbage.push_back(static_cast<char>(1 + (i * 37) % 255));
  expect_triple_fault(run_fake_kernel({0xCC}, 0x90, {"--append", garbage}), "garbage --append");
  // Longer than the kernel's cmdline_size (2047 here): one clear error line, no run.
  const Outcome too_long = run_fake_kernel({0xCC}, 0x90, {"--append", std::string(5000, 'x')});
  EXPECT_NE(too_long.status, kExitOk) << too_long.err;
  EXPECT_EQ(too_long.err.rfind("vmm86: error: ", 0), 0u) << too_long.err;
  EXPECT_EQ(std::count(too_long.err.begin(), too_long.err.end(), '\n'), 1) << too_long.err;
}

TEST(Vmm86HostileGuest, HaltWithInterruptsOffIsPowerOff) {
  const Outcome run = run_fake_kernel({0xFA, 0xF4}, 0x90, {"--stats"});  // cli; hlt
  EXPECT_EQ(run.status, kExitOk) << run.err;
  EXPECT_NE(run.err.find("halted with interrupts disabled"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("vmm86 statistics"), std::string::npos) << run.err;
}

// ---- Multiboot kernels and --debug-exit ------------------------------------------------

/// Runs a hand-built Multiboot kernel with `extra` arguments.
Outcome run_multiboot(const std::vector<uint8_t>& kernel, const std::vector<std::string>& extra) {
  test::TempFile file(kernel);
  std::vector<std::string> args = {"run", "--kernel", file.path(), "--mem", "16M"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_vmm86(args);
}

// Broken Multiboot kernels and modules end before the guest runs, in one line, status 1.
TEST(Vmm86Multiboot, BadKernelsAndModulesAreLoadFailures) {
  using test::ElfLayout;
  std::vector<uint8_t> truncated = test::make_elf_kernel();
  truncated.resize(0x800);
  std::vector<uint8_t> elf64 = test::make_elf_kernel();
  elf64[4] = 2;
  std::vector<uint8_t> video = test::make_aout_kernel();
  test::put_multiboot_header(video, test::AoutLayout::kHeader, test::AoutLayout::kFlags | 4);
  std::vector<uint8_t> over_bios = test::make_elf_kernel();
  test::poke<uint32_t>(over_bios, ElfLayout::kPPaddr, 0x9F000);
  std::vector<uint8_t> wild_entry = test::make_elf_kernel();
  test::poke<uint32_t>(wild_entry, ElfLayout::kEntryField, 0x12345678);
  const std::pair<const std::vector<uint8_t>*, const char*> kernels[] = {
      {&truncated, "truncated: ELF segment 0"},
      {&elf64, "a 64-bit ELF file"},
      {&video, "requires a video mode"},
      {&over_bios, "overlaps the PC's reserved range"},
      {&wild_entry, "entry point 0x12345678 is outside the loaded image"},
  };
  for (const auto& [kernel, needle] : kernels) {
    test::TempFile file(*kernel);
    const Outcome run = run_vmm86({"run", "--kernel", file.path()});
    EXPECT_NE(run.err.find(std::string("kernel '").append(file.path()).append("': ")), std::string::npos) << run.err;
    expect_one_error_line({"run", "--kernel", file.path()}, kExitFailure, needle);
  }
  test::TempFile kernel(test::make_aout_kernel());
  expect_one_error_line({"run", "--kernel", kernel.path(), "--initrd", "/nonexistent/mod.bin arg"}, kExitFailure,
                        "cannot open multiboot module '/nonexistent/mod.bin'");
  std::string many = kernel.path();
  for (int i = 0; i < 300; ++i) many.append(",").append(kernel.path());
  expect_one_error_line({"run", "--kernel", kernel.path(), "--initrd", many}, kExitFailure,
                        "301 modules, more than the 256 accepted");
}

TEST(Vmm86Multiboot, TooLittleMemIsAUsageError) {
  test::TempFile kernel(test::make_aout_kernel());
  test::TempFile module(std::vector<uint8_t>(3 << 20, 7));
  expect_one_error_line({"run", "--kernel", kernel.path(), "--initrd", module.path(), "--mem", "2M"}, kExitUsage,
                        "--mem 2M is too small: this kernel with its modules needs at least 5M");
}

// The kernels' code writes 0x2A to port 0xF4: status (0x2A << 1) | 1 = 85, as QEMU's.
TEST(Vmm86Multiboot, DebugExitEndsWithTheGuestsStatus) {
  for (const char* engine : {"bt", "interp"}) {
    for (const auto& kernel : {test::make_aout_kernel(), test::make_elf_kernel()}) {
      const Outcome run = run_multiboot(kernel, {"--engine", engine, "--debug-exit"});
      EXPECT_EQ(run.status, 85) << engine << "\n" << run.err;
      EXPECT_NE(run.err.find("the guest wrote 0x2a to isa-debug-exit: exit status 85"), std::string::npos) << run.err;
    }
  }
  const Outcome explicit_ports = run_multiboot(test::make_aout_kernel(), {"--debug-exit=iobase=0xf4,iosize=0x04"});
  EXPECT_EQ(explicit_ports.status, 85) << explicit_ports.err;
  // Elsewhere, the write goes nowhere and the kernel's cli; hlt powers off.
  const Outcome elsewhere = run_multiboot(test::make_aout_kernel(), {"--debug-exit", "iobase=0x501,iosize=2"});
  EXPECT_EQ(elsewhere.status, kExitOk) << elsewhere.err;
  EXPECT_NE(elsewhere.err.find("halted with interrupts disabled"), std::string::npos) << elsewhere.err;
}

TEST(Vmm86Multiboot, DebugExitOnAPortInUseIsRefused) {
  test::TempFile kernel(test::make_aout_kernel());
  expect_one_error_line({"run", "--kernel", kernel.path(), "--debug-exit", "iobase=0x3f8"}, kExitFailure,
                        "--debug-exit: ports 0x3f8+0x4 are taken by another device");
}

}  // namespace
}  // namespace vmm86
