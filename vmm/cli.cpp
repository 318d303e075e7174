#include "vmm/cli.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>
#include <vector>

#include "vmm/version.h"

namespace vmm86 {

namespace {

constexpr uint64_t kMaxRamBytes = 3ull << 30;
constexpr uint64_t kRamGranule = 4096;

/// Size suffixes, largest first so mem_size_string picks the biggest exact unit.
constexpr std::array<std::pair<char, uint64_t>, 3> kSizeUnits{
    {{'G', 1ull << 30}, {'M', 1ull << 20}, {'K', 1ull << 10}}};

/// argv as CLI11 leaves it, before values are checked.
struct RawRun {
  std::string kernel;
  std::string bios;
  std::string initrd;
  std::string append;
  std::string mem;
  std::string engine;
  bool stats = false;
  bool verify = false;
  std::string verify_period;
  bool perf_map = false;
  std::string trace;
  std::string trace_limit;
  std::vector<std::string> debugcons;
  /// --debug-exit given, with or without a value; the value, if one.
  bool debug_exit = false;
  std::vector<std::string> debug_exit_value;
  std::array<std::string, kIdeDrives> hd;  ///< --hda .. --hdd
  std::string cdrom;
  std::array<std::string, kFloppyDrives> fd;  ///< --fda, --fdb
  std::vector<std::string> drives;
  std::string boot;
  bool snapshot = false;
  bool no_reboot = false;
  bool no_acpi = false;
  bool no_apic = false;
  std::string vga;
  std::string display;
  std::string screenshot;
  std::string screen_text;
  std::vector<std::string> netdevs;
  std::vector<std::string> devices;
  std::vector<std::string> nics;
  std::string smp;
};

/// --display: "none" or "vnc=[HOST]:N".
Status parse_display(const std::string& text, MachineConfig* config) {
  if (text == "none") return ok_status();
  constexpr std::string_view kVnc = "vnc=";
  if (text.rfind(kVnc, 0) != 0) return make_error("--display {}: expected none or vnc=[HOST]:N", text);
  const std::string spec = text.substr(kVnc.size());
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return make_error("--display {}: expected vnc=[HOST]:N", text);
  auto number = parse_count(spec.substr(colon + 1));
  if (!number || *number > 100) return make_error("--display {}: N must be a display number from 0 to 100", text);
  config->vnc = VncConfig{spec.substr(0, colon), static_cast<unsigned>(*number)};
  return ok_status();
}

/// QEMU's -drive syntax, the keys vmm86 knows: file, format, if, media, readonly, index.
/// `index` stays kIdeDrives when not given (the next free position is taken).
Result<DriveConfig> parse_drive(const std::string& text) {
  DriveConfig drive;
  drive.index = kIdeDrives;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return make_error("--drive {}: '{}' is not KEY=VALUE", text, item);
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    if (key == "file") {
      drive.path = value;
    } else if (key == "format") {
      if (value != "raw" && value != "qcow2") {
        return make_error("--drive {}: format={} is not supported (raw or qcow2)", text, value);
      }
      drive.format = value;
    } else if (key == "if") {
      if (value != "ide" && value != "floppy") {
        return make_error("--drive {}: if={} is not supported yet (ide or floppy)", text, value);
      }
      drive.interface = value == "floppy" ? DriveInterface::Floppy : DriveInterface::Ide;
    } else if (key == "media") {
      if (value != "disk" && value != "cdrom") return make_error("--drive {}: media must be disk or cdrom", text);
      drive.media = value == "cdrom" ? DriveMedia::Cdrom : DriveMedia::Disk;
    } else if (key == "readonly") {
      if (value != "on" && value != "off") return make_error("--drive {}: readonly must be on or off", text);
      drive.read_only = value == "on";
    } else if (key == "index") {
      if (value.size() != 1 || value[0] < '0' || value[0] >= static_cast<char>('0' + kIdeDrives)) {
        return make_error("--drive {}: index must be 0 to {}", text, kIdeDrives - 1);
      }
      drive.index = static_cast<unsigned>(value[0] - '0');
    } else {
      return make_error("--drive {}: unknown key '{}'", text, key);
    }
  }
  if (drive.path.empty()) return make_error("--drive {}: no file= given", text);
  if (drive.interface == DriveInterface::Floppy) {
    if (drive.media == DriveMedia::Cdrom) return make_error("--drive {}: a floppy drive takes no media=cdrom", text);
    if (drive.index != kIdeDrives && drive.index >= kFloppyDrives) {
      return make_error("--drive {}: index must be 0 or 1 on if=floppy", text);
    }
  }
  if (drive.media == DriveMedia::Cdrom) drive.read_only = true;
  return drive;
}

/// The drives of --hda..--hdd, --cdrom, --fda, --fdb and --drive at distinct positions of
/// their interfaces.
Status collect_drives(const RawRun& raw, MachineConfig* config) {
  std::vector<bool> ide_taken(kIdeDrives);
  std::vector<bool> floppy_taken(kFloppyDrives);
  auto place = [&](DriveConfig drive, const std::string& what) -> Status {
    const bool floppy = drive.interface == DriveInterface::Floppy;
    std::vector<bool>& taken = floppy ? floppy_taken : ide_taken;
    const char* kind = floppy ? "floppy" : "IDE";
    if (drive.index == kIdeDrives) {
      const auto free = std::find(taken.begin(), taken.end(), false);
      if (free == taken.end()) return make_error("{}: all {} {} positions are taken", what, taken.size(), kind);
      drive.index = static_cast<unsigned>(free - taken.begin());
    }
    if (taken[drive.index]) return make_error("{}: {} position {} is taken by another drive", what, kind, drive.index);
    taken[drive.index] = true;
    config->drives.push_back(std::move(drive));
    return ok_status();
  };
  constexpr std::array<std::string_view, kIdeDrives> kHdFlags{"--hda", "--hdb", "--hdc", "--hdd"};
  for (unsigned i = 0; i < kIdeDrives; ++i) {
    if (raw.hd[i].empty()) continue;
    VMM86_TRY(place(DriveConfig{raw.hd[i], DriveMedia::Disk, false, i, ""}, std::string(kHdFlags[i])));
  }
  if (!raw.cdrom.empty()) VMM86_TRY(place(DriveConfig{raw.cdrom, DriveMedia::Cdrom, true, 2, ""}, "--cdrom"));
  constexpr std::array<std::string_view, kFloppyDrives> kFdFlags{"--fda", "--fdb"};
  for (unsigned i = 0; i < kFloppyDrives; ++i) {
    if (raw.fd[i].empty()) continue;
    VMM86_TRY(place(DriveConfig{raw.fd[i], DriveMedia::Disk, false, i, "", DriveInterface::Floppy},
                    std::string(kFdFlags[i])));
  }
  for (const std::string& text : raw.drives) {
    auto drive = parse_drive(text);
    if (!drive) return std::move(drive).take_error();
    VMM86_TRY(place(std::move(*drive), "--drive " + text));
  }
  return ok_status();
}

/// "[IOBASE:]FILE" of --debugcon; IOBASE in hex (0x402) or decimal.
Result<DebugconConfig> parse_debugcon(const std::string& text) {
  DebugconConfig debugcon;
  debugcon.path = text;
  if (const size_t colon = text.find(':'); colon != std::string::npos) {
    const std::string base = text.substr(0, colon);
    char* end = nullptr;
    const unsigned long port = std::strtoul(base.c_str(), &end, 0);
    if (base.empty() || *end != '\0' || port > 0xFFFF) {
      return make_error("--debugcon {}: {} is not an I/O port (0 to 0xFFFF)", text, base);
    }
    debugcon.port = static_cast<uint16_t>(port);
    debugcon.path = text.substr(colon + 1);
  }
  if (debugcon.path.empty()) return make_error("--debugcon {}: no file given", text);
  return debugcon;
}

/// A number of --debug-exit, hex (0xf4) or decimal, in [min, max].
Result<uint32_t> parse_debug_exit_number(const std::string& text, const std::string& key, uint32_t min, uint32_t max) {
  char* end = nullptr;
  const unsigned long number = std::strtoul(text.c_str(), &end, 0);
  if (text.empty() || *end != '\0' || text.front() == '-' || number < min || number > max) {
    return make_error("{}={} is not a number from {:#x} to {:#x}", key, text, min, max);
  }
  return static_cast<uint32_t>(number);
}

/// "[iobase=A][,iosize=N]" of --debug-exit, QEMU's -device isa-debug-exit properties.
Result<DebugExitConfig> parse_debug_exit(const std::string& text) {
  DebugExitConfig config;
  uint32_t size = config.iosize;
  size_t start = 0;
  while (start < text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (eq == std::string::npos || (key != "iobase" && key != "iosize")) {
      return make_error("--debug-exit {}: '{}' is not iobase=PORT or iosize=COUNT", text, item);
    }
    auto number = parse_debug_exit_number(item.substr(eq + 1), key, key == "iobase" ? 0 : 1,
                                          key == "iobase" ? 0xFFFF : 0x10000);
    if (!number) return make_error("--debug-exit {}: {}", text, number.error());
    if (key == "iobase") config.iobase = static_cast<uint16_t>(*number);
    if (key == "iosize") size = *number;
  }
  if (config.iobase + size > 0x10000) {
    return make_error("--debug-exit {}: ports {:#x}+{:#x} run past 0xffff", text, config.iobase, size);
  }
  config.iosize = static_cast<uint16_t>(size);
  return config;
}

/// "KEY=VALUE,KEY=VALUE" after a leading word (QEMU's option syntax); the word first.
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    items.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

/// "KEY=VALUE" as its two parts ("KEY" alone: an empty value).
std::pair<std::string, std::string> key_value(const std::string& item) {
  const size_t eq = item.find('=');
  return {item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1)};
}

