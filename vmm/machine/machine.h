// The machine: guest memory, the PC platform, the console and the vCPUs (vmm/machine/vcpu.h,
// each with its engines and shadow MMU), run until the guest resets, powers off,
// triple-faults or the user quits (STYLE.md #8). With --smp N, one host thread per vCPU;
// the devices are shared behind one lock (docs/design-notes.md, "SMP").
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "devices/firmware/fw_cfg.h"
#include "devices/fixed_acpi_pm.h"
#include "devices/legacy/isa_debug_exit.h"
#include "devices/pc_chipset.h"
#include "devices/pc_platform.h"
#include "devices/storage/floppy_controller.h"
#include "devices/storage/ide_controller.h"
#include "shadow-mmu/shadow_mmu.h"
#include "vmm/display/screen_outputs.h"
#include "vmm/engine/bt_engine.h"
#include "vmm/interp/interpreter.h"
#include "vmm/machine/bios_shadow.h"
#include "vmm/machine/config.h"
#include "vmm/machine/guest_dma.h"
#include "vmm/machine/network.h"
#include "vmm/machine/perf_map.h"
#include "vmm/machine/stats.h"
#include "vmm/machine/terminal.h"
#include "vmm/machine/trace.h"
#include "vmm/machine/vcpu.h"
#include "vmm/machine/vga_setup.h"

namespace vmm86 {

/// Why the vCPU loop ended.
enum class MachineExit : uint8_t {
  Reset,         ///< the guest asked for a reset (reboot): a normal end
  PowerOff,      ///< halted with interrupts disabled and nothing that can wake it
  AcpiPowerOff,  ///< the guest entered S5 through the PIIX4 PM control register
  UserQuit,      ///< Ctrl-A x
  Signal,        ///< SIGINT, SIGTERM or SIGHUP from outside (Machine::stop_signal says which)
  DebugExit,     ///< the guest wrote to --debug-exit (Machine::debug_exit_value says what)
  TripleFault,   ///< shutdown after a triple fault
  Unsupported,   ///< the guest needs something vmm86 does not implement
  HostError,     ///< the host refused something (memory, timers)
};

class Machine final {
 public:
  /// `memory` holds the loaded guest (a kernel or a BIOS), `cpu` the vCPU ready to start.
  Machine(const MachineConfig& config, GuestMemory&& memory, const CpuState& cpu);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  /// Sets up the engines, the console and the host timer.
  [[nodiscard]] Status init();
  /// Runs the guest to its end.
  [[nodiscard]] MachineExit run();
  /// Makes the disks' writes durable at the end of a run (the machine is not destroyed:
  /// a qcow2 image's cached metadata would be lost). False if a disk failed.
  [[nodiscard]] bool flush_storage() {
    const bool floppies = fdc_ == nullptr || fdc_->flush_disks();
    return (ide_ == nullptr || ide_->flush_disks()) && floppies;
  }
  /// Every statistic of the run so far (vmm/machine/stats.h), in --stats order.
  [[nodiscard]] std::vector<Stat> collect_stats() const;
  /// Prints what --stats shows.
  void print_stats(std::FILE* out) const;
  /// One-line reason and the guest state, for error exits.
  void print_guest_state(std::FILE* out) const;
  [[nodiscard]] const std::string& detail() const { return detail_; }
  /// The signal that ended the run (MachineExit::Signal), else 0.
  [[nodiscard]] int stop_signal() const;
  /// The value the guest wrote to --debug-exit (MachineExit::DebugExit), else 0.
  [[nodiscard]] uint32_t debug_exit_value() const;
  /// Guest instructions retired so far, in translated code and in the interpreter, all vCPUs.
  [[nodiscard]] uint64_t retired() const;
  [[nodiscard]] unsigned vcpu_count() const { return static_cast<unsigned>(vcpus_.size()); }

  /// Interrupt delivery guarantees guest progress: after an external interrupt is taken,
  /// the next one waits until this many instructions retired (or the vCPU halts). Without
  /// it, a timer faster than the guest can run (the PIT at divisor 2 is 600 kHz, and
  /// each delivery from translated code costs several microseconds of exits) would be
  /// delivered again right at each iret and the interrupted code would never run again.
  /// Handlers of real kernels are longer than this, so for them nothing changes.
  static constexpr uint64_t kInstructionsBetweenInterrupts = 256;
  /// The shortest slice the host timer gives the guest: a device deadline closer than
  /// this (or already passed) is served this late at most, so time spent leaving and
  /// re-entering translated code can never take all of the host's time.
  static constexpr uint64_t kMinSliceNs = 50'000;

  /// The end of a run: --screenshot and --screen-text. False (with a message) on failure.
  [[nodiscard]] Status finish_screen() { return screen_ ? screen_->finish() : ok_status(); }

  /// The chipset changed a PAM segment (i440FX config space): what [base, base + size)
  /// reads and where writes go. No-op without a BIOS.
  void shadow_ram_changed(uint32_t base, uint32_t size, bool read_ram, bool write_ram);

  /// Brings every vCPU back to its loop (async-signal-safe: the stop signals' handler).
  void kick_all();

  /// Held around every device access when there are several vCPUs (QEMU's BQL); a no-op
  /// with one. Translated code never holds it.
  class DeviceLock {
   public:
    void lock() {
      if (shared_) mutex_.lock();
    }
    void unlock() {
      if (shared_) mutex_.unlock();
    }
    void set_shared(bool shared) { shared_ = shared; }

