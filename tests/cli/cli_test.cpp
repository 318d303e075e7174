// The command line, in process: value parsers, the option table, parse_command_line().
#include "vmm/cli.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vmm86 {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

TEST(ParseMemSize, AcceptsQemuStyleSizes) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"256M", 256 * kMiB}, {"256m", 256 * kMiB},   {"1G", kGiB},        {"1g", kGiB},       {"3G", 3 * kGiB},
      {"1024K", kMiB},      {"1028k", 1028 * kKiB}, {"512", 512 * kMiB}, {"3072", 3 * kGiB}, {"4K", 4 * kKiB},
  };
  for (const auto& [text, bytes] : cases) {
    auto got = parse_mem_size(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.error();
    EXPECT_EQ(*got, bytes) << text;
  }
}

TEST(ParseMemSize, RejectsWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"0", "must be more than 0"},
      {"0M", "must be more than 0"},
      {"-1", "must be positive"},
      {"-256M", "must be positive"},
      {"abc", "not a size"},
      {"", "not a size"},
      {"M", "not a size"},
      {"256MB", "not a size"},
      {"256 M", "not a size"},
      {"12T", "not a size"},
      {"1.5G", "fractions are not accepted"},
      {"5G", "more than the 3G maximum"},
      {"3073M", "more than the 3G maximum"},
      {"3145729K", "more than the 3G maximum"},
      {"99999999999999999999999", "more than the 3G maximum"},
      {"18446744073709551615", "more than the 3G maximum"},
      {"1025K", "not a multiple of 4K"},
  };
  for (const auto& [text, reason] : cases) {
    auto got = parse_mem_size(text);
    ASSERT_FALSE(got.ok()) << "'" << text << "' was accepted as " << *got;
    EXPECT_NE(got.error().find(reason), std::string::npos) << text << ": " << got.error();
  }
}

TEST(MemSizeString, PicksTheLargestExactUnit) {
  EXPECT_EQ(mem_size_string(256 * kMiB), "256M");
  EXPECT_EQ(mem_size_string(3 * kGiB), "3G");
  EXPECT_EQ(mem_size_string(1028 * kKiB), "1028K");
  EXPECT_EQ(mem_size_string(1536 * kMiB), "1536M");
  EXPECT_EQ(mem_size_string(4095), "4095");
  for (const char* text : {"256M", "3G", "1028K", "1536M"}) EXPECT_EQ(mem_size_string(*parse_mem_size(text)), text);
}

TEST(ParseCount, WholeNumbersOnly) {
  EXPECT_EQ(*parse_count("0"), 0u);
  EXPECT_EQ(*parse_count("1000000"), 1000000u);
  EXPECT_EQ(*parse_count("18446744073709551615"), 18446744073709551615ull);
  EXPECT_FALSE(parse_count("18446744073709551616").ok());
  EXPECT_FALSE(parse_count("-1").ok());
  EXPECT_FALSE(parse_count("1k").ok());
  EXPECT_FALSE(parse_count("").ok());
}

TEST(RunOptions, TableIsWellFormed) {
  std::set<std::string_view> flags;
  for (size_t i = 0; i < std::size(kRunOptions); ++i) {
    const RunOptionSpec& spec = kRunOptions[i];
    EXPECT_EQ(static_cast<size_t>(spec.id), i) << spec.flag;
    EXPECT_EQ(&run_option(spec.id), &spec);
    EXPECT_EQ(spec.flag.substr(0, 2), "--") << spec.flag;
    EXPECT_TRUE(flags.insert(spec.flag).second) << "duplicate " << spec.flag;
    EXPECT_FALSE(spec.help.empty()) << spec.flag;
  }
}

TEST(RunOptions, EveryOptionIsDocumented) {
  std::ifstream in(std::string(VMM86_SOURCE_DIR) + "/docs/usage.md");
  ASSERT_TRUE(in) << "docs/usage.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const RunOptionSpec& spec : kRunOptions) {
    // Appended, not "`" + string: GCC 12 warns (-Wrestrict, falsely) about the inserting form.
    EXPECT_NE(text.str().find(std::string("`").append(spec.flag)), std::string::npos)
        << spec.flag << " is not described in docs/usage.md";
  }
}

