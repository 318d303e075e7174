#include "vmm/machine/machine.h"

#include <poll.h>
#include <signal.h>
#include <time.h>
#include <x86intrin.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <variant>
#include <vector>

#include "common/check.h"
#include "devices/firmware/acpi_tables.h"
#include "devices/firmware/fw_cfg_pc.h"
#include "devices/storage/ata_disk.h"
#include "devices/storage/atapi_cdrom.h"
#include "devices/storage/open_image.h"
#include "devices/storage/snapshot_overlay.h"
#include "vmm/machine/cpuid.h"
#include "vmm/machine/firmware_tables.h"

namespace vmm86 {

namespace {

// Signal handlers find the machine through these: one machine per process.
Machine* g_machine = nullptr;
const CpuState* g_fatal_cpu = nullptr;  ///< for the fatal-signal report
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "used from signal handlers");
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

/// The host timer and the kicks of other vCPUs (both SIGALRM, to this thread).
void on_host_timer(int, siginfo_t*, void* ucontext) {
  const int saved_errno = errno;
  interrupt_this_thread_engine(ucontext);
  errno = saved_errno;
}

/// SIGINT, SIGTERM, SIGHUP: the vCPU loop ends the run cleanly (terminal, statistics,
/// message) and the process then dies of the signal. A second one does not wait.
void on_stop_signal(int sig, siginfo_t*, void* ucontext) {
  const int saved_errno = errno;
  int none = 0;
  if (!g_stop_signal.compare_exchange_strong(none, sig)) {
    Terminal::restore_now();
    signal(sig, SIG_DFL);
    raise(sig);
  } else {
    interrupt_this_thread_engine(ucontext);
    if (g_machine) g_machine->kick_all();
  }
  errno = saved_errno;
}

/// The guest registers as last saved (translated code keeps them in host registers), for
/// the fatal-signal report. snprintf and write only.
void fatal_report(int fd) {
  const CpuState* c = g_fatal_cpu;
  if (!c) return;
  char buf[512];
  const int n = std::snprintf(buf, sizeof buf,
                              "guest state (last saved): eip=%08x cs=%04x eflags=%08x eax=%08x ecx=%08x edx=%08x "
                              "ebx=%08x esp=%08x ebp=%08x esi=%08x edi=%08x cr0=%08x cr3=%08x\r\n",
                              c->eip, c->sreg(SegReg::Cs).selector, c->eflags, c->gpr[0], c->gpr[1], c->gpr[2],
                              c->gpr[3], c->gpr[4], c->gpr[5], c->gpr[6], c->gpr[7], c->cr0, c->cr3);
  if (n > 0) (void)!::write(fd, buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
}

}  // namespace

Machine::Machine(const MachineConfig& config, GuestMemory&& memory, const CpuState& cpu)
    : config_(config), mem_(std::move(memory)), boot_cpu_(cpu), clock_(VirtualClock::host()) {
  if (!config_.bios_path.empty()) bios_shadow_ = std::make_unique<BiosShadow>(mem_);
}

Machine::~Machine() {
  if (g_machine == this) g_machine = nullptr;
  if (!vcpus_.empty() && g_fatal_cpu == &vcpus_[0]->cpu()) g_fatal_cpu = nullptr;
}

Status Machine::init() {
  const unsigned cpus = std::max(config_.smp, 1u);
  if (cpus > 1 && !config_.apic) return make_error("--smp {} needs the APIC (drop --no-apic)", cpus);
  // A device wrote guest RAM behind the engines' backs: as any write outside translated code.
  dma_ = std::make_unique<GuestDma>(mem_, [this](GuestPhys addr, uint64_t size) {
    calling_vcpu().watched_write(addr, static_cast<unsigned>(std::min<uint64_t>(size, UINT32_MAX)));
  });
  PcPlatformConfig pc_config;
  pc_config.ram_below_4g = mem_.ram_size();
  pc_config.dma_memory = dma_.get();  // the 8237A's channels
  pc_config.apic = config_.apic;
  pc_config.cpu_count = cpus;
  // The APIC timer counts the crystal CPUID 0x15 reports (measured here, before the guest asks).
  if (const uint64_t crystal = crystal_hz(host_tsc_hz())) pc_config.apic_timer_hz = crystal;
  pc_ = std::make_unique<PcPlatform>(clock_, std::move(pc_config));
  pc_->set_reset_request([this] { reset_requested_ = true; });
  pc_->set_a20_listener([this](bool on) { set_a20(on); });
  for (const DebugconConfig& debugcon : config_.debugcons) VMM86_TRY(attach_debugcon(debugcon));
  if (config_.debug_exit) VMM86_TRY(attach_debug_exit(*config_.debug_exit));
  if (bios_shadow_) {
    VMM86_TRY(attach_firmware_devices());
  } else if (config_.acpi) {
    attach_fixed_acpi_pm();
  }
  if (config_.vga == VgaKind::Std) VMM86_TRY(attach_vga());
  if (!config_.trace_path.empty()) VMM86_TRY(tracer_.open(config_.trace_path, config_.trace_limit));
  if (config_.perf_map && config_.engine == Engine::Bt) VMM86_TRY(perf_map_.open());
  if (cpus > 1) {
    code_pages_ = std::make_unique<CodePageSet>(mem_.ram_size() >> kPageShift);
    code_pages_->set_foreign_write_listener([this](unsigned holder, PhysPage page) {
      if (holder < vcpus_.size()) vcpus_[holder]->post_code_write(page);
    });
    device_lock_.set_shared(true);
  }
  for (unsigned i = 0; i < cpus; ++i) vcpus_.push_back(std::make_unique<Vcpu>(*this, i, boot_cpu_));
  for (auto& vcpu : vcpus_) VMM86_TRY(vcpu->init(code_pages_.get()));
  if (config_.apic) attach_apics();

  auto term = Terminal::open();
  if (!term) return std::move(term).take_error();
  terminal_ = std::move(term.value());
  Terminal* out = terminal_.get();
  pc_->set_serial_output([out](uint8_t byte) { out->write_output({&byte, 1}); });

  // A monitor crash (either engine) restores the terminal before the process dies.
  g_fatal_cpu = &vcpus_[0]->cpu();
  set_fatal_cleanup(Terminal::restore_now);
  set_fatal_report(fatal_report);
  VMM86_TRY(install_signal_handlers());
  VMM86_TRY(vcpus_[0]->init_thread());  // the BSP runs on this thread
  g_machine = this;
  start_ns_ = clock_.now_ns();
  return ok_status();
}

void Machine::attach_apics() {
  mem_.add_region({GuestPhys{IoApic::kDefaultBase}, IoApic::kMmioSize, PhysKind::Mmio, "ioapic"});
  // The BSP's APIC page is the one the physical map shows; APs' APICs are assumed at the
  // same base (no guest of ours moves one).
  pc_->local_apic(0)->set_base_listener([this] { local_apic_moved(); });
  local_apic_moved();
  for (auto& vcpu_ptr : vcpus_) {
    Vcpu* vcpu = vcpu_ptr.get();
    LocalApic& lapic = *pc_->local_apic(vcpu->index());
    ApicCpuSignals signals;
    // On its own thread an NMI is taken at the next boundary, as on one CPU; from another
    // vCPU's it goes through the mailbox.
    signals.nmi = [vcpu] {
      if (Vcpu::current() == vcpu || Vcpu::current() == nullptr) {
        vcpu->raise_nmi();
      } else {
        vcpu->post_nmi();
      }
    };
    signals.init = [vcpu] { vcpu->post_init(); };
    signals.startup = [vcpu](uint8_t vector) { vcpu->post_startup(vector); };
    lapic.set_cpu_signals(std::move(signals));
    if (vcpus_.size() > 1) lapic.set_wake_listener([vcpu] { vcpu->kick(); });
  }
}

void Machine::local_apic_moved() {
  const LocalApic& lapic = *pc_->local_apic();
  // The page the CPU takes for its APIC, none while the APIC is globally disabled (its
  // accesses then reach whatever is behind it, as on a CPU without one).
  const GuestPhys old_base = lapic_region_.start;
  const uint64_t old_size = lapic_region_.size;
  lapic_region_ = {GuestPhys{lapic.base_address()}, lapic.globally_enabled() ? LocalApic::kPageSize : 0, PhysKind::Mmio,
                   "lapic"};
  mem_.set_region(lapic_region_);
  if (vcpus_.empty()) return;  // before the engines exist: nothing mapped yet
  if (old_size != 0) physical_map_changed_everywhere(old_base, old_size);
  physical_map_changed_everywhere(lapic_region_.start, LocalApic::kPageSize);
}

Status Machine::attach_debugcon(const DebugconConfig& debugcon) {
  std::FILE* file = std::fopen(debugcon.path.c_str(), "w");
  if (!file) return make_error("--debugcon {}: {}", debugcon.path, std::strerror(errno));
  setvbuf(file, nullptr, _IOLBF, 0);  // firmware logs lines; a crash should not lose them
  debugcon_files_.emplace_back(file, std::fclose);
  auto sink = [file](uint8_t byte) { std::fputc(byte, file); };
  if (debugcon.port == DebugConsolePort::kStandardPort) {
    pc_->set_debug_console_output(sink);
    return ok_status();
  }
  auto port = std::make_unique<DebugConsolePort>();
  port->set_output(sink);
  BusRangeId id = 0;
  if (pc_->io_bus().add(debugcon.port, 1, *port, "debugcon", 1, &id) != BusStatus::Ok) {
    return make_error("--debugcon {:#x}:{}: the port is taken by another device", debugcon.port, debugcon.path);
  }
  debugcon_ports_.push_back(std::move(port));
  return ok_status();
}

Status Machine::attach_debug_exit(const DebugExitConfig& config) {
  debug_exit_ = std::make_unique<IsaDebugExit>();
  debug_exit_->set_exit_request(
      [](uint32_t) { interrupt_this_thread_engine(nullptr); });  // QEMU exits inside the write
  if (pc_->io_bus().add(config.iobase, config.iosize, *debug_exit_, "isa-debug-exit", IsaDebugExit::kWidth) !=
      BusStatus::Ok) {
    return make_error("--debug-exit: ports {:#x}+{:#x} are taken by another device", config.iobase, config.iosize);
  }
  return ok_status();
}

Status Machine::attach_firmware_devices() {
  chipset_ = std::make_unique<PcChipset>(*pc_, clock_, LogFn{}, config_.acpi);
  chipset_->set_pam_listener([this](uint32_t base, uint32_t size, PamMode mode) {
    shadow_ram_changed(base, size, mode == PamMode::ReadOnly || mode == PamMode::ReadWrite,
                       mode == PamMode::WriteOnly || mode == PamMode::ReadWrite);
  });
  chipset_->set_power_off([this] { acpi_power_off_ = true; });
  chipset_->set_reset_request([this] { reset_requested_ = true; });
  set_boot_order();
  VMM86_TRY(attach_storage());
  network_ = std::make_unique<MachineNetwork>();
  VMM86_TRY(network_->attach(config_, *chipset_));
  fw_cfg_ = std::make_unique<FwCfg>(dma_.get());
  FwCfgMachineInfo info;
  info.ram_bytes = mem_.ram_size();
  info.irq0_to_ioapic_pin2 = config_.apic;
  info.cpu_count = static_cast<uint16_t>(std::max(config_.smp, 1u));
  VMM86_TRY(fill_pc_fw_cfg(*fw_cfg_, info));
  if (config_.acpi) VMM86_TRY(add_acpi_tables(*fw_cfg_, build_acpi_tables(platform_tables_config(config_))));
  BusRangeId id = 0;
  VMM86_CHECK(pc_->io_bus().add(FwCfg::kIoBase, FwCfg::kIoPorts, *fw_cfg_, "fw_cfg", FwCfg::kIoWidth, &id) ==
              BusStatus::Ok);
  return ok_status();
}

Status Machine::attach_vga() {
  auto vga = attach_std_vga(*pc_, chipset_.get(), mem_, std::string(kStdVgaBiosPath));
  if (!vga) return std::move(vga).take_error();
  vga_ = std::move(*vga);
  ScreenOutputsConfig screen;
  if (config_.vnc) {
    screen.vnc_host = config_.vnc->host;
    screen.vnc_display = config_.vnc->display;
  }
  screen.screenshot_path = config_.screenshot_path;
  screen.screen_text_path = config_.screen_text_path;
  auto outputs = ScreenOutputs::create(vga_->vga, std::move(screen),
                                       [this](PcKey key, bool down) { pc_->i8042().key_event(key, down); });
  if (!outputs) return std::move(outputs).take_error();
  screen_ = std::move(*outputs);
  return ok_status();
}

void Machine::attach_fixed_acpi_pm() {
  acpi_pm_ = std::make_unique<FixedAcpiPm>(*pc_, clock_);
  acpi_pm_->set_power_off([this] { acpi_power_off_ = true; });
}

void Machine::set_boot_order() {
  // SeaBIOS on QEMU reads the order from CMOS: 0x3D holds the first and second device,
  // 0x38's high nibble the third (1 floppy, 2 hard disk, 3 CD-ROM); 0x38 bit 0 clear keeps
  // the floppy boot-signature check.
  std::array<uint8_t, 3> devices{};
  for (size_t i = 0; i < config_.boot_order.size() && i < devices.size(); ++i) {
    const char letter = config_.boot_order[i];
    devices[i] = letter == 'a' ? 1 : letter == 'c' ? 2 : 3;
  }
  pc_->rtc().set_cmos_byte(RtcCmos::kBootOrderFirstSecond, static_cast<uint8_t>(devices[1] << 4 | devices[0]));
  pc_->rtc().set_cmos_byte(RtcCmos::kBootOrderThird, static_cast<uint8_t>(devices[2] << 4));
}

Status Machine::attach_storage() {
  ide_ = std::make_unique<IdeController>(*dma_, IrqLine(&pc_->isa_irqs(), IdeController::kPrimaryIrq),
                                         IrqLine(&pc_->isa_irqs(), IdeController::kSecondaryIrq));
  VMM86_CHECK(ide_->register_legacy_ports(pc_->io_bus()) == BusStatus::Ok);
  chipset_->mapper().attach_io(chipset_->ide(), Piix3Ide::kBusMasterBar, ide_->bus_master(), "ide-bus-master",
                               IdeBusMaster::kWidth);
  for (const DriveConfig& drive : config_.drives) {
    if (drive.interface != DriveInterface::Ide) continue;
    auto backend = open_drive_image(drive);
    if (!backend) return std::move(backend).take_error();
    std::unique_ptr<IdeDrive> device;
    if (drive.media == DriveMedia::Cdrom) {
      device = std::make_unique<AtapiCdrom>(std::move(*backend));
    } else {
      device = std::make_unique<AtaDisk>(std::move(*backend));
    }
    ide_->attach(drive.index / 2, drive.index % 2, std::move(device));
  }
  return attach_floppies();
}

Status Machine::attach_floppies() {
  fdc_ = std::make_unique<FloppyController>(pc_->isa_dma(), IrqLine(&pc_->isa_irqs(), FloppyController::kIrq));
  VMM86_CHECK(fdc_->register_ports(pc_->io_bus()) == BusStatus::Ok);
  unsigned count = 0;
  for (const DriveConfig& drive : config_.drives) {
    if (drive.interface != DriveInterface::Floppy) continue;
    auto backend = open_drive_image(drive);
    if (!backend) return std::move(backend).take_error();
    auto floppy = FloppyDrive::for_image(std::move(*backend));
    if (!floppy) return std::move(floppy).take_error();
    fdc_->attach(drive.index, std::move(*floppy));
    ++count;
  }
  // What SeaBIOS (on QEMU's board) and Linux read: the drive types, and the equipment byte's
  // floppy bits (bit 0: drives present, bits 7-6: how many less one), as QEMU sets them.
  RtcCmos& cmos = pc_->rtc();
  cmos.set_cmos_byte(RtcCmos::kFloppyTypes, fdc_->cmos_drive_types());
  const auto floppy_bits = static_cast<uint8_t>(count == 0 ? 0 : 0x01 | (count - 1) << 6);
  cmos.set_cmos_byte(RtcCmos::kEquipment,
                     static_cast<uint8_t>((cmos.cmos_byte(RtcCmos::kEquipment) & ~0xC1) | floppy_bits));
  return ok_status();
}

Result<std::unique_ptr<BlockBackend>> Machine::open_drive_image(const DriveConfig& drive) const {
  const ImageFormat format = image_format_from_name(drive.format).value_or(ImageFormat::Probe);
  auto image = open_image(drive.path, format, drive.read_only);
  if (!image) return std::move(image).take_error();
  if (!image->note.empty()) std::fprintf(stderr, "vmm86: %s\n", image->note.c_str());
  std::unique_ptr<BlockBackend> backend = std::move(image->backend);
  if (config_.snapshot && !drive.read_only) {
    auto overlay = SnapshotOverlay::create(std::move(backend));
    if (!overlay) return std::move(overlay).take_error();
    backend = std::move(*overlay);
  }
  return backend;
}

Status Machine::install_signal_handlers() {
  // On the signal stack (install_fault_handler made it): translated code runs on the
  // return stack, which is small and has a guard page below it.
  struct sigaction sa {};
  sa.sa_sigaction = on_host_timer;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, nullptr) != 0) return make_error("sigaction: {}", std::strerror(errno));
  sa.sa_sigaction = on_stop_signal;
  for (const int sig : kStopSignals) {
    struct sigaction previous {};
    sigaction(sig, nullptr, &previous);
    if (previous.sa_handler == SIG_IGN) continue;  // nohup, a shell's background job: leave it be
    if (sigaction(sig, &sa, nullptr) != 0) return make_error("sigaction: {}", std::strerror(errno));
  }
  return ok_status();
}

