// The machine: one vCPU with its engines (interpreter, BT engine), guest memory, the
// shadow MMU, the PC platform and the console, and the vCPU loop that runs them until
// the guest resets, powers off, triple-faults or the user quits (STYLE.md #8).
#pragma once

#include <cstdio>
#include <memory>
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

class Machine final : public CpuHooks {
 public:
  /// `memory` holds the loaded guest (a kernel or a BIOS), `cpu` the vCPU ready to start.
  Machine(const MachineConfig& config, GuestMemory&& memory, const CpuState& cpu);
  ~Machine() override;
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
  /// Guest instructions retired so far, in translated code and in the interpreter.
  [[nodiscard]] uint64_t retired() const;

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

  // CpuHooks.
  uint32_t port_in(uint16_t port, unsigned size) override;
  void port_out(uint16_t port, unsigned size, uint32_t value) override;
  uint32_t mmio_read(GuestPhys addr, unsigned size) override;
  void mmio_write(GuestPhys addr, unsigned size, uint32_t value) override;
  CpuidResult cpuid(uint32_t leaf, uint32_t subleaf) override;
  uint64_t tsc_clock() override;
  bool rdmsr(uint32_t index, uint64_t* value) override;
  bool wrmsr(uint32_t index, uint64_t value) override;
  bool interrupt_pending() override;
  uint8_t acknowledge_interrupt() override;
  bool is_watched_page(GuestPhys page) override;
  void watched_write(GuestPhys addr, unsigned size) override;
  void paging_written() override;
  void page_invalidated(GuestLinear linear) override;
  void event_delivering(const GuestEvent& event) override;
  void shutdown(ShutdownReason reason) override;

  /// The end of a run: --screenshot and --screen-text. False (with a message) on failure.
  [[nodiscard]] Status finish_screen() { return screen_ ? screen_->finish() : ok_status(); }

  /// The chipset changed a PAM segment (i440FX config space): what [base, base + size)
  /// reads and where writes go. No-op without a BIOS.
  void shadow_ram_changed(uint32_t base, uint32_t size, bool read_ram, bool write_ram);
  /// The NMI input (an APIC's NMI delivery, LINT1): latched, taken at the next boundary
  /// unless an NMI handler still runs (blocked until its IRET) or MOV SS shadows it.
  void raise_nmi();

 private:
  /// Timers, console input; returns false when the machine must stop.
  bool service_host();
  /// The interpreter engine, one traced instruction at a time (--trace).
  [[nodiscard]] StepStatus step_traced();
  void pump_console_input();
  /// Sleeps until the next timer deadline or console input (guest in hlt with IF=1).
  void idle_wait();
  void arm_host_timer();
  void disarm_host_timer();
  [[nodiscard]] bool interrupt_deliverable();
  static bool interrupt_deliverable_thunk(void* self);
  /// False while an interrupt must wait for kInstructionsBetweenInterrupts.
  [[nodiscard]] bool interrupt_gate_open() const;
  /// The controller asserts INTR and the gate is open.
  [[nodiscard]] bool intr_deliverable_now() const;
  /// Makes the host timer fire within kMinSliceNs (an interrupt waits at the gate).
  void arm_host_timer_soon();
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
  /// their reset state, the vCPU to its power-on state at the reset vector; RAM, CMOS RAM
  /// and the disks (with their --snapshot overlays) stay.
  void reboot();

  MachineConfig config_;
  GuestMemory mem_;
  ExecContextPtr ctx_;
  VirtualClock clock_;
  std::unique_ptr<PcPlatform> pc_;
  std::unique_ptr<ShadowMmu> mmu_;
  std::unique_ptr<Interpreter> interp_;
  std::unique_ptr<BtEngine> bt_;
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
  bool acpi_power_off_ = false;
  PhysRegion lapic_region_;  ///< the local APIC's page as the physical map has it
  std::vector<std::unique_ptr<DebugConsolePort>> debugcon_ports_;
  std::vector<std::unique_ptr<std::FILE, int (*)(std::FILE*)>> debugcon_files_;
  std::unique_ptr<IsaDebugExit> debug_exit_;
  bool reset_requested_ = false;
  bool triple_fault_ = false;
  bool host_timer_ready_ = false;
  void* host_timer_ = nullptr;         ///< timer_t
  uint64_t retired_at_interrupt_ = 0;  ///< retired() at the last external interrupt taken
  uint64_t interrupts_held_ = 0;       ///< times a deliverable interrupt waited at the gate
  uint64_t idle_ns_ = 0;
  uint64_t interrupts_delivered_ = 0;
  uint64_t reboots_ = 0;
  uint64_t start_ns_ = 0;
  std::string detail_;
  Tracer tracer_;
  PerfMap perf_map_;
};

}  // namespace vmm86