/// parse_command_line() with its output captured.
struct Parsed {
  CommandLine command;
  std::string out;
  std::string err;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "vmm86");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  char* out_buf = nullptr;
  char* err_buf = nullptr;
  size_t out_len = 0;
  size_t err_len = 0;
  FILE* out = open_memstream(&out_buf, &out_len);
  FILE* err = open_memstream(&err_buf, &err_len);
  Parsed p;
  p.command = parse_command_line(static_cast<int>(argv.size()), argv.data(), out, err);
  std::fclose(out);
  std::fclose(err);
  p.out.assign(out_buf, out_len);
  p.err.assign(err_buf, err_len);
  std::free(out_buf);
  std::free(err_buf);
  return p;
}

// Like qemu-system-i386 with no options: the machine starts its BIOS (SeaBIOS).
TEST(ParseCommandLine, NoKernelBootsTheDefaultBios) {
  const Parsed p = parse({"run"});
  ASSERT_TRUE(p.command.run) << p.err;
  EXPECT_EQ(p.command.run->kernel_path, "");
  EXPECT_EQ(p.command.run->bios_path, "/usr/share/seabios/bios.bin");
  const Parsed other = parse({"run", "--bios", "/usr/share/bochs/BIOS-bochs-latest"});
  ASSERT_TRUE(other.command.run) << other.err;
  EXPECT_EQ(other.command.run->bios_path, "/usr/share/bochs/BIOS-bochs-latest");
}

// QEMU's drive numbering: -hda..-hdd are IDE positions 0-3, -cdrom is 2 (secondary
// master), -drive without index takes the next free one.
TEST(ParseCommandLine, DrivesTakeQemusIdePositions) {
  const Parsed p = parse({"run", "--hda", "disk.img", "--cdrom", "cd.iso", "--drive", "file=more.img,readonly=on",
                          "--boot", "d", "--snapshot", "--debugcon", "0x402:bios.log"});
  ASSERT_TRUE(p.command.run) << p.err;
  const MachineConfig& c = *p.command.run;
  ASSERT_EQ(c.drives.size(), 3u);
  EXPECT_EQ(c.drives[0].path, "disk.img");
  EXPECT_EQ(c.drives[0].index, 0u);
  EXPECT_EQ(c.drives[0].media, DriveMedia::Disk);
  EXPECT_EQ(c.drives[1].path, "cd.iso");
  EXPECT_EQ(c.drives[1].index, 2u);
  EXPECT_EQ(c.drives[1].media, DriveMedia::Cdrom);
  EXPECT_TRUE(c.drives[1].read_only);
  EXPECT_EQ(c.drives[2].index, 1u);
  EXPECT_TRUE(c.drives[2].read_only);
  EXPECT_TRUE(c.drives[0].format.empty());  // probed
  EXPECT_EQ(c.boot_order, "d");
  EXPECT_TRUE(c.snapshot);
  ASSERT_EQ(c.debugcons.size(), 1u);
  EXPECT_EQ(c.debugcons[0].port, 0x402);
  EXPECT_EQ(c.debugcons[0].path, "bios.log");
}

TEST(ParseCommandLine, DriveFormats) {
  const Parsed p = parse({"run", "--drive", "file=a.qcow2,format=qcow2", "--drive", "file=b.img,format=raw"});
  ASSERT_TRUE(p.command.run) << p.err;
  ASSERT_EQ(p.command.run->drives.size(), 2u);
  EXPECT_EQ(p.command.run->drives[0].format, "qcow2");
  EXPECT_EQ(p.command.run->drives[1].format, "raw");
}

// --fda and --fdb are floppy drives A: and B: (QEMU's -fda, -fdb, -drive if=floppy); the
// floppy controller's positions are apart from the IDE ones.
TEST(ParseCommandLine, FloppiesTakeDrivesAAndB) {
  const Parsed p = parse(
      {"run", "--fdb", "b.img", "--hda", "disk.img", "--drive", "file=a.img,if=floppy,readonly=on", "--boot", "a"});
  ASSERT_TRUE(p.command.run) << p.err;
  const MachineConfig& c = *p.command.run;
  ASSERT_EQ(c.drives.size(), 3u);
  EXPECT_EQ(c.drives[0].path, "disk.img");
  EXPECT_EQ(c.drives[0].interface, DriveInterface::Ide);
  EXPECT_EQ(c.drives[1].path, "b.img");
  EXPECT_EQ(c.drives[1].interface, DriveInterface::Floppy);
  EXPECT_EQ(c.drives[1].index, 1u);
  EXPECT_EQ(c.drives[2].path, "a.img");
  EXPECT_EQ(c.drives[2].interface, DriveInterface::Floppy);
  EXPECT_EQ(c.drives[2].index, 0u);  // the first free floppy position
  EXPECT_TRUE(c.drives[2].read_only);
  EXPECT_EQ(c.boot_order, "a");
  const Parsed third = parse({"run", "--fda", "a", "--fdb", "b", "--drive", "file=c,if=floppy"});
  EXPECT_FALSE(third.command.run);
  EXPECT_NE(third.err.find("all 2 floppy positions are taken"), std::string::npos) << third.err;
}