int Machine::stop_signal() const { return g_stop_signal.load(); }

uint32_t Machine::debug_exit_value() const { return debug_exit_ ? debug_exit_->value().value_or(0) : 0; }

uint64_t Machine::retired() const {
  uint64_t n = 0;
  for (const auto& vcpu : vcpus_) n += vcpu->retired();
  return n;
}

void Machine::shadow_ram_changed(uint32_t base, uint32_t size, bool read_ram, bool write_ram) {
  if (!bios_shadow_ || !bios_shadow_->set(base, size, read_ram, write_ram)) return;
  physical_map_changed_everywhere(GuestPhys{base}, size);
}

Vcpu& Machine::calling_vcpu() {
  Vcpu* vcpu = Vcpu::current();
  return vcpu ? *vcpu : *vcpus_[0];
}

template <typename Now, typename Later>
void Machine::on_every_vcpu(Now&& now, Later&& later) {
  Vcpu& self = calling_vcpu();
  for (auto& vcpu : vcpus_) {
    if (vcpu.get() == &self) {
      now(*vcpu);
    } else {
      later(*vcpu);
    }
  }
}

void Machine::physical_map_changed_everywhere(GuestPhys start, uint64_t size) {
  on_every_vcpu([=](Vcpu& vcpu) { vcpu.physical_map_changed(start, size); },
                [=](Vcpu& vcpu) { vcpu.post_physical_map_change(start, size); });
}