Result<uint16_t> parse_port(const std::string& text) {
  auto number = parse_count(text);
  if (!number || *number == 0 || *number > 0xFFFF) return make_error("'{}' is not a port (1 to 65535)", text);
  return static_cast<uint16_t>(*number);
}

/// hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
Result<HostForward> parse_hostfwd(const std::string& text) {
  const auto fail = [&] {
    return make_error("hostfwd={}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", text);
  };
  const size_t dash = text.find('-');
  if (dash == std::string::npos) return fail();
  const std::string host = text.substr(0, dash);
  const std::string guest = text.substr(dash + 1);
  const size_t c1 = host.find(':');
  const size_t c2 = c1 == std::string::npos ? std::string::npos : host.find(':', c1 + 1);
  const size_t g1 = guest.find(':');
  if (c2 == std::string::npos || g1 == std::string::npos) return fail();
  HostForward forward;
  const std::string protocol = host.substr(0, c1);
  if (!protocol.empty() && protocol != "tcp" && protocol != "udp") return fail();
  forward.udp = protocol == "udp";
  forward.host_address = host.substr(c1 + 1, c2 - c1 - 1);
  forward.guest_address = guest.substr(0, g1);
  auto host_port = parse_port(host.substr(c2 + 1));
  if (!host_port) return make_error("hostfwd={}: {}", text, host_port.error());
  auto guest_port = parse_port(guest.substr(g1 + 1));
  if (!guest_port) return make_error("hostfwd={}: {}", text, guest_port.error());
  forward.host_port = *host_port;
  forward.guest_port = *guest_port;
  return forward;
}

