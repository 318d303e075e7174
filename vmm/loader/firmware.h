// The firmware loader: a PC BIOS image (SeaBIOS's bios.bin, Bochs's BIOS-bochs-latest) as
// the ROM at the top of the 4 GiB physical space, and the vCPU in its reset state (real
// mode, CS:IP = F000:FFF0, so the first fetch is at FFFFFFF0). The copy that real-mode code
// sees below 1 MiB (the "ISA BIOS" alias, the image's last 128 KiB at E0000-FFFFF) and the
// chipset's shadow-RAM control over it belong to the machine (vmm/machine/bios_shadow.h).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "vmm/arch/cpu_state.h"
#include "vmm/arch/guest_memory.h"

namespace vmm86::firmware {

/// Largest image accepted: the 16 MiB of flash a PC decodes below 4 GiB.
inline constexpr uint64_t kMaxBiosBytes = 16ull << 20;
/// Image sizes are whole 64 KiB blocks, as QEMU also demands.
inline constexpr uint64_t kBiosGranule = 64ull << 10;
/// The ISA BIOS window below 1 MiB that shows the image's last bytes.
inline constexpr uint64_t kIsaBiosBytes = 128ull << 10;
inline constexpr uint64_t kOneMiB = 1ull << 20;

/// Guest RAM with the BIOS in place, and the reset vCPU.
struct LoadedFirmware {
  GuestMemory memory;
  CpuState cpu;
  uint64_t bios_bytes = 0;  ///< the image's size; it sits at [4 GiB - size, 4 GiB)
};

/// Reads the BIOS image at `path` into a new guest's ROM. Errors name the file and say
/// what is wrong with it (missing, not a regular file, empty, not a multiple of 64 KiB,
/// larger than 16 MiB).
[[nodiscard]] Result<LoadedFirmware> load_bios(uint64_t ram_bytes, const std::string& path);

}  // namespace vmm86::firmware