TEST(ParseCommandLine, DefaultsAreQemuLike) {
  const Parsed p = parse({"run", "--kernel", "bzImage"});
  ASSERT_TRUE(p.command.run) << p.err;
  const MachineConfig& c = *p.command.run;
  EXPECT_EQ(c.kernel_path, "bzImage");
  EXPECT_EQ(c.bios_path, "");
  EXPECT_EQ(c.initrd_path, "");
  EXPECT_EQ(c.cmdline, "");
  EXPECT_EQ(c.ram_bytes, 256 * kMiB);
  EXPECT_EQ(c.engine, Engine::Bt);
  EXPECT_FALSE(c.stats);
  EXPECT_EQ(c.trace_path, "");
  EXPECT_EQ(c.trace_limit, 0u);
  EXPECT_EQ(p.out, "");
  EXPECT_EQ(p.err, "");
}

TEST(ParseCommandLine, EveryOptionReachesTheConfig) {
  const Parsed p = parse({"run", "--kernel=k", "--initrd", "i", "--append", "console=ttyS0 quiet", "--mem", "1G",
                          "--engine", "interp", "--stats", "--trace", "t.log", "--trace-limit", "5000"});
  ASSERT_TRUE(p.command.run) << p.err;
  const MachineConfig& c = *p.command.run;
  EXPECT_EQ(c.kernel_path, "k");
  EXPECT_EQ(c.initrd_path, "i");
  EXPECT_EQ(c.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(c.ram_bytes, kGiB);
  EXPECT_EQ(c.engine, Engine::Interp);
  EXPECT_TRUE(c.stats);
  EXPECT_EQ(c.trace_path, "t.log");
  EXPECT_EQ(c.trace_limit, 5000u);
}

TEST(ParseCommandLine, DashMIsMemAsInQemu) {
  const Parsed p = parse({"run", "--kernel", "k", "-m", "512M"});
  ASSERT_TRUE(p.command.run) << p.err;
  EXPECT_EQ(p.command.run->ram_bytes, 512 * kMiB);
}

TEST(ParseCommandLine, EmptyAppendIsFine) {
  const Parsed p = parse({"run", "--kernel", "k", "--append", ""});
  ASSERT_TRUE(p.command.run) << p.err;
  EXPECT_EQ(p.command.run->cmdline, "");
}

TEST(ParseCommandLine, ErrorsAreOneLineAndStatusTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"run", "--initrd", "i"},
      {"run", "--append", "quiet"},
      {"run", "--kernel", "k", "--bios", "b"},
      {"run", "--drive", "file=x,format=vmdk"},
      {"run", "--drive", "file=x,if=virtio"},
      {"run", "--drive", "file=x,index=4"},
      {"run", "--drive", "media=disk"},
      {"run", "--drive", "file=x,speed=fast"},
      {"run", "--hda", "a", "--drive", "file=b,index=0"},
      {"run", "--kernel", "k", "--hda", "d"},
      {"run", "--kernel", "k", "--fda", "f"},
      {"run", "--fda", "a", "--drive", "file=b,if=floppy,index=0"},
      {"run", "--drive", "file=x,if=floppy,index=2"},
      {"run", "--drive", "file=x,if=floppy,media=cdrom"},
      {"run", "--boot", "z"},
      {"run", "--debugcon", "0x10000:f"},
      {"run", "--debugcon", "0x402:"},
      {"run", "--debugcon", "0x402:a", "--debugcon", "0x402:b"},
      {"run", "--kernel", "k", "--mem", "abc"},
      {"run", "--kernel", "k", "--mem", ""},
      {"run", "--kernel", ""},
      {"run", "--kernel", "k", "--engine", "kvm"},
      {"run", "--kernel", "k", "--trace-limit", "10"},
      {"run", "--kernel", "k", "--trace", "t", "--trace-limit", "ten"},
      {"run", "--kernel", "k", "--frobnicate"},
      {"run", "--kernel", "k", "stray"},
      {"walk"},
      {},
  };
  for (const auto& args : bad) {
    const Parsed p = parse(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_FALSE(p.command.run) << joined;
    EXPECT_EQ(p.command.exit_status, kExitUsage) << joined;
    EXPECT_EQ(p.err.rfind("vmm86: error: ", 0), 0u) << joined << "-> " << p.err;
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << joined << "-> " << p.err;
    EXPECT_EQ(p.out, "") << joined;
  }
}