/// mac=52:54:00:12:34:56
Result<std::array<uint8_t, 6>> parse_mac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned bytes[6];
  char tail = 0;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2], &bytes[3], &bytes[4],
                  &bytes[5], &tail) != 6 ||
      text.size() != 17) {
    return make_error("mac={}: expected six hex bytes as 52:54:00:12:34:56", text);
  }
  for (size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<uint8_t>(bytes[i]);
  if (mac[0] & 1) return make_error("mac={}: a multicast address cannot be a NIC's", text);
  return mac;
}

Result<NicModel> parse_nic_model(const std::string& name, const std::string& option) {
  for (const auto& [spelling, model] : kNicModels) {
    if (spelling == name) return model;
  }
  return make_error("{}: NIC model '{}' is not supported (ne2k_pci)", option, name);
}

/// The netdevs and NICs of --netdev, --device and --nic, each NIC on its own netdev.
Status collect_network(const RawRun& raw, MachineConfig* config) {
  for (const std::string& text : raw.netdevs) {
    const std::vector<std::string> items = split_commas(text);
    if (items[0] != "user") return make_error("--netdev {}: only 'user' networking is supported", text);
    NetdevConfig netdev;
    for (size_t i = 1; i < items.size(); ++i) {
      const auto [key, value] = key_value(items[i]);
      if (key == "id" && !value.empty()) {
        netdev.id = value;
      } else if (key == "hostfwd") {
        auto forward = parse_hostfwd(value);
        if (!forward) return make_error("--netdev {}: {}", text, forward.error());
        netdev.forwards.push_back(*forward);
      } else {
        return make_error("--netdev {}: '{}' is not supported (id=, hostfwd=)", text, items[i]);
      }
    }
    if (netdev.id.empty()) return make_error("--netdev {}: no id= given", text);
    for (const NetdevConfig& other : config->netdevs) {
      if (other.id == netdev.id) return make_error("--netdev {}: id {} given twice", text, netdev.id);
    }
    config->netdevs.push_back(std::move(netdev));
  }
  for (const std::string& text : raw.devices) {
    const std::vector<std::string> items = split_commas(text);
    auto model = parse_nic_model(items[0], "--device " + text);
    if (!model) return std::move(model).take_error();
    NicConfig nic;
    nic.model = *model;
    for (size_t i = 1; i < items.size(); ++i) {
      const auto [key, value] = key_value(items[i]);
      if (key == "netdev") {
        nic.netdev = value;
      } else if (key == "mac") {
        auto mac = parse_mac(value);
        if (!mac) return make_error("--device {}: {}", text, mac.error());
        nic.mac = *mac;
      } else if (key != "id") {
        return make_error("--device {}: '{}' is not supported (netdev=, mac=)", text, items[i]);
      }
    }
    const bool known = std::any_of(config->netdevs.begin(), config->netdevs.end(),
                                   [&](const NetdevConfig& n) { return n.id == nic.netdev; });
    if (!known) return make_error("--device {}: netdev={} names no --netdev", text, nic.netdev);
    config->nics.push_back(std::move(nic));
  }
  for (const std::string& text : raw.nics) {
    const std::vector<std::string> items = split_commas(text);
    if (items[0] != "user") return make_error("--nic {}: only 'user' networking is supported", text);
    NetdevConfig netdev;
    netdev.id = fmt::format("nic{}", config->nics.size());
    NicConfig nic;
    nic.netdev = netdev.id;
    for (size_t i = 1; i < items.size(); ++i) {
      const auto [key, value] = key_value(items[i]);
      if (key == "model") {
        auto model = parse_nic_model(value, "--nic " + text);
        if (!model) return std::move(model).take_error();
        nic.model = *model;
      } else if (key == "mac") {
        auto mac = parse_mac(value);
        if (!mac) return make_error("--nic {}: {}", text, mac.error());
        nic.mac = *mac;
      } else if (key == "hostfwd") {
        auto forward = parse_hostfwd(value);
        if (!forward) return make_error("--nic {}: {}", text, forward.error());
        netdev.forwards.push_back(*forward);
      } else {
        return make_error("--nic {}: '{}' is not supported (model=, mac=, hostfwd=)", text, items[i]);
      }
    }
    config->netdevs.push_back(std::move(netdev));
    config->nics.push_back(std::move(nic));
  }
  for (const NetdevConfig& netdev : config->netdevs) {
    const auto users = std::count_if(config->nics.begin(), config->nics.end(),
                                     [&](const NicConfig& nic) { return nic.netdev == netdev.id; });
    if (users == 0) return make_error("--netdev {}: no --device is connected to it", netdev.id);
    if (users > 1) return make_error("--netdev {}: more than one --device is connected to it", netdev.id);
  }
  return ok_status();
}

