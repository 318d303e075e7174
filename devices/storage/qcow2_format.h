// The qcow2 on-disk format, as QEMU's published specification (docs/interop/qcow2.txt)
// describes it: the header, the bits of L1/L2/refcount-table entries, the limits vmm86
// enforces, and the header parser that checks every field before any table is read.
// Everything on disk is big-endian.
//
//   cluster 0:  header (72 bytes in v2, header_length in v3), header extensions, backing name
//   L1 table:   l1_size 64-bit entries, each the offset of an L2 table (one cluster)
//   L2 table:   cluster_size / 8 entries, each the host offset of one guest cluster
//   refcounts:  a table of refcount-block offsets; each block, refcount_bits per host cluster
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "common/result.h"

namespace vmm86::qcow2 {

/// "QFI\xfb" at byte 0.
inline constexpr std::array<uint8_t, 4> kMagic{'Q', 'F', 'I', 0xFB};

inline constexpr uint32_t kMinClusterBits = 9;   ///< 512-byte clusters
inline constexpr uint32_t kMaxClusterBits = 21;  ///< 2 MiB, QEMU's limit too
inline constexpr uint32_t kV2HeaderBytes = 72;
inline constexpr uint32_t kV3HeaderBytes = 104;
inline constexpr uint32_t kMaxBackingNameBytes = 1023;
/// QEMU's own limits: larger tables are refused (they would be huge allocations).
inline constexpr uint64_t kMaxL1Bytes = 32 << 20;
inline constexpr uint64_t kMaxRefcountTableBytes = 8 << 20;
inline constexpr uint64_t kMaxVirtualSize = uint64_t{1} << 61;
/// A backing chain deeper than this is refused (and so is a loop).
inline constexpr unsigned kMaxBackingDepth = 16;

// L1 and L2 entries.
inline constexpr uint64_t kCopied = uint64_t{1} << 63;          ///< refcount is exactly 1: writable in place
inline constexpr uint64_t kCompressed = uint64_t{1} << 62;      ///< L2: a compressed-cluster descriptor
inline constexpr uint64_t kZeroFlag = 1;                        ///< L2 (v3): the cluster reads as zeros
inline constexpr uint64_t kOffsetMask = 0x00FF'FFFF'FFFF'FE00;  ///< bits 9-55: a host offset
inline constexpr uint64_t kL1Reserved = 0x7F00'0000'0000'01FF;  ///< bits 0-8 and 56-62 must be 0
inline constexpr uint64_t kL2Reserved = 0x3F00'0000'0000'01FE;  ///< bits 1-8 and 56-61 must be 0
inline constexpr uint64_t kRefcountTableReserved = 0x1FF;       ///< bits 0-8 must be 0

// Incompatible feature bits (v3): an unknown one refuses the image.
inline constexpr uint64_t kIncompatDirty = 1 << 0;            ///< refcounts may be stale (lazy refcounts)
inline constexpr uint64_t kIncompatCorrupt = 1 << 1;          ///< must not be written
inline constexpr uint64_t kIncompatExternalData = 1 << 2;     ///< data in another file: refused
inline constexpr uint64_t kIncompatCompressionType = 1 << 3;  ///< compression_type field is not zlib
inline constexpr uint64_t kIncompatExtendedL2 = 1 << 4;       ///< 128-bit L2 entries (subclusters): refused
inline constexpr uint64_t kIncompatKnown = 0x1F;

// Header fields vmm86 rewrites.
inline constexpr uint64_t kRefcountTableOffsetField = 48;  ///< u64, then refcount_table_clusters (u32)
inline constexpr uint64_t kAutoclearFeaturesField = 88;    ///< u64 (v3)

// Header extension types.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xE279'2ACA;
inline constexpr uint32_t kExtFullDiskEncryption = 0x0537'BE77;
inline constexpr uint32_t kExtExternalDataFile = 0x4441'5441;

[[nodiscard]] inline uint64_t load_be(const uint8_t* p, unsigned bytes) {
  uint64_t value = 0;
  for (unsigned i = 0; i < bytes; ++i) value = value << 8 | p[i];
  return value;
}
[[nodiscard]] inline uint64_t load_be64(const uint8_t* p) {
  uint64_t value = 0;
  std::memcpy(&value, p, 8);
  return __builtin_bswap64(value);
}
inline void store_be(uint8_t* p, unsigned bytes, uint64_t value) {
  for (unsigned i = bytes; i-- > 0; value >>= 8) p[i] = static_cast<uint8_t>(value);
}
inline void store_be64(uint8_t* p, uint64_t value) {
  const uint64_t swapped = __builtin_bswap64(value);
  std::memcpy(p, &swapped, 8);
}

/// The header, every field checked by parse_header.
struct Header {
  uint32_t version = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;  ///< virtual disk size in bytes
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;  ///< v2: always 16-bit refcounts
  uint32_t header_length = kV2HeaderBytes;
  std::string backing_file;    ///< empty: none
  std::string backing_format;  ///< from the header extension; empty: probe
};

/// True when `head` starts with the qcow2 magic.
[[nodiscard]] inline bool has_magic(std::span<const uint8_t> head) {
  return head.size() >= kMagic.size() && std::memcmp(head.data(), kMagic.data(), kMagic.size()) == 0;
}

/// Parses and checks the header in `head` (the file's first bytes: at least the first
/// cluster, or the whole file when smaller). `read_only`: the dirty and corrupt bits refuse
/// writable opens only. Errors are one line naming `path`.
[[nodiscard]] Result<Header> parse_header(std::span<const uint8_t> head, uint64_t file_size, const std::string& path,
                                          bool read_only);

}  // namespace vmm86::qcow2