/// The lines of `help` that describe `flag`: its own line and the continuation lines
/// after it, up to the next option or a blank line.
std::string help_entry(const std::string& help, std::string_view flag) {
  std::istringstream lines(help);
  std::string line;
  std::string entry;
  bool inside = false;
  while (std::getline(lines, line)) {
    const size_t text = line.find_first_not_of(' ');
    const bool option_line = text != std::string::npos && line[text] == '-';
    if (inside && (option_line || text == std::string::npos)) break;
    // "--flag VALUE ..." or, with a short alias, "-f,--flag VALUE ...".
    const std::string names = option_line ? line.substr(text, line.find(' ', text) - text) : "";
    const size_t at = names.find(flag);
    if (option_line && at != std::string::npos && at + flag.size() == names.size() &&
        (at == 0 || names[at - 1] == ',')) {
      inside = true;
    }
    if (inside) entry += line + "\n";
  }
  return entry;
}

TEST(ParseCommandLine, HelpListsEveryOptionAndWhatIsInactive) {
  for (const auto& args : {std::vector<std::string>{"--help"}, std::vector<std::string>{"run", "--help"}}) {
    const Parsed p = parse(args);
    EXPECT_FALSE(p.command.run);
    EXPECT_EQ(p.command.exit_status, kExitOk);
    EXPECT_EQ(p.err, "");
    for (const RunOptionSpec& spec : kRunOptions) {
      const std::string entry = help_entry(p.out, spec.flag);
      ASSERT_FALSE(entry.empty()) << spec.flag << " missing from:\n" << p.out;
      EXPECT_EQ(entry.find(kNotActiveYetMark) != std::string::npos, spec.state == OptionState::NotActiveYet) << entry;
    }
  }
}

TEST(ParseCommandLine, Version) {
  const Parsed p = parse({"--version"});
  EXPECT_FALSE(p.command.run);
  EXPECT_EQ(p.command.exit_status, kExitOk);
  EXPECT_EQ(p.out.rfind("vmm86 ", 0), 0u) << p.out;
}

// --debug-exit takes QEMU's isa-debug-exit properties, or none.
TEST(ParseCommandLine, DebugExit) {
  const Parsed none = parse({"run", "--kernel", "k"});
  ASSERT_TRUE(none.command.run) << none.err;
  EXPECT_FALSE(none.command.run->debug_exit);
  const Parsed bare = parse({"run", "--debug-exit", "--kernel", "k"});
  ASSERT_TRUE(bare.command.run) << bare.err;
  ASSERT_TRUE(bare.command.run->debug_exit);
  EXPECT_EQ(bare.command.run->debug_exit->iobase, 0xF4);
  EXPECT_EQ(bare.command.run->debug_exit->iosize, 4);
  const Parsed given = parse({"run", "--kernel", "k", "--debug-exit", "iobase=0x501,iosize=2"});
  ASSERT_TRUE(given.command.run) << given.err;
  EXPECT_EQ(given.command.run->debug_exit->iobase, 0x501);
  EXPECT_EQ(given.command.run->debug_exit->iosize, 2);
  const Parsed equals = parse({"run", "--kernel", "k", "--debug-exit=iosize=1"});
  ASSERT_TRUE(equals.command.run) << equals.err;
  EXPECT_EQ(equals.command.run->debug_exit->iobase, 0xF4);
  EXPECT_EQ(equals.command.run->debug_exit->iosize, 1);
  for (const char* bad :
       {"iobase=0x10000", "iosize=0", "iobase=0xfffe,iosize=4", "port=0xf4", "iobase", "iobase=-1", "iosize=four"}) {
    const Parsed p = parse({"run", "--kernel", "k", "--debug-exit", bad});
    EXPECT_FALSE(p.command.run) << bad;
    EXPECT_EQ(p.command.exit_status, kExitUsage) << bad;
    EXPECT_EQ(p.err.rfind(std::string("vmm86: error: --debug-exit ").append(bad).append(": "), 0), 0u) << p.err;
  }
}

