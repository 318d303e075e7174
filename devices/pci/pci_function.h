// One PCI function's 256-byte configuration space (PCI Local Bus Specification 3.0,
// chapter 6), the part every function shares: the type 0 header, per-byte write masks,
// write-1-to-clear status bits, and the address ranges the function decodes.
//
// Ranges ("regions") are what the owner maps on the IoBus/MmioBus. Regions 0-5 are the
// standard BARs; a subclass may add chipset-specific base registers (PIIX4's PMBA) as
// further regions. After every config write the decoded base of each region is recomputed
// (BAR value gated by the command register's I/O or memory enable), and listeners hear of
// each region whose decode changed, so they can move the range. A base of 0 counts as not
// decoded: it is the unassigned value firmware leaves, and no PCI device sits at 0.
//
// Device-specific registers (0x40-0xFF) are plain storage unless a subclass defines them:
// firmware writes chipset registers we do not model and reads them back (QEMU does the
// same). Runs on the vCPU thread; no locking.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace vmm86 {

enum class PciSpace : uint8_t { Io, Memory };

/// Read-only identity registers of a function (PCI 3.0 §6.2.1).
struct PciIdentity {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision = 0;
  uint32_t class_code = 0;  ///< base class, sub-class, programming interface (24 bits)
  uint8_t header_type = 0;  ///< bit 7: multi-function device (function 0 only)
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
  uint8_t interrupt_pin = 0;  ///< 0 none, 1-4 INTA#-INTD#
};

/// A range the function decodes.
struct PciRegion {
  PciSpace space = PciSpace::Io;
  uint32_t size = 0;
  std::optional<uint32_t> base;  ///< nullopt: not decoded
};

namespace pci_reg {
constexpr uint8_t kVendorId = 0x00;
constexpr uint8_t kDeviceId = 0x02;
constexpr uint8_t kCommand = 0x04;
constexpr uint8_t kStatus = 0x06;
constexpr uint8_t kRevision = 0x08;
constexpr uint8_t kClassCode = 0x09;
constexpr uint8_t kCacheLineSize = 0x0C;
constexpr uint8_t kLatencyTimer = 0x0D;
constexpr uint8_t kHeaderType = 0x0E;
constexpr uint8_t kBar0 = 0x10;
constexpr uint8_t kSubsystemVendorId = 0x2C;
constexpr uint8_t kSubsystemId = 0x2E;
constexpr uint8_t kInterruptLine = 0x3C;
constexpr uint8_t kInterruptPin = 0x3D;
constexpr uint8_t kDeviceSpecific = 0x40;
}  // namespace pci_reg

namespace pci_command {
constexpr uint16_t kIoSpace = 1u << 0;
constexpr uint16_t kMemorySpace = 1u << 1;
constexpr uint16_t kBusMaster = 1u << 2;
constexpr uint16_t kIntxDisable = 1u << 10;
}  // namespace pci_command

namespace pci_status {
constexpr uint16_t kInterrupt = 1u << 3;
/// Error bits 8 and 11-15 are write-1-to-clear (PCI 3.0 §6.2.3).
constexpr uint16_t kWriteOneToClear = 0xF900;
}  // namespace pci_status

class PciFunction {
 public:
  static constexpr unsigned kConfigSize = 256;
  static constexpr unsigned kBarCount = 6;
  /// `region` changed its decode; `previous` is the base it had (nullopt: none).
  using RegionListener = std::function<void(unsigned region, const PciRegion& now, std::optional<uint32_t> previous)>;

  virtual ~PciFunction() = default;
  PciFunction(const PciFunction&) = delete;
  PciFunction& operator=(const PciFunction&) = delete;

  /// A guest access through the configuration mechanism: `size` 1, 2 or 4 bytes at
  /// `reg`, within one dword. Little-endian.
  [[nodiscard]] uint32_t config_read(uint8_t reg, unsigned size) const;
  void config_write(uint8_t reg, unsigned size, uint32_t value);