std::string help_of(const RunOptionSpec& spec) {
  std::string text(spec.help);
  if (spec.state == OptionState::NotActiveYet) text += fmt::format(" {}", kNotActiveYetMark);
  return text;
}

std::string run_footer() {
  std::string text = fmt::format(
      "The guest console is COM1 on this terminal; Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.\n"
      "Exit status: {} guest powered off or reset (or quit), {} guest could not be loaded or failed\n"
      "(triple fault, unsupported feature), {} bad command line; with --debug-exit, (V << 1) | 1\n"
      "when the guest writes V to the device.",
      static_cast<int>(kExitOk), static_cast<int>(kExitFailure), static_cast<int>(kExitUsage));
  return text;
}

/// Turns the strings CLI11 collected into a MachineConfig, or the first error.
Result<MachineConfig> check_run(const RawRun& raw) {
  MachineConfig config;
  config.kernel_path = raw.kernel;
  config.bios_path = raw.bios;
  if (!raw.kernel.empty() && !raw.bios.empty()) {
    return make_error("--kernel and --bios together are not supported yet: the BIOS cannot hand a kernel over");
  }
  if (raw.kernel.empty()) {
    if (!raw.initrd.empty()) return make_error("--initrd needs --kernel");
    if (!raw.append.empty()) return make_error("--append needs --kernel");
    if (config.bios_path.empty()) config.bios_path = std::string(kDefaultBiosPath);
  }
  config.initrd_path = raw.initrd;
  config.cmdline = raw.append;
  config.stats = raw.stats;
  config.verify = raw.verify;
  config.perf_map = raw.perf_map;
  config.trace_path = raw.trace;
  if (!raw.mem.empty()) {
    auto bytes = parse_mem_size(raw.mem);
    if (!bytes) return make_error("--mem {}: {}", raw.mem, bytes.error());
    config.ram_bytes = *bytes;
  }
  if (!raw.engine.empty()) {
    auto it = std::find_if(kEngineNames.begin(), kEngineNames.end(),
                           [&](const auto& e) { return e.first == raw.engine; });
    if (it == kEngineNames.end()) {
      std::string names;
      for (const auto& [name, engine] : kEngineNames) names += (names.empty() ? "" : " or ") + std::string(name);
      return make_error("--engine {}: unknown engine (choose {})", raw.engine, names);
    }
    config.engine = it->second;
  }
  if (!raw.verify_period.empty()) {
    auto period = parse_count(raw.verify_period);
    if (!period || *period == 0 || *period > UINT32_MAX) {
      return make_error("--verify-period {}: expected a number from 1 to {}", raw.verify_period, UINT32_MAX);
    }
    config.verify_period = static_cast<uint32_t>(*period);
  }
  for (const std::string& text : raw.debugcons) {
    auto debugcon = parse_debugcon(text);
    if (!debugcon) return std::move(debugcon).take_error();
    for (const DebugconConfig& other : config.debugcons) {
      if (other.port == debugcon->port) return make_error("--debugcon {}: port {:#x} given twice", text, other.port);
    }
    config.debugcons.push_back(std::move(*debugcon));
  }
  if (raw.debug_exit) {
    auto debug_exit = parse_debug_exit(raw.debug_exit_value.empty() ? "" : raw.debug_exit_value.front());
    if (!debug_exit) return std::move(debug_exit).take_error();
    config.debug_exit = *debug_exit;
  }
  VMM86_TRY(collect_drives(raw, &config));
  if (!config.drives.empty() && !raw.kernel.empty()) {
    return make_error("drives need the BIOS boot for now: leave out --kernel (boot the disk's own loader)");
  }
  VMM86_TRY(collect_network(raw, &config));
  if (!config.nics.empty() && !raw.kernel.empty()) {
    return make_error("NICs need the BIOS boot for now (the PCI bus): leave out --kernel");
  }
  if (!raw.boot.empty()) {
    if (raw.boot.size() > 3 || raw.boot.find_first_not_of("acd") != std::string::npos) {
      return make_error("--boot {}: give up to three of the letters c (hard disk), d (CD-ROM), a (floppy)", raw.boot);
    }
    config.boot_order = raw.boot;
  }
  config.snapshot = raw.snapshot;
  config.no_reboot = raw.no_reboot;
  config.acpi = !raw.no_acpi;
  config.apic = !raw.no_apic;
  if (!raw.vga.empty() && raw.vga != "std" && raw.vga != "none") {
    return make_error("--vga {}: expected std or none", raw.vga);
  }
  config.vga = raw.vga == "std" ? VgaKind::Std : VgaKind::None;
  if (!raw.display.empty()) VMM86_TRY(parse_display(raw.display, &config));
  config.screenshot_path = raw.screenshot;
  config.screen_text_path = raw.screen_text;
  if (config.vga == VgaKind::None && (config.vnc || !raw.screenshot.empty() || !raw.screen_text.empty())) {
    return make_error("--display vnc, --screenshot and --screen-text need a display adapter: add --vga std");
  }
  if (!raw.smp.empty()) {
    auto cpus = parse_count(raw.smp);
    if (!cpus || *cpus < 1 || *cpus > kMaxSmpCpus) {
      return make_error("--smp {}: expected a number of CPUs from 1 to {}", raw.smp, kMaxSmpCpus);
    }
    config.smp = static_cast<unsigned>(*cpus);
  }
  if (config.smp > 1) {
    if (!config.apic) return make_error("--smp {} needs the local APIC: leave out --no-apic", config.smp);
    if (!config.trace_path.empty() || config.verify || config.perf_map) {
      return make_error("--trace, --verify and --perf-map need one vCPU (--smp 1)");
    }
  }
  if (!raw.trace_limit.empty()) {
    auto limit = parse_count(raw.trace_limit);
    if (!limit) return make_error("--trace-limit {}: {}", raw.trace_limit, limit.error());
    config.trace_limit = *limit;
  }
  return config;
}