   private:
    std::mutex mutex_;
    bool shared_ = false;
  };

 private:
  friend class Vcpu;
  /// Console input into the UART (the BSP's loop, device lock held).
  void pump_console_input();
  /// Why the machine must stop now (a guest request, a signal, Ctrl-A x), if it must.
  [[nodiscard]] std::optional<MachineExit> pending_exit();
  /// Ends every vCPU's loop with `exit` (the first reason wins, with its `detail` for detail()).
  void stop_all(MachineExit exit, std::string detail = {});
  /// Posts a physical-map change to every vCPU (the calling one does it now).
  void physical_map_changed_everywhere(GuestPhys start, uint64_t size);
  /// Runs `now` on the calling vCPU and `later` (a post to its mailbox) on every other one.
  template <typename Now, typename Later>
  void on_every_vcpu(Now&& now, Later&& later);
  /// The vCPU whose thread calls (device callbacks run on some vCPU's thread), else the BSP.
  [[nodiscard]] Vcpu& calling_vcpu();
  [[nodiscard]] Status install_signal_handlers();
  /// --debugcon: a port whose bytes go to a file.
  [[nodiscard]] Status attach_debugcon(const DebugconConfig& debugcon);
  /// --debug-exit: QEMU's isa-debug-exit.
  [[nodiscard]] Status attach_debug_exit(const DebugExitConfig& config);
  /// The local APIC's and the IOAPIC's pages in the physical map; the APIC's NMIs.
  void attach_apics();
  /// IA32_APIC_BASE moved or (dis)abled the local APIC's page: the physical map follows,
  /// and nothing mapped or translated through the old map survives.
  void local_apic_moved();
  /// What a BIOS boot adds to the legacy PC: the PCI chipset and fw_cfg (with the ACPI
  /// tables unless --no-acpi).
  [[nodiscard]] Status attach_firmware_devices();
  /// A direct kernel boot's ACPI PM hardware at fixed ports (devices/fixed_acpi_pm.h).
  void attach_fixed_acpi_pm();
  /// --vga std and where its picture goes (--display, --screenshot, --screen-text).
  [[nodiscard]] Status attach_vga();
  /// The IDE controller and the drives of --hda.. / --cdrom / --drive.
  [[nodiscard]] Status attach_storage();
  /// The floppy controller (always, as on QEMU's PC) and the drives of --fda / --fdb /
  /// --drive if=floppy, with their CMOS bytes.
  [[nodiscard]] Status attach_floppies();
  /// A drive's image as --drive and --snapshot ask for it.
  [[nodiscard]] Result<std::unique_ptr<BlockBackend>> open_drive_image(const DriveConfig& drive) const;
  /// CMOS boot order bytes as QEMU stores them for --boot.
  void set_boot_order();
  /// The chipset changed the A20 line: physical addresses lose bit 20 while it is off, and
  /// no window mapping or TLB entry made with the other setting may be used again.
  void set_a20(bool on);
  /// A guest reset restarts the machine (through its BIOS) rather than ending the run.
  [[nodiscard]] bool reboots() const { return bios_shadow_ != nullptr && !config_.no_reboot; }
  /// The reset a PC does on 0xCF9, the i8042's pulse or ACPI's reset register: devices to
  /// their reset state, the BSP to its power-on state at the reset vector, APs waiting for
  /// a start-up IPI; RAM, CMOS RAM and the disks (with their --snapshot overlays) stay. On
  /// the BSP's thread.
  void reboot();

  MachineConfig config_;
  GuestMemory mem_;
  CpuState boot_cpu_;
  VirtualClock clock_;
  std::unique_ptr<PcPlatform> pc_;
  DeviceLock device_lock_;
  std::unique_ptr<CodePageSet> code_pages_;  ///< with several vCPUs
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::unique_ptr<Terminal> terminal_;
  std::unique_ptr<BiosShadow> bios_shadow_;  ///< with a BIOS only
  std::unique_ptr<GuestDma> dma_;
  std::unique_ptr<FwCfg> fw_cfg_;            ///< with a BIOS only
  std::unique_ptr<PcChipset> chipset_;       ///< with a BIOS only
  std::unique_ptr<FixedAcpiPm> acpi_pm_;     ///< a direct kernel boot with ACPI only
  std::unique_ptr<IdeController> ide_;       ///< with a BIOS only
  std::unique_ptr<FloppyController> fdc_;    ///< with a BIOS only
  std::unique_ptr<StdVga> vga_;              ///< --vga std only
  std::unique_ptr<ScreenOutputs> screen_;    ///< --vga std only
  std::unique_ptr<MachineNetwork> network_;  ///< with a BIOS only
  std::atomic<bool> acpi_power_off_{false};
  PhysRegion lapic_region_;  ///< the local APIC's page as the physical map has it
  std::vector<std::unique_ptr<DebugConsolePort>> debugcon_ports_;
  std::vector<std::unique_ptr<std::FILE, int (*)(std::FILE*)>> debugcon_files_;
  std::unique_ptr<IsaDebugExit> debug_exit_;
  std::atomic<bool> reset_requested_{false};
  std::atomic<bool> triple_fault_{false};
  std::atomic<bool> stopping_{false};
  MachineExit stop_exit_{};  ///< valid once stopping_
  std::mutex stop_lock_;
  uint64_t reboots_ = 0;
  uint64_t start_ns_ = 0;
  std::string detail_;
  Tracer tracer_;
  PerfMap perf_map_;
};

}  // namespace vmm86
