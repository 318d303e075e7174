// Where the translator reads guest code from (CodeSource): the guest's page tables over
// guest RAM/ROM. Reading for translation is not a plain read: the page then holds
// translated code and goes under the self-modifying-code policy.
#pragma once

#include <cstdint>

#include "shadow-mmu/page_walker.h"
#include "translator/code_source.h"
#include "vmm/engine/smc_policy.h"

namespace vmm86 {

class GuestCodeSource final : public CodeSource {
 public:
  GuestCodeSource(GuestMemory& mem, const CpuState& cpu, SmcPolicy& smc) : mem_(mem), cpu_(cpu), smc_(smc) {}

  /// For the translator: read_code(), and the page is watched for code writes from now on
  /// (write-protected, or its blocks verify their bytes: Bytes::verify).
  [[nodiscard]] bool fetch(GuestLinear linear, Bytes* out) override;
  /// Guest code bytes at `linear` through the guest's page tables (sets the guest's A
  /// bits, as a fetch does), leaving the code-page bookkeeping alone: for statistics, the
  /// block observer, the verifier.
  [[nodiscard]] bool read_code(GuestLinear linear, Bytes* out) const;

 private:
  GuestMemory& mem_;
  const CpuState& cpu_;
  SmcPolicy& smc_;
};

}  // namespace vmm86
