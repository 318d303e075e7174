// The Intel MultiProcessor Specification 1.4 tables (chapter 4): the MP floating pointer
// structure, which an OS finds by scanning the BIOS ROM area, and the MP configuration
// table it points to. Entries: a processor per CPU (CPU 0 the bootstrap one), the buses
// (PCI 0 if there is PCI, then ISA), the IOAPIC, one I/O interrupt assignment per ISA IRQ
// (IRQ 0 to pin 2, IRQ 2 left out: its pin is the timer's, the others to the pin of their
// number; the SCI level-triggered active-high when there is ACPI) and the local interrupts
// (LINT0 ExtINT on the bootstrap CPU, the 8259's virtual wire; LINT1 NMI on every CPU).
// Only a machine with APICs has MP tables: they describe nothing else. The configuration
// table lives below 1 MiB too, because Linux before 2.6.30 could not read it from high
// memory (SeaBIOS keeps it there for the same reason).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "devices/firmware/platform_tables.h"

namespace vmm86 {

namespace mp {
inline constexpr size_t kFloatingSize = 16;
inline constexpr size_t kHeaderSize = 44;
inline constexpr uint8_t kSpecRevision = 4;                     ///< version 1.4
inline constexpr std::string_view kOemId = "VMM86   ";          // 8 bytes
inline constexpr std::string_view kProductId = "VMM86 PC    ";  // 12 bytes
/// Entry types and sizes.
enum EntryType : uint8_t { kProcessor = 0, kBus = 1, kIoApic = 2, kIoInterrupt = 3, kLocalInterrupt = 4 };
inline constexpr size_t kProcessorEntrySize = 20;
inline constexpr size_t kOtherEntrySize = 8;
/// Interrupt types of I/O and local interrupt entries.
enum InterruptType : uint8_t { kInt = 0, kNmi = 1, kSmi = 2, kExtInt = 3 };
/// Processor flags.
inline constexpr uint8_t kCpuEnabled = 0x01;
inline constexpr uint8_t kCpuBootstrap = 0x02;
/// Interrupt flags: polarity bits 1:0, trigger mode bits 3:2; 0 conforms to the bus.
inline constexpr uint16_t kActiveHighLevel = 0x1 | 0x3 << 2;
inline constexpr uint8_t kAllLocalApics = 0xFF;
}  // namespace mp

struct MpTables {
  std::vector<uint8_t> floating;  ///< at floating_address
  std::vector<uint8_t> config;    ///< at config_address
};

/// The tables for `config` (which must have APICs); the floating pointer (to be placed on
/// a 16-byte boundary where the OS scans) points at `config_address`.
[[nodiscard]] MpTables build_mp_tables(const PlatformTablesConfig& config, uint32_t config_address);

}  // namespace vmm86
