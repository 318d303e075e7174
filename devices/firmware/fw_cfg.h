// QEMU's firmware configuration device (fw_cfg), x86 port interface: the channel through
// which SeaBIOS learns the machine's RAM layout, CPU count, boot order and options (QEMU's
// docs/specs/fw_cfg.rst is the contract). One range of 12 ports at 0x510:
//   0x510       selector, 16-bit write: chooses an item and rewinds its data offset
//   0x511       data, 8-bit read: the next byte of the item, 0 once past its end (a byte
//               access at 0x510 is the data port too, as in QEMU's combined region)
//   0x514-0x51B DMA address, big-endian: a 32-bit write of the high half (0x514) is held,
//               a 32-bit write of the low half (0x518) runs the transfer described by the
//               FWCfgDmaAccess at that guest-physical address; reads give "QEMU CFG"
// Items are numbered by 16-bit keys: 0x0000-0x001F fixed meanings, 0x0020 up the named files
// listed in the directory at 0x0019, 0x8000 up x86-specific ones. Bit 14 (QEMU's "write
// channel") is ignored on select. Everything is read-only to the guest: a DMA write fails
// with the error bit, which is what QEMU answers for a read-only item.
// The vCPU thread owns the device (no locking); DMA touches guest memory synchronously, so
// the control field is final when the port write returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "devices/dma_memory.h"
#include "devices/io_device.h"

namespace vmm86 {

class FwCfg final : public PortIoDevice {
 public:
  static constexpr uint16_t kIoBase = 0x510;
  static constexpr uint32_t kIoPorts = 12;  ///< 0x510-0x51B: selector/data, gap, DMA address
  static constexpr unsigned kIoWidth = 4;   ///< the DMA halves are 32-bit accesses
  /// Longest file name; the directory entry holds 56 bytes including the NUL.
  static constexpr size_t kMaxNameLength = 55;

  /// Item keys (QEMU's fw_cfg_keys.h). Multi-byte numbers are little-endian in the item.
  enum Key : uint16_t {
    kSignature = 0x0000,      ///< "QEMU"
    kId = 0x0001,             ///< le32 feature bits: kIdTraditional, kIdDma
    kUuid = 0x0002,           ///< 16 bytes, SMBIOS system UUID
    kRamSize = 0x0003,        ///< le64 bytes
    kNoGraphic = 0x0004,      ///< le16; non-zero makes SeaBIOS default its console to COM1
    kNbCpus = 0x0005,         ///< le16 CPUs present at boot
    kMachineId = 0x0006,      ///< le32
    kKernelAddr = 0x0007,     ///< le32 (direct Linux boot, read by QEMU's linuxboot ROM)
    kKernelSize = 0x0008,     ///< le32
    kKernelCmdline = 0x0009,  ///< le32
    kInitrdAddr = 0x000A,     ///< le32
    kInitrdSize = 0x000B,     ///< le32
    kBootDevice = 0x000C,     ///< le16
    kNuma = 0x000D,           ///< le64 node count, le64 per CPU (node), le64 per node (size)
    kBootMenu = 0x000E,       ///< le16; SeaBIOS reads it as "etc/show-boot-menu"
    kMaxCpus = 0x000F,        ///< le16; SeaBIOS reads it as "etc/max-cpus"
    kKernelEntry = 0x0010,    ///< le32
    kKernelData = 0x0011,     ///< bytes
    kInitrdData = 0x0012,     ///< bytes
    kCmdlineAddr = 0x0013,    ///< le32
    kCmdlineSize = 0x0014,    ///< le32
    kCmdlineData = 0x0015,    ///< bytes, NUL-terminated
    kSetupAddr = 0x0016,      ///< le32
    kSetupSize = 0x0017,      ///< le32
    kSetupData = 0x0018,      ///< bytes
    kFileDir = 0x0019,        ///< the directory, built by the device
    kFileFirst = 0x0020,      ///< first key given to a file
    kWriteChannel = 0x4000,   ///< selector bit, ignored
    kArchLocal = 0x8000,      ///< x86 items: ACPI tables, SMBIOS entries, IRQ0 override, e820
    kAcpiTables = 0x8000,
    kSmbiosEntries = 0x8001,
    kIrq0Override = 0x8002,
    kE820Table = 0x8003,
  };
  /// FW_CFG_ID bits.
  static constexpr uint32_t kIdTraditional = 1u << 0;
  static constexpr uint32_t kIdDma = 1u << 1;
  /// FWCfgDmaAccess.control bits; the selected key sits in bits 16-31 with kDmaSelect.
  static constexpr uint32_t kDmaError = 1u << 0;
  static constexpr uint32_t kDmaRead = 1u << 1;
  static constexpr uint32_t kDmaSkip = 1u << 2;
  static constexpr uint32_t kDmaSelect = 1u << 3;
  static constexpr uint32_t kDmaWrite = 1u << 4;
  /// What a read of the DMA address register gives, as a big-endian 64-bit number.
  static constexpr uint64_t kDmaSignature = 0x51454D5520434647;  // "QEMU CFG"

  /// `dma` null: no DMA interface (ID bit 1 clear, writes to 0x514-0x51B ignored).
  /// Otherwise it must outlive the device. The signature and ID items are added here.
  explicit FwCfg(DmaMemory* dma);
  FwCfg(const FwCfg&) = delete;
  FwCfg& operator=(const FwCfg&) = delete;

  /// System reset: the signature selected, no DMA address half pending; the items stay.
  void reset();

  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;

  /// Adds a numbered item. Fails for a key that is taken, the directory (0x0019), a file
  /// key (0x0020-0x3FFF; x86 keys from 0x8020 are fine) or one with the write-channel bit.
  Status add_bytes(uint16_t key, std::vector<uint8_t> bytes);
  Status add_u16(uint16_t key, uint16_t value);
  Status add_u32(uint16_t key, uint32_t value);
  Status add_u64(uint16_t key, uint64_t value);
  /// Adds a named file. Files take keys from 0x0020 in name order (strcmp), as QEMU gives
  /// them, so adding one renumbers those after it. Fails for an empty name, a name longer
  /// than kMaxNameLength or containing NUL, a name that is taken, or an item over 4 GiB.
  Status add_file(std::string_view name, std::vector<uint8_t> bytes);

  /// The item's bytes (a file's through its current key); null if there is none.
  [[nodiscard]] const std::vector<uint8_t>* item(uint16_t key) const;
  /// The key a file has now; 0 if there is no such file (0 is never a file's key).
  [[nodiscard]] uint16_t file_key(std::string_view name) const;

 private:
  void select(uint16_t key);
  [[nodiscard]] uint8_t read_data();
  void run_dma(uint64_t descriptor);
  /// Copies `length` bytes of the selected item from the data offset to guest memory,
  /// zeros past the item's end; false if guest memory refused.
  [[nodiscard]] bool dma_read(uint64_t address, uint32_t length);
  void rebuild_directory();

  DmaMemory* dma_;
  std::map<uint16_t, std::vector<uint8_t>> items_;       ///< numbered items, not files
  std::map<std::string, std::vector<uint8_t>> files_;    ///< by name: iteration order is key order
  std::vector<const std::vector<uint8_t>*> file_slots_;  ///< index = key - kFileFirst
  std::vector<uint8_t> directory_;
  uint16_t selected_key_ = kSignature;
  const std::vector<uint8_t>* selected_ = nullptr;  ///< null: no item under the key
  uint32_t offset_ = 0;
  uint32_t dma_address_high_ = 0;
};

}  // namespace vmm86
