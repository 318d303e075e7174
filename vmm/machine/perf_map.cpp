#include "vmm/machine/perf_map.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace vmm86 {

PerfMap::~PerfMap() {
  if (file_) std::fclose(file_);
}

Status PerfMap::open() {
  const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) return make_error("--perf-map: cannot create {}: {}", path, std::strerror(errno));
  return ok_status();
}

void PerfMap::block(const void* host_code, uint32_t host_size, uint32_t guest_eip, uint32_t guest_insns) {
  std::fprintf(file_, "%lx %x guest_%08x_%u\n", reinterpret_cast<unsigned long>(host_code), host_size, guest_eip,
               guest_insns);
}

}  // namespace vmm86
