#include "vmm/loader/firmware.h"

#include <utility>

#include "vmm/loader/host_file.h"

namespace vmm86::firmware {

Result<LoadedFirmware> load_bios(uint64_t ram_bytes, const std::string& path) {
  auto file = HostFile::open(path, "BIOS");
  if (!file) return std::move(file).take_error();
  const uint64_t size = file->size();
  if (size == 0) return make_error("BIOS {}: the file is empty", path);
  if (size % kBiosGranule != 0) {
    return make_error("BIOS {}: {} bytes is not a whole number of 64 KiB blocks (not a BIOS image?)", path, size);
  }
  if (size > kMaxBiosBytes) return make_error("BIOS {}: {} bytes is more than the 16 MiB a PC decodes", path, size);
  // Real-mode firmware lives below 1 MiB and needs RAM above it for its tables.
  if (ram_bytes < 2 * kOneMiB) return make_error("a BIOS needs at least 2M of guest RAM");
  auto memory = GuestMemory::create(ram_bytes, size);
  if (!memory) return make_error("cannot create guest RAM: {}", memory.error());
  VMM86_TRY(file->read_at(0, memory->rom_area()));
  memory->add_region({GuestPhys{(1ull << 32) - size}, size, PhysKind::Rom, "bios", ram_bytes});
  LoadedFirmware loaded{std::move(*memory), CpuState{}, size};
  loaded.cpu.reset();
  return loaded;
}

}  // namespace vmm86::firmware
