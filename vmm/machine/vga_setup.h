// --vga std on the machine: the VGA at its legacy ports and window (and the window's entry
// in the physical map, so guest accesses fault to the device), and on a BIOS machine its
// PCI function at 00:02.0 as on QEMU's pc, with the LFB BAR and the VGA BIOS in the ROM BAR.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "devices/display/stdvga_pci.h"
#include "devices/display/vga.h"
#include "devices/pc_chipset.h"
#include "devices/pc_platform.h"
#include "vmm/arch/guest_memory.h"

namespace vmm86 {

struct StdVga {
  Vga vga;
  std::unique_ptr<StdVgaPci> pci;  ///< BIOS machines only
};

/// `chipset` null: a direct kernel boot (no PCI; the window and the ports only). The VGA
/// BIOS at `rom_path` goes into the ROM BAR.
[[nodiscard]] Result<std::unique_ptr<StdVga>> attach_std_vga(PcPlatform& pc, PcChipset* chipset, GuestMemory& mem,
                                                             const std::string& rom_path);

}  // namespace vmm86