/// Parses the leading decimal digits of `text` into *value; returns how many there were.
/// *value is nullopt when they overflow 64 bits.
size_t leading_number(std::string_view text, std::optional<uint64_t>* value) {
  uint64_t number = 0;
  bool overflow = false;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const auto digit = static_cast<uint64_t>(text[i] - '0');
    overflow = overflow || number > (std::numeric_limits<uint64_t>::max() - digit) / 10;
    if (!overflow) number = number * 10 + digit;
  }
  *value = overflow ? std::nullopt : std::optional<uint64_t>(number);
  return i;
}

}  // namespace

const RunOptionSpec& run_option(RunOption id) {
  // kRunOptions is generated in RunOption order.
  return kRunOptions[static_cast<size_t>(id)];
}

Result<uint64_t> parse_mem_size(std::string_view text) {
  constexpr std::string_view kExamples = "not a size (examples: 256M, 1G, 1024K, or 512 for 512 MiB)";
  if (!text.empty() && text.front() == '-') return make_error("must be positive");
  std::optional<uint64_t> number;
  const size_t digits = leading_number(text, &number);
  if (digits == 0) return make_error("{}", kExamples);
  const std::string_view suffix = text.substr(digits);
  if (!suffix.empty() && suffix.front() == '.') return make_error("fractions are not accepted (write 1536M, not 1.5G)");
  uint64_t unit = 1ull << 20;  // a plain number is MiB, as with QEMU's -m
  if (!suffix.empty()) {
    const char letter = static_cast<char>(suffix.front() & ~0x20);  // upper case
    auto it = std::find_if(kSizeUnits.begin(), kSizeUnits.end(), [&](const auto& u) { return u.first == letter; });
    if (suffix.size() != 1 || it == kSizeUnits.end()) return make_error("{}", kExamples);
    unit = it->second;
  }
  if (number == 0u) return make_error("must be more than 0");
  if (!number || *number > kMaxRamBytes / unit)
    return make_error("more than the {} maximum", mem_size_string(kMaxRamBytes));
  const uint64_t bytes = *number * unit;
  if (bytes % kRamGranule != 0) return make_error("not a multiple of 4K");
  return bytes;
}