TEST(ParseCommandLine, Smp) {
  const Parsed one = parse({"run", "--kernel", "k"});
  ASSERT_TRUE(one.command.run) << one.err;
  EXPECT_EQ(one.command.run->smp, 1u);
  const Parsed two = parse({"run", "--kernel", "k", "--smp", "2"});
  ASSERT_TRUE(two.command.run) << two.err;
  EXPECT_EQ(two.command.run->smp, 2u);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--smp", "0"}, "--smp 0: expected a number of CPUs from 1 to 8"},
      {{"--smp", "9"}, "--smp 9: expected a number of CPUs from 1 to 8"},
      {{"--smp", "two"}, "--smp two: expected a number of CPUs from 1 to 8"},
      {{"--smp", "2", "--no-apic"}, "--smp 2 needs the local APIC: leave out --no-apic"},
      {{"--smp", "2", "--verify"}, "--trace, --verify and --perf-map need one vCPU (--smp 1)"},
  };
  for (const auto& [args, message] : bad) {
    std::vector<std::string> argv = {"run", "--kernel", "k"};
    argv.insert(argv.end(), args.begin(), args.end());
    const Parsed p = parse(argv);
    EXPECT_FALSE(p.command.run) << message;
    EXPECT_EQ(p.command.exit_status, kExitUsage) << message;
    EXPECT_EQ(p.err, "vmm86: error: " + message + "\n");
  }
}

// QEMU's -netdev user,hostfwd=... -device ne2k_pci,netdev=... and the -nic shorthand.
TEST(ParseCommandLine, NetdevAndDeviceAsQemuSpellsThem) {
  const Parsed p = parse({"run", "--netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.16:53",
                          "--device", "ne2k_pci,netdev=n0,mac=52:54:00:aa:bb:cc"});
  ASSERT_TRUE(p.command.run) << p.err;
  const MachineConfig& c = *p.command.run;
  ASSERT_EQ(c.netdevs.size(), 1u);
  ASSERT_EQ(c.netdevs[0].forwards.size(), 2u);
  const HostForward& tcp = c.netdevs[0].forwards[0];
  EXPECT_FALSE(tcp.udp);
  EXPECT_EQ(tcp.host_address, "127.0.0.1");
  EXPECT_EQ(tcp.host_port, 8080);
  EXPECT_EQ(tcp.guest_address, "");
  EXPECT_EQ(tcp.guest_port, 80);
  const HostForward& udp = c.netdevs[0].forwards[1];
  EXPECT_TRUE(udp.udp);
  EXPECT_EQ(udp.host_address, "");
  EXPECT_EQ(udp.guest_address, "10.0.2.16");
  ASSERT_EQ(c.nics.size(), 1u);
  EXPECT_EQ(c.nics[0].netdev, "n0");
  ASSERT_TRUE(c.nics[0].mac);
  EXPECT_EQ((*c.nics[0].mac)[3], 0xAA);

  const Parsed nic = parse({"run", "--nic", "user,model=ne2k_pci,hostfwd=tcp:127.0.0.1:2222-:22"});
  ASSERT_TRUE(nic.command.run) << nic.err;
  ASSERT_EQ(nic.command.run->nics.size(), 1u);
  EXPECT_EQ(nic.command.run->netdevs[0].forwards[0].guest_port, 22);
}

TEST(ParseCommandLine, BadNetworkOptionsAreRefusedInOneLine) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--netdev", "tap,id=n0", "--device", "ne2k_pci,netdev=n0"},
           {"--netdev", "user", "--device", "ne2k_pci,netdev=n0"},
           {"--netdev", "user,id=n0"},
           {"--netdev", "user,id=n0", "--device", "e100,netdev=n0"},
           {"--netdev", "user,id=n0", "--device", "ne2k_pci,netdev=n1"},
           {"--netdev", "user,id=n0", "--device", "ne2k_pci,netdev=n0", "--device", "ne2k_pci,netdev=n0"},
           {"--netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:0-:80", "--device", "ne2k_pci,netdev=n0"},
           {"--netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:80:80", "--device", "ne2k_pci,netdev=n0"},
           {"--netdev", "user,id=n0,hostfwd=sctp::80-:80", "--device", "ne2k_pci,netdev=n0"},
           {"--nic", "user,mac=01:00:00:00:00:01"},
           {"--nic", "user,mac=52:54:00:12:34"},
           {"--kernel", "/boot/vmlinuz", "--nic", "user"},
       }) {
    std::vector<std::string> argv = {"run"};
    argv.insert(argv.end(), args.begin(), args.end());
    const Parsed p = parse(argv);
    EXPECT_FALSE(p.command.run) << args[1];
    EXPECT_EQ(p.command.exit_status, kExitUsage) << args[1];
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
  }
}

}  // namespace
}  // namespace vmm86
