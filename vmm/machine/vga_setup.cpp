#include "vmm/machine/vga_setup.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/check.h"

namespace vmm86 {
namespace {

constexpr unsigned kVgaSlot = 2;  // QEMU's pc puts the VGA at 00:02.0
// The PCI memory window PcChipset decodes; the physical map must say it is MMIO so that
// guest accesses to a BAR there reach the bus instead of reading as nothing.
constexpr uint32_t kPciMmioBase = 0xE0000000;
constexpr uint32_t kPciMmioEnd = 0xFEC00000;

Result<std::vector<uint8_t>> read_rom(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("--vga std: cannot open the VGA BIOS {}: {}", path, std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 512 || bytes[0] != 0x55 || bytes[1] != 0xAA) {
    return make_error("--vga std: {} is not an option ROM (no 55 AA signature)", path);
  }
  return bytes;
}

}  // namespace

Result<std::unique_ptr<StdVga>> attach_std_vga(PcPlatform& pc, PcChipset* chipset, GuestMemory& mem,
                                               const std::string& rom_path) {
  auto std_vga = std::make_unique<StdVga>();
  Vga& vga = std_vga->vga;
  BusRangeId id = 0;
  VMM86_CHECK(pc.io_bus().add(Vga::kPortBase, Vga::kPortCount, vga.ports(), "vga", 1, &id) == BusStatus::Ok);
  VMM86_CHECK(pc.io_bus().add(Vga::kDispiPortBase, Vga::kDispiPortCount, vga.dispi_ports(), "vbe-dispi", 2, &id) ==
              BusStatus::Ok);
  VMM86_CHECK(pc.mmio_bus().add(GuestPhys{Vga::kWindowBase}, Vga::kWindowSize, vga.legacy_window(), "vga-window", 4,
                                &id) == BusStatus::Ok);
  mem.add_region({GuestPhys{Vga::kWindowBase}, Vga::kWindowSize, PhysKind::Mmio, "vga-window"});
  if (chipset == nullptr) return std_vga;
  auto rom = read_rom(rom_path);
  if (!rom) return std::move(rom).take_error();
  std_vga->pci = std::make_unique<StdVgaPci>(std::move(*rom), Vga::kVramBytes);
  StdVgaPci& pci = *std_vga->pci;
  VMM86_CHECK(chipset->bus().attach(kVgaSlot, 0, pci));
  mem.add_region({GuestPhys{kPciMmioBase}, kPciMmioEnd - kPciMmioBase, PhysKind::Mmio, "pci-mmio"});
  chipset->mapper().attach_mmio(pci, StdVgaPci::kLfbBar, vga.lfb(), "vga-lfb", 4);
  chipset->mapper().attach_mmio(pci, StdVgaPci::kMmioBar, vga.mmio_registers(), "vga-mmio", 2);
  chipset->mapper().attach_mmio(pci, pci.rom_region(), pci.rom(), "vga-rom", 4);
  return std_vga;
}

}  // namespace vmm86