std::string mem_size_string(uint64_t bytes) {
  for (const auto& [letter, unit] : kSizeUnits) {
    if (bytes != 0 && bytes % unit == 0) return fmt::format("{}{}", bytes / unit, letter);
  }
  return fmt::format("{}", bytes);
}

Result<uint64_t> parse_count(std::string_view text) {
  std::optional<uint64_t> number;
  const size_t digits = leading_number(text, &number);
  if (digits == 0 || digits != text.size()) return make_error("not a non-negative whole number");
  if (!number) return make_error("too large");
  return *number;
}

CommandLine parse_command_line(int argc, const char* const* argv, std::FILE* out, std::FILE* err) {
  CLI::App app{"vmm86: a binary-translation virtual machine monitor for 32-bit x86 guests", "vmm86"};
  app.set_version_flag("--version", version_string(), "print the version and exit");
  app.require_subcommand(0, 1);
  app.footer(run_footer());
  CLI::App* run = app.add_subcommand(
      "run", "start a new virtual machine: from its BIOS, or a Linux (bzImage) or Multiboot kernel directly");
  run->footer(run_footer());

  RawRun raw;
  // An empty value is a mistake for every option but --append (empty cmdline is legitimate).
  const CLI::Validator not_empty([](std::string& value) { return value.empty() ? std::string("empty value") : ""; }, "",
                                 "not empty");
  auto add = [&](RunOption id, std::string& target) {
    const RunOptionSpec& spec = run_option(id);
    // -m as well as --mem: QEMU's users type it.
    const std::string names = id == RunOption::Mem ? "-m," + std::string(spec.flag) : std::string(spec.flag);
    CLI::Option* option = run->add_option(names, target, help_of(spec));
    option->type_name(std::string(spec.value_name));
    if (id != RunOption::Append) option->check(not_empty);
    return option;
  };
  add(RunOption::Kernel, raw.kernel);
  add(RunOption::Bios, raw.bios);
  add(RunOption::Initrd, raw.initrd);
  add(RunOption::Append, raw.append);
  add(RunOption::Mem, raw.mem);
  add(RunOption::Engine, raw.engine);
  run->add_flag(std::string(run_option(RunOption::Stats).flag), raw.stats, help_of(run_option(RunOption::Stats)));
  run->add_flag(std::string(run_option(RunOption::Verify).flag), raw.verify, help_of(run_option(RunOption::Verify)));
  add(RunOption::VerifyPeriod, raw.verify_period);
  run->add_flag(std::string(run_option(RunOption::PerfMap).flag), raw.perf_map,
                help_of(run_option(RunOption::PerfMap)));
  CLI::Option* trace = add(RunOption::Trace, raw.trace);
  add(RunOption::TraceLimit, raw.trace_limit)->needs(trace);
  add(RunOption::Hda, raw.hd[0]);
  add(RunOption::Hdb, raw.hd[1]);
  add(RunOption::Hdc, raw.hd[2]);
  add(RunOption::Hdd, raw.hd[3]);
  add(RunOption::Cdrom, raw.cdrom);
  add(RunOption::Fda, raw.fd[0]);
  add(RunOption::Fdb, raw.fd[1]);
  add(RunOption::Boot, raw.boot);
  run->add_flag(std::string(run_option(RunOption::Snapshot).flag), raw.snapshot,
                help_of(run_option(RunOption::Snapshot)));
  run->add_flag(std::string(run_option(RunOption::NoReboot).flag), raw.no_reboot,
                help_of(run_option(RunOption::NoReboot)));
  run->add_flag(std::string(run_option(RunOption::NoAcpi).flag), raw.no_acpi, help_of(run_option(RunOption::NoAcpi)));
  run->add_flag(std::string(run_option(RunOption::NoApic).flag), raw.no_apic, help_of(run_option(RunOption::NoApic)));
  add(RunOption::Vga, raw.vga);
  add(RunOption::Display, raw.display);
  add(RunOption::Screenshot, raw.screenshot);
  add(RunOption::ScreenText, raw.screen_text);
  add(RunOption::Smp, raw.smp);
  const RunOptionSpec& drive = run_option(RunOption::Drive);
  run->add_option(std::string(drive.flag), raw.drives, help_of(drive))
      ->type_name(std::string(drive.value_name))
      ->check(not_empty);
  const RunOptionSpec& debugcon = run_option(RunOption::Debugcon);
  run->add_option(std::string(debugcon.flag), raw.debugcons, help_of(debugcon))
      ->type_name(std::string(debugcon.value_name))
      ->check(not_empty);

  for (const auto& [id, target] : {std::pair{RunOption::Netdev, &raw.netdevs},
                                   std::pair{RunOption::Device, &raw.devices}, std::pair{RunOption::Nic, &raw.nics}}) {
    const RunOptionSpec& spec = run_option(id);
    run->add_option(std::string(spec.flag), *target, help_of(spec))
        ->type_name(std::string(spec.value_name))
        ->check(not_empty);
  }

  const RunOptionSpec& debug_exit = run_option(RunOption::DebugExit);
  CLI::Option* debug_exit_option = run->add_option(std::string(debug_exit.flag), raw.debug_exit_value,
                                                   help_of(debug_exit))
                                       ->type_name(std::string(debug_exit.value_name))
                                       ->expected(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    // The top-level help lists the options of `run` too: there is only one command.
    fmt::print(out, "{}", app.help("", CLI::AppFormatMode::All));
    return {};
  } catch (const CLI::CallForVersion&) {
    fmt::print(out, "{}\n", version_string());
    return {};
  } catch (const CLI::ParseError& e) {
    fmt::print(err, "vmm86: error: {}\n", e.what());
    return {std::nullopt, kExitUsage};
  }
  raw.debug_exit = !debug_exit_option->empty();  // with or without a value
  if (!run->parsed()) {
    fmt::print(err,
               "vmm86: error: no command given (usage: vmm86 run [--kernel FILE | --bios FILE] [options]; see vmm86 "
               "--help)\n");
    return {std::nullopt, kExitUsage};
  }
  auto config = check_run(raw);
  if (!config) {
    fmt::print(err, "vmm86: error: {}\n", config.error());
    return {std::nullopt, kExitUsage};
  }
  return {std::move(config).value(), kExitOk};
}

}  // namespace vmm86