void Machine::set_a20(bool on) {
  on_every_vcpu([on](Vcpu& vcpu) { vcpu.set_a20(on); }, [on](Vcpu& vcpu) { vcpu.post_a20(on); });
}

// ---- Running the vCPUs ---------------------------------------------------------------------

void Machine::pump_console_input() {
  // Read even when the UART is full: Ctrl-A x must work while the guest reads nothing.
  terminal_->pump();
  while (pc_->serial_input_space() > 0) {
    const std::optional<uint8_t> byte = terminal_->take_input();
    if (!byte) break;
    const uint8_t b = *byte;
    (void)pc_->push_serial_input({&b, 1});
  }
}

std::optional<MachineExit> Machine::pending_exit() {
  if (stopping_.load(std::memory_order_acquire)) return stop_exit_;
  if (g_stop_signal.load(std::memory_order_relaxed) != 0) return MachineExit::Signal;
  if (acpi_power_off_) return MachineExit::AcpiPowerOff;
  if (triple_fault_) return MachineExit::TripleFault;
  if (debug_exit_ && debug_exit_->value()) return MachineExit::DebugExit;
  return std::nullopt;
}

void Machine::stop_all(MachineExit exit, std::string detail) {
  {
    const std::lock_guard lock(stop_lock_);
    if (stopping_.load()) return;
    stop_exit_ = exit;
    if (!detail.empty()) detail_ = std::move(detail);
    stopping_.store(true, std::memory_order_release);
  }
  kick_all();
}

