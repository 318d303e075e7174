#include "vmm/loader/kernel_boot.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "vmm/loader/boot_params.h"
#include "vmm/loader/host_file.h"
#include "vmm/loader/linux_boot.h"
#include "vmm/loader/multiboot.h"

namespace vmm86::kernel_boot {

KernelFormat format_of(std::span<const uint8_t> head) {
  constexpr size_t kMagicAt = VMM86_HDR_OFFSET(header);
  uint32_t magic = 0;
  if (head.size() >= kMagicAt + sizeof magic) std::memcpy(&magic, head.data() + kMagicAt, sizeof magic);
  if (magic == linux_boot::kHeaderMagic) return KernelFormat::LinuxBzImage;
  auto header = multiboot::find_header(head);
  // A header that is there but broken is Multiboot's to report.
  return !header || *header ? KernelFormat::Multiboot : KernelFormat::LinuxBzImage;
}

Result<KernelFormat> detect_format(const std::string& path) {
  auto opened = open_head(path, "kernel", multiboot::kSearchBytes);
  if (!opened) return std::move(opened).take_error();
  return format_of(opened->head);
}

Result<uint64_t> required_ram_bytes(const KernelRequest& request, KernelFormat format) {
  if (format == KernelFormat::Multiboot) return multiboot::required_ram_bytes(request);
  return linux_boot::required_ram_bytes(request);
}

Result<LoadedKernel> load_kernel(uint64_t ram_bytes, const KernelRequest& request, KernelFormat format) {
  if (format == KernelFormat::LinuxBzImage) {
    auto guest = linux_boot::load_guest(ram_bytes, request);
    if (!guest) return std::move(guest).take_error();
    return LoadedKernel{std::move(guest->memory), guest->cpu};
  }
  auto memory = GuestMemory::create(ram_bytes);
  if (!memory) return make_error("cannot create {} MiB of guest RAM: {}", ram_bytes >> 20, memory.error());
  auto boot = multiboot::load_multiboot(*memory, request);
  if (!boot) return std::move(boot).take_error();
  return LoadedKernel{std::move(*memory), boot->cpu};
}

}  // namespace vmm86::kernel_boot