  /// Raw contents, without side effects (for the machine and tests).
  [[nodiscard]] uint8_t config_byte(uint8_t reg) const { return config_[reg]; }
  [[nodiscard]] uint16_t config_word(uint8_t reg) const;
  [[nodiscard]] uint32_t config_dword(uint8_t reg) const;

  [[nodiscard]] uint16_t command() const { return config_word(pci_reg::kCommand); }
  [[nodiscard]] bool io_space_enabled() const { return (command() & pci_command::kIoSpace) != 0; }
  [[nodiscard]] bool memory_space_enabled() const { return (command() & pci_command::kMemorySpace) != 0; }
  [[nodiscard]] bool bus_master_enabled() const { return (command() & pci_command::kBusMaster) != 0; }
  [[nodiscard]] bool intx_disabled() const { return (command() & pci_command::kIntxDisable) != 0; }
  [[nodiscard]] uint8_t interrupt_pin() const { return config_[pci_reg::kInterruptPin]; }
  [[nodiscard]] uint8_t interrupt_line() const { return config_[pci_reg::kInterruptLine]; }

  /// Regions 0-5 are the BARs (a BAR the function lacks has size 0); later ones are the
  /// subclass's own.
  [[nodiscard]] unsigned region_count() const { return static_cast<unsigned>(regions_.size()); }
  [[nodiscard]] const PciRegion& region(unsigned index) const { return regions_.at(index); }
  void add_region_listener(RegionListener listener) { listeners_.push_back(std::move(listener)); }

  /// Power-on values (PCI RST#); decoded regions are reported as gone.
  void reset();

 protected:
  explicit PciFunction(const PciIdentity& identity);

  /// Declares BAR `bar` (0-5): `size` a power of two, at least 4 (I/O) or 16 (memory).
  /// I/O BARs decode 16 address bits (bits 31:16 read 0, PCI 3.0 §6.2.5.1 permits it on
  /// x86), memory BARs are 32-bit and not prefetchable.
  void define_bar(unsigned bar, PciSpace space, uint32_t size);
  /// A further region whose base the subclass computes in custom_region_base(); returns
  /// its index.
  unsigned add_custom_region(PciSpace space, uint32_t size);
  [[nodiscard]] virtual std::optional<uint32_t> custom_region_base(unsigned /*region*/) const { return std::nullopt; }

  /// Power-on value and masks of a register of `size` bytes: bits in `writable` take
  /// guest writes, bits in `write_one_to_clear` are cleared by writing 1; the rest are
  /// read-only.
  void define_register(uint8_t reg, unsigned size, uint32_t reset_value, uint32_t writable,
                       uint32_t write_one_to_clear = 0);
  /// Changes only the write masks (e.g. a lock bit makes a register read-only).
  void set_writable(uint8_t reg, unsigned size, uint32_t writable);
  /// Device-side update of a register, ignoring the masks (status bits the device sets).
  void store(uint8_t reg, unsigned size, uint32_t value);

  /// Runs after a guest write has landed, before regions are re-evaluated.
  virtual void config_written(uint8_t /*reg*/, unsigned /*size*/) {}
  /// Runs at the end of reset(), after the power-on values are back.
  virtual void reset_done() {}
  /// Recomputes every region's decode and notifies listeners of changes; call it when
  /// something custom_region_base() reads changed outside a config write.
  void refresh_regions();

 private:
  [[nodiscard]] std::optional<uint32_t> decoded_base(unsigned region) const;

  std::array<uint8_t, kConfigSize> config_{};
  std::array<uint8_t, kConfigSize> reset_values_{};
  std::array<uint8_t, kConfigSize> writable_{};
  std::array<uint8_t, kConfigSize> reset_writable_{};
  std::array<uint8_t, kConfigSize> write_one_to_clear_{};
  std::vector<PciRegion> regions_;
  std::vector<RegionListener> listeners_;
};

}  // namespace vmm86