void Machine::kick_all() {
  for (auto& vcpu : vcpus_) vcpu->kick();
}

void Machine::reboot() {
  reset_requested_ = false;
  ++reboots_;
  vcpus_[0]->disarm_host_timer();
  {
    const std::lock_guard lock(device_lock_);
    pc_->reset();
    if (vga_) vga_->vga.reset();
    chipset_->bus().reset();  // PAM back to ROM: shadow_ram_changed() follows
    ide_->reset();
    fdc_->reset();
    fw_cfg_->reset();
  }
  for (size_t i = 1; i < vcpus_.size(); ++i) vcpus_[i]->post_reset();
  vcpus_[0]->reset_to_reset_vector();
}

MachineExit Machine::run() {
  if (vcpus_.size() == 1) {
    const MachineExit exit = vcpus_[0]->run();
    if (exit == MachineExit::Unsupported) detail_ = vcpus_[0]->detail();
    return exit;
  }
  // A vCPU's loop ended: the whole machine stops, with what the vCPU has to say about it.
  auto ended = [this](const Vcpu& vcpu, MachineExit exit) {
    stop_all(exit, exit == MachineExit::Unsupported ? vcpu.detail() : std::string());
  };
  std::vector<std::thread> aps;
  for (size_t i = 1; i < vcpus_.size(); ++i) {
    aps.emplace_back([this, i, ended] {
      Vcpu& vcpu = *vcpus_[i];
      if (const Status ready = vcpu.init_thread(); !ready.ok()) {
        stop_all(MachineExit::HostError, ready.error());
        return;
      }
      ended(vcpu, vcpu.run());
    });
  }
  ended(*vcpus_[0], vcpus_[0]->run());
  for (std::thread& ap : aps) ap.join();
  return stop_exit_;
}

