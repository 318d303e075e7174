// The interface through which the translator fetches guest code bytes.
#pragma once

#include <cstdint>

#include "vmm/arch/types.h"

namespace vmm86 {

/// Where the translator reads guest code from. Implemented by the owner of the address
/// space (paging off: RAM; paging on: the shadow MMU's walk).
class CodeSource {
 public:
  virtual ~CodeSource() = default;
  /// Host pointer to the guest code at `linear` and the bytes readable up to the end of
  /// its page; false when the page cannot be fetched (the interpreter raises the fault).
  struct Bytes {
    const uint8_t* host = nullptr;
    uint32_t available = 0;
    GuestPhys phys{};     ///< of the byte at `linear`
    bool global = false;  ///< mapped by a global page (CR4.PGE): the same in every address space
    bool large = false;   ///< mapped by a 4 MiB page
    /// The page is not write-protected (it takes too many code writes): blocks from it
    /// compare their guest bytes at entry instead.
    bool verify = false;
  };
  [[nodiscard]] virtual bool fetch(GuestLinear linear, Bytes* out) = 0;
};

}  // namespace vmm86