// ---- Reports ------------------------------------------------------------------------------

void Machine::print_guest_state(std::FILE* out) const {
  const CpuState& c = vcpus_[0]->cpu();
  std::fprintf(out,
               "guest state: eip=%08x cs=%04x cpl=%u eflags=%08x\n"
               "  eax=%08x ecx=%08x edx=%08x ebx=%08x esp=%08x ebp=%08x esi=%08x edi=%08x\n"
               "  cr0=%08x cr2=%08x cr3=%08x cr4=%08x ss=%04x ds=%04x es=%04x fs=%04x gs=%04x\n"
               "  gdtr=%08x/%04x idtr=%08x/%04x tr=%04x\n",
               c.eip, c.sreg(SegReg::Cs).selector, c.cpl(), c.eflags, c.gpr[0], c.gpr[1], c.gpr[2], c.gpr[3], c.gpr[4],
               c.gpr[5], c.gpr[6], c.gpr[7], c.cr0, c.cr2, c.cr3, c.cr4, c.sreg(SegReg::Ss).selector,
               c.sreg(SegReg::Ds).selector, c.sreg(SegReg::Es).selector, c.sreg(SegReg::Fs).selector,
               c.sreg(SegReg::Gs).selector, c.gdtr.base, c.gdtr.limit, c.idtr.base, c.idtr.limit, c.tr.selector);
}

namespace {

std::variant<uint64_t, double, MnemonicCounts> stat_value(std::integral auto count) {
  return static_cast<uint64_t>(count);
}
std::variant<uint64_t, double, MnemonicCounts> stat_value(double real) { return real; }

/// The twelve mnemonics counted most, the largest first.
template <size_t N>
std::variant<uint64_t, double, MnemonicCounts> stat_value(const std::array<uint64_t, N>* counts) {
  std::vector<std::pair<uint64_t, int>> nonzero;
  for (size_t m = 0; m < N; ++m) {
    if (const uint64_t n = (*counts)[m]) nonzero.emplace_back(n, static_cast<int>(m));
  }
  std::sort(nonzero.rbegin(), nonzero.rend());
  MnemonicCounts top;
  for (size_t i = 0; i < nonzero.size() && i < 12; ++i) {
    top.top.emplace_back(ZydisMnemonicGetString(static_cast<ZydisMnemonic>(nonzero[i].second)), nonzero[i].first);
  }
  return top;
}

double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

}  // namespace

std::vector<Stat> Machine::collect_stats() const {
  // The sources VMM86_STATS reads (vmm/machine/stats.h): derived values in `m`, the
  // engines' own counters through pointers that are null when their engine is absent.
  struct Derived {
    double wall_seconds = 0, idle_seconds = 0;
    uint64_t instructions = 0, translated = 0, interpreted = 0, translated_deficit = 0;
    double translated_percent = 0, interpreted_percent = 0;
    uint64_t interrupts_delivered = 0, interrupts_held = 0, reboots = 0;
    uint64_t cache_used_kib = 0, cache_capacity_kib = 0, cache_flushes = 0, code_tlb_fills = 0;
    uint64_t indirect_lookups = 0, indirect_hits = 0, return_misses = 0;
    double indirect_hit_percent = 0;
    double mmu_fill_seconds = 0;
    uint64_t mmu_host_map_calls = 0, mmu_host_mappings = 0;
  } m;
  m.wall_seconds = static_cast<double>(clock_.now_ns() - start_ns_) / 1e9;
  // Engine counters are the BSP's (with --smp, per-vCPU lines follow); instructions,
  // interrupts and idle time are summed over the vCPUs.
  const Vcpu& bsp = *vcpus_[0];
  const BtEngine* bt = bsp.bt();
  const ShadowMmu* mmu = &bsp.mmu();
  const ExecContext* ctx = &bsp.exec_context();
  uint64_t idle_ns = 0;
  for (const auto& vcpu : vcpus_) {
    idle_ns += vcpu->idle_ns();
    m.interrupts_delivered += vcpu->interrupts_delivered();
    m.interrupts_held += vcpu->interrupts_held();
  }
  m.idle_seconds = static_cast<double>(idle_ns) / 1e9;
  // ExecContext::retired goes down as well as up: a block's prologue counts instructions
  // ahead and callouts and faults take back what did not retire. Below zero it would be
  // an accounting bug, which must show as such rather than as a count near 2^64.
  int64_t signed_translated = 0;
  for (const auto& vcpu : vcpus_) {
    signed_translated += static_cast<int64_t>(vcpu->exec_context().retired);
    m.interpreted += vcpu->interpreter().retired();
  }
  m.translated = signed_translated < 0 ? 0 : static_cast<uint64_t>(signed_translated);
  m.translated_deficit = signed_translated < 0 ? static_cast<uint64_t>(-signed_translated) : 0;
  m.instructions = m.translated + m.interpreted;
  m.translated_percent = percent(m.translated, m.instructions);
  m.interpreted_percent = percent(m.interpreted, m.instructions);
  m.reboots = reboots_;
  const auto* t = bt ? &bt->translator().stats() : nullptr;
  const auto* e = bt ? &bt->stats() : nullptr;
  const auto* f = bt ? &bt->fault_stats() : nullptr;
  const auto* v = bt && bt->verifier() ? &bt->verifier()->stats() : nullptr;
  const auto* s = bt ? &mmu->stats() : nullptr;
  if (bt) {
    const CodeCache& cache = bt->translator().cache();
    m.cache_used_kib = cache.used_bytes() >> 10;
    m.cache_capacity_kib = cache.capacity() >> 10;
    m.cache_flushes = cache.flush_count();
    m.code_tlb_fills = bt->translator().code_tlb().fills();
    m.indirect_lookups = ctx->indirect_lookups;
    m.indirect_hits = m.indirect_lookups - std::min(m.indirect_lookups, e->exits_indirect);
    m.indirect_hit_percent = percent(m.indirect_hits, m.indirect_lookups);
    m.return_misses = ctx->return_misses;
    m.mmu_fill_seconds = static_cast<double>(s->fill_ns) / 1e9;
    m.mmu_host_map_calls = mmu->host_map_calls();
    m.mmu_host_mappings = mmu->host_mappings();
  }
  auto shown = [&](StatLine line) {
    switch (kStatLines[static_cast<size_t>(line)].when) {
      case StatWhen::Always: return true;
      case StatWhen::Bt: return bt != nullptr;
      case StatWhen::Verifier: return v != nullptr;
      case StatWhen::TranslatedBelowZero: return m.translated_deficit != 0;
    }
    return false;
  };
  std::vector<Stat> stats;
#define VMM86_X(line, key, text, value) \
  if (shown(StatLine::line)) stats.push_back({StatLine::line, key, text, stat_value(value)});
  VMM86_STATS(VMM86_X)
#undef VMM86_X
  pc_->stats().for_each([&](const auto& name, uint64_t value) {
    const std::string key(name);
    stats.push_back({StatLine::Devices, "devices." + key, " " + key + "={}", value, true});
  });
  if (network_) network_->append_stats(&stats);
  return stats;
}

void Machine::print_stats(std::FILE* out) const { print_stats_text(out, config_.engine, collect_stats()); }

}  // namespace vmm86
