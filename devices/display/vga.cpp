#include "devices/display/vga.h"

#include <algorithm>
#include <cstring>

namespace vmm86 {

namespace {

// Ports as offsets from 0x3B0.
constexpr uint16_t kMonoCrtcIndex = 0x04, kMonoCrtcData = 0x05, kMonoStatus1 = 0x0A;
constexpr uint16_t kAttrIndexData = 0x10, kAttrDataRead = 0x11, kMiscWriteStatus0 = 0x12, kVideoEnable = 0x13;
constexpr uint16_t kSeqIndex = 0x14, kSeqData = 0x15, kDacMask = 0x16, kDacReadIndex = 0x17, kDacWriteIndex = 0x18,
                   kDacData = 0x19, kFeatureRead = 0x1A, kMiscRead = 0x1C, kGcIndex = 0x1E, kGcData = 0x1F;
constexpr uint16_t kColorCrtcIndex = 0x24, kColorCrtcData = 0x25, kColorStatus1 = 0x2A;

// Writable bits of each register (unimplemented bits read back 0), as QEMU masks them.
constexpr std::array<uint8_t, 8> kSeqMask = {0x03, 0x3D, 0x0F, 0x3F, 0x0E, 0x00, 0x00, 0xFF};
constexpr std::array<uint8_t, 16> kGcMask = {0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF};
constexpr unsigned kCrtcCount = 0x19, kAttrCount = 0x15;

// Sequencer, graphics controller and CRTC register numbers used below.
constexpr unsigned kSeqPlaneMask = 2, kSeqMemoryMode = 4;
constexpr unsigned kGcSetReset = 0, kGcEnableSetReset = 1, kGcColorCompare = 2, kGcDataRotate = 3, kGcReadMap = 4,
                   kGcMode = 5, kGcMisc = 6, kGcColorDontCare = 7, kGcBitMask = 8;
constexpr unsigned kCrtcHDisplayEnd = 0x01, kCrtcOverflow = 0x07, kCrtcMaxScan = 0x09, kCrtcVDisplayEnd = 0x12,
                   kCrtcOffset = 0x13, kCrtcVRetraceEnd = 0x11, kCrtcModeControl = 0x17, kCrtcLineCompare = 0x18;
constexpr uint8_t kSeqChain4 = 0x08, kSeqOddEvenOff = 0x04;
constexpr uint8_t kStatus1DisplayEnable = 0x01, kStatus1VRetrace = 0x08;

/// Expands 4 plane bits into 4 bytes of 0x00/0xFF (plane p in byte p).
constexpr uint32_t expand_planes(unsigned bits) {
  uint32_t v = 0;
  for (unsigned p = 0; p < 4; ++p) {
    if ((bits >> p) & 1) v |= 0xFFu << (8 * p);
  }
  return v;
}

constexpr uint32_t replicate(uint32_t byte) { return (byte & 0xFF) * 0x01010101u; }

uint32_t load32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}

void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

}  // namespace

Vga::Vga() : vram_(kVramBytes, 0) { reset(); }

void Vga::reset() {
  sr_.fill(0);
  gr_.fill(0);
  cr_.fill(0);
  ar_.fill(0);
  vbe_.fill(0);
  vbe_[dispi::kIndexId] = dispi::kId5;
  vbe_[dispi::kIndexVideoMemory64k] = static_cast<uint16_t>(kVramBytes >> 16);
  sr_index_ = gr_index_ = cr_index_ = ar_index_ = 0;
  ar_flip_flop_ = false;
  misc_ = feature_ = status1_ = 0;
  dac_mask_ = 0xFF;
  dac_read_index_ = dac_write_index_ = dac_sub_index_ = 0;
  dac_reading_ = false;
  latch_ = 0;
  vbe_index_ = 0;
  bank_offset_ = vbe_line_offset_ = vbe_start_ = 0;
  ++generation_;
}

std::array<uint8_t, 3> Vga::dac_rgb(unsigned i) const {
  std::array<uint8_t, 3> rgb{};
  for (unsigned c = 0; c < 3; ++c) {
    const uint8_t v = dac_[i * 3 + c];
    // 6 bits to 8 as QEMU widens them (bit 0 fills the two new bits), so screenshots compare.
    const unsigned six = v & 0x3Fu;
    rgb[c] = (vbe_[dispi::kIndexEnable] & dispi::kDac8Bit) != 0 ? v : static_cast<uint8_t>(six << 2 | (six & 1) * 3);
  }
  return rgb;
}

// ---- Ports ------------------------------------------------------------------------------

bool Vga::decodes(uint16_t port) const {
  const bool color = (misc_ & 0x01) != 0;
  if (port >= kMonoCrtcIndex && port <= kMonoStatus1) return !color;
  if (port >= kColorCrtcIndex && port <= kColorStatus1) return color;
  return true;
}

uint32_t Vga::vga_port_read(uint16_t offset, unsigned /*size*/) {
  ++stats_.port_accesses;
  return port_read(offset);
}

void Vga::vga_port_write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  ++stats_.port_accesses;
  port_write(offset, static_cast<uint8_t>(value));
}

uint8_t Vga::port_read(uint16_t port) {
  if (!decodes(port)) return 0xFF;
  switch (port) {
    case kAttrIndexData: return ar_index_;
    case kAttrDataRead: return ar_[ar_index_ & 0x1F];
    case kMiscWriteStatus0: return 0x10;  // switch sense: a colour monitor
    case kVideoEnable: return 0;
    case kSeqIndex: return sr_index_;
    case kSeqData: return sr_[sr_index_];
    case kDacMask: return dac_mask_;
    case kDacReadIndex: return dac_reading_ ? 0x03 : 0x00;
    case kDacWriteIndex: return dac_write_index_;
    case kDacData: {
      const uint8_t v = dac_[dac_read_index_ * 3u + dac_sub_index_];
      if (++dac_sub_index_ == 3) {
        dac_sub_index_ = 0;
        ++dac_read_index_;
      }
      return v;
    }
    case kFeatureRead: return feature_;
    case kMiscRead: return misc_;
    case kGcIndex: return gr_index_;
    case kGcData: return gr_[gr_index_];
    case kMonoCrtcIndex:
    case kColorCrtcIndex: return cr_index_;
    case kMonoCrtcData:
    case kColorCrtcData: return cr_[cr_index_];
    case kMonoStatus1:
    case kColorStatus1:
      // No real timing: display enable and vertical retrace toggle at each read, so
      // software waiting for either edge sees it at once. Reading resets the flip-flop.
      status1_ ^= kStatus1DisplayEnable | kStatus1VRetrace;
      ar_flip_flop_ = false;
      return status1_;
    default: return 0xFF;
  }
}

void Vga::port_write(uint16_t port, uint8_t value) {
  if (!decodes(port)) return;
  ++generation_;
  switch (port) {
    case kAttrIndexData:
      if (!ar_flip_flop_) {
        ar_index_ = value & 0x3F;
      } else if ((ar_index_ & 0x1F) < kAttrCount) {
        const unsigned i = ar_index_ & 0x1F;
        ar_[i] = i < 0x10 ? (value & 0x3F) : value;
      }
      ar_flip_flop_ = !ar_flip_flop_;
      break;
    case kMiscWriteStatus0: misc_ = value & 0xEF; break;
    case kSeqIndex: sr_index_ = value & 0x07; break;
    case kSeqData: sr_[sr_index_] = value & kSeqMask[sr_index_]; break;
    case kDacMask: dac_mask_ = value; break;
    case kDacReadIndex:
      dac_read_index_ = value;
      dac_sub_index_ = 0;
      dac_reading_ = true;
      break;
    case kDacWriteIndex:
      dac_write_index_ = value;
      dac_sub_index_ = 0;
      dac_reading_ = false;
      break;
    case kDacData:
      dac_cache_[dac_sub_index_] = value;
      if (++dac_sub_index_ == 3) {
        std::memcpy(&dac_[dac_write_index_ * 3u], dac_cache_.data(), 3);
        dac_sub_index_ = 0;
        ++dac_write_index_;
      }
      break;
    case kGcIndex: gr_index_ = value & 0x0F; break;
    case kGcData: gr_[gr_index_] = value & kGcMask[gr_index_]; break;
    case kMonoCrtcIndex:
    case kColorCrtcIndex: cr_index_ = value & 0x1F; break;
    case kMonoCrtcData:
    case kColorCrtcData:
      if (cr_index_ >= kCrtcCount) break;
      // CR11 bit 7 write-protects CR0-CR7, except CR7's line compare bit 9 (bit 4).
      if ((cr_[kCrtcVRetraceEnd] & 0x80) != 0 && cr_index_ <= kCrtcOverflow) {
        if (cr_index_ == kCrtcOverflow) cr_[kCrtcOverflow] = static_cast<uint8_t>((cr_[7] & ~0x10) | (value & 0x10));
        break;
      }
      cr_[cr_index_] = value;
      break;
    case kMonoStatus1:
    case kColorStatus1: feature_ = value & 0x03; break;
    default: break;
  }
}

// ---- QEMU's register page (BAR 2) ------------------------------------------------------

namespace {
constexpr uint64_t kMmioPorts = 0x400, kMmioPortsEnd = 0x420;  // ports 0x3C0-0x3DF
constexpr uint64_t kMmioDispi = 0x500, kMmioDispiEnd = 0x500 + 2 * dispi::kIndexCount;
constexpr uint64_t kMmioQemuExtSize = 0x600, kMmioQemuExtEndian = 0x604;
constexpr uint32_t kQemuExtSize = 8;            // bytes of the extension registers
constexpr uint32_t kLittleEndian = 0x1E1E1E1E;  // QEMU's value for a little-endian framebuffer
constexpr uint16_t kPortsFrom3B0 = 0x10;        // 0x3C0 as an offset from kPortBase
}  // namespace

uint32_t Vga::mmio_read(uint64_t offset, unsigned size) {
  if (offset >= kMmioPorts && offset < kMmioPortsEnd) {
    const auto port = static_cast<uint16_t>(kPortsFrom3B0 + offset - kMmioPorts);
    uint32_t v = port_read(port);
    if (size == 2) v |= uint32_t{port_read(static_cast<uint16_t>(port + 1))} << 8;
    return v;
  }
  if (offset >= kMmioDispi && offset < kMmioDispiEnd) {
    const uint16_t saved = vbe_index_;
    vbe_index_ = static_cast<uint16_t>((offset - kMmioDispi) / 2);
    const uint16_t v = dispi_read();
    vbe_index_ = saved;
    return v;
  }
  if (offset == kMmioQemuExtSize) return kQemuExtSize;
  if (offset == kMmioQemuExtEndian) return kLittleEndian;
  return 0;
}

void Vga::mmio_write(uint64_t offset, unsigned size, uint32_t value) {
  if (offset >= kMmioPorts && offset < kMmioPortsEnd) {
    // A 16-bit write is the index and the data byte, as `out dx, ax`.
    const auto port = static_cast<uint16_t>(kPortsFrom3B0 + offset - kMmioPorts);
    port_write(port, static_cast<uint8_t>(value));
    if (size == 2) port_write(static_cast<uint16_t>(port + 1), static_cast<uint8_t>(value >> 8));
    return;
  }
  if (offset >= kMmioDispi && offset < kMmioDispiEnd) {
    const uint16_t saved = vbe_index_;
    vbe_index_ = static_cast<uint16_t>((offset - kMmioDispi) / 2);
    dispi_write(static_cast<uint16_t>(value));
    vbe_index_ = saved;
  }
  // The endianness register takes only little endian here: other writes are dropped.
}

// ---- Bochs VBE --------------------------------------------------------------------------

uint32_t Vga::dispi_port_read(uint16_t offset, unsigned /*size*/) {
  ++stats_.port_accesses;
  return offset == 0 ? vbe_index_ : dispi_read();
}

void Vga::dispi_port_write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  ++stats_.port_accesses;
  if (offset == 0) {
    vbe_index_ = static_cast<uint16_t>(value);
  } else {
    dispi_write(static_cast<uint16_t>(value));
  }
}

uint16_t Vga::dispi_read() {
  if (vbe_index_ >= dispi::kIndexCount) return 0;
  if ((vbe_[dispi::kIndexEnable] & dispi::kGetCaps) != 0) {
    switch (vbe_index_) {
      case dispi::kIndexXres: return dispi::kMaxXres;
      case dispi::kIndexYres: return dispi::kMaxYres;
      case dispi::kIndexBpp: return dispi::kMaxBpp;
      default: break;
    }
  }
  return vbe_[vbe_index_];
}

void Vga::dispi_write(uint16_t value) {
  ++generation_;
  switch (vbe_index_) {
    case dispi::kIndexId:
      if (value >= dispi::kId0 && value <= dispi::kId5) vbe_[dispi::kIndexId] = value;
      break;
    case dispi::kIndexXres:
    case dispi::kIndexYres:
    case dispi::kIndexBpp:
      // Only while disabled, as QEMU: a mode is set up first, then enabled.
      if (vbe_enabled()) break;
      if (vbe_index_ == dispi::kIndexXres && (value > dispi::kMaxXres || (value & 7) != 0)) break;
      if (vbe_index_ == dispi::kIndexYres && value > dispi::kMaxYres) break;
      if (vbe_index_ == dispi::kIndexBpp) {
        if (value == 0) value = 8;
        if (value != 4 && value != 8 && value != 15 && value != 16 && value != 24 && value != 32) break;
      }
      vbe_[vbe_index_] = value;
      break;
    case dispi::kIndexBank: {
      const uint32_t banks = kVramBytes >> 16;
      vbe_[dispi::kIndexBank] = static_cast<uint16_t>(value & (banks - 1));
      bank_offset_ = uint32_t{vbe_[dispi::kIndexBank]} << 16;
      break;
    }
    case dispi::kIndexEnable: dispi_enable(value); break;
    case dispi::kIndexVirtWidth:
    case dispi::kIndexXOffset:
    case dispi::kIndexYOffset:
      vbe_[vbe_index_] = value;
      update_vbe_layout();
      break;
    default: break;  // VIRT_HEIGHT and the memory size are computed
  }
}

void Vga::dispi_enable(uint16_t value) {
  const uint16_t xres = vbe_[dispi::kIndexXres];
  const uint16_t yres = vbe_[dispi::kIndexYres];
  const uint16_t bpp = vbe_[dispi::kIndexBpp] == 0 ? 8 : vbe_[dispi::kIndexBpp];
  if ((value & dispi::kEnabled) != 0 && !vbe_enabled() && xres != 0 && yres != 0) {
    vbe_[dispi::kIndexVirtWidth] = xres;
    vbe_[dispi::kIndexXOffset] = vbe_[dispi::kIndexYOffset] = 0;
    vbe_[dispi::kIndexEnable] = value;
    update_vbe_layout();
    if ((value & dispi::kNoClearMem) == 0) {
      std::fill_n(vram_.begin(), std::min<size_t>(size_t{yres} * vbe_line_offset_, vram_.size()), uint8_t{0});
    }
    // What the VGA registers must say for the legacy window to reach the banks: graphics,
    // A0000 64K, chain-4 (16 colours: planar), 256-colour shift, no double scan.
    gr_[kGcMisc] = static_cast<uint8_t>((gr_[kGcMisc] & ~0x0C) | 0x05);
    cr_[kCrtcModeControl] |= 0x03;
    cr_[kCrtcOffset] = static_cast<uint8_t>(vbe_line_offset_ >> 3);
    cr_[kCrtcHDisplayEnd] = static_cast<uint8_t>((xres >> 3) - 1);
    const unsigned h = yres - 1u;
    cr_[kCrtcVDisplayEnd] = static_cast<uint8_t>(h);
    cr_[kCrtcOverflow] = static_cast<uint8_t>((cr_[kCrtcOverflow] & ~0x42) | ((h >> 7) & 0x02) | ((h >> 3) & 0x40));
    cr_[kCrtcLineCompare] = 0xFF;
    cr_[kCrtcOverflow] |= 0x10;
    cr_[kCrtcMaxScan] = static_cast<uint8_t>((cr_[kCrtcMaxScan] | 0x40) & ~0x9F);
    unsigned shift = 2;
    if (bpp == 4) {
      shift = 0;
      sr_[1] &= static_cast<uint8_t>(~0x08);
    } else {
      sr_[kSeqMemoryMode] |= kSeqChain4;
      sr_[kSeqPlaneMask] |= 0x0F;
    }
    gr_[kGcMode] = static_cast<uint8_t>((gr_[kGcMode] & ~0x60) | (shift << 5));
    return;
  }
  if ((value & dispi::kEnabled) == 0) bank_offset_ = 0;
  vbe_[dispi::kIndexEnable] = value;
}

void Vga::update_vbe_layout() {
  const unsigned bpp = vbe_[dispi::kIndexBpp] == 0 ? 8 : vbe_[dispi::kIndexBpp];
  const uint32_t width = std::max(vbe_[dispi::kIndexVirtWidth], vbe_[dispi::kIndexXres]);
  vbe_[dispi::kIndexVirtWidth] = static_cast<uint16_t>(width);
  vbe_line_offset_ = bpp == 4 ? width / 2 : width * ((bpp + 7) / 8);
  if (vbe_line_offset_ == 0) return;
  const uint32_t height = std::min<uint32_t>(kVramBytes / vbe_line_offset_, 0xFFFF);
  vbe_[dispi::kIndexVirtHeight] = static_cast<uint16_t>(height);
  const uint32_t bytes = bpp == 4 ? 1 : (bpp + 7) / 8;
  vbe_start_ = vbe_line_offset_ * vbe_[dispi::kIndexYOffset] + vbe_[dispi::kIndexXOffset] * bytes;
  if (vbe_start_ >= kVramBytes) vbe_start_ = 0;
}

// ---- Memory -----------------------------------------------------------------------------

bool Vga::window_address(uint32_t offset, uint32_t* address) const {
  switch ((gr_[kGcMisc] >> 2) & 3) {
    case 0: *address = offset; return true;  // A0000, 128K
    case 1:                                  // A0000, 64K (the VBE bank window)
      if (offset >= 0x10000) return false;
      *address = offset + bank_offset_;
      return true;
    case 2:  // B0000, 32K
      if (offset < 0x10000 || offset >= 0x18000) return false;
      *address = offset - 0x10000;
      return true;
    default:  // B8000, 32K
      if (offset < 0x18000) return false;
      *address = offset - 0x18000;
      return true;
  }
}

uint8_t Vga::window_read(uint32_t offset) {
  uint32_t a = 0;
  if (!window_address(offset, &a)) return 0xFF;
  if ((sr_[kSeqMemoryMode] & kSeqChain4) != 0) return a < kVramBytes ? vram_[a] : 0xFF;
  if ((gr_[kGcMode] & 0x10) != 0) {  // odd/even: A0 picks plane 0/1 (2/3 with map select bit 1)
    const uint32_t plane = (gr_[kGcReadMap] & 2) | (a & 1);
    const uint32_t byte = ((a & ~1u) << 1) | plane;
    return byte < kVramBytes ? vram_[byte] : 0xFF;
  }
  if (a * 4 + 4 > kVramBytes) return 0xFF;
  latch_ = load32(&vram_[a * 4]);
  if ((gr_[kGcMode] & 0x08) == 0) return static_cast<uint8_t>(latch_ >> (8 * (gr_[kGcReadMap] & 3)));
  // Read mode 1: a bit is set where every plane not ignored matches the colour compare.
  uint32_t diff = (latch_ ^ expand_planes(gr_[kGcColorCompare])) & expand_planes(gr_[kGcColorDontCare]);
  diff |= diff >> 16;
  diff |= diff >> 8;
  return static_cast<uint8_t>(~diff);
}

void Vga::window_write(uint32_t offset, uint8_t value) {
  uint32_t a = 0;
  if (!window_address(offset, &a)) return;
  ++generation_;
  if ((sr_[kSeqMemoryMode] & kSeqChain4) != 0) {
    if (a < kVramBytes && ((sr_[kSeqPlaneMask] >> (a & 3)) & 1) != 0) vram_[a] = value;
    return;
  }
  if ((sr_[kSeqMemoryMode] & kSeqOddEvenOff) == 0) {  // odd/even
    const uint32_t plane = (gr_[kGcReadMap] & 2) | (a & 1);
    const uint32_t byte = ((a & ~1u) << 1) | plane;
    if (byte < kVramBytes && ((sr_[kSeqPlaneMask] >> plane) & 1) != 0) vram_[byte] = value;
    return;
  }
  if (a * 4 + 4 > kVramBytes) return;
  uint32_t v = 0;
  uint32_t bit_mask = gr_[kGcBitMask];
  const unsigned rotate = gr_[kGcDataRotate] & 7;
  const auto rotated = static_cast<uint8_t>((value >> rotate) | (value << (8 - rotate)));
  bool logic = true;
  switch (gr_[kGcMode] & 3) {
    case 0: {
      v = replicate(rotated);
      const uint32_t enable = expand_planes(gr_[kGcEnableSetReset]);
      v = (v & ~enable) | (expand_planes(gr_[kGcSetReset]) & enable);
      break;
    }
    case 1:  // the latches, as they are
      v = latch_;
      logic = false;
      break;
    case 2: v = expand_planes(value & 0x0F); break;
    default:  // 3: set/reset through a bit mask ANDed with the rotated byte
      bit_mask &= rotated;
      v = expand_planes(gr_[kGcSetReset]);
      break;
  }
  if (logic) {
    switch (gr_[kGcDataRotate] >> 3 & 3) {
      case 1: v &= latch_; break;
      case 2: v |= latch_; break;
      case 3: v ^= latch_; break;
      default: break;
    }
    const uint32_t mask = replicate(bit_mask);
    v = (v & mask) | (latch_ & ~mask);
  }
  const uint32_t planes = expand_planes(sr_[kSeqPlaneMask]);
  uint8_t* p = &vram_[a * 4];
  store32(p, (load32(p) & ~planes) | (v & planes));
}

uint32_t Vga::window_access_read(uint64_t offset, unsigned size) {
  ++stats_.window_reads;
  uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i) v |= uint32_t{window_read(static_cast<uint32_t>(offset) + i)} << (8 * i);
  return v;
}

void Vga::window_access_write(uint64_t offset, unsigned size, uint32_t value) {
  ++stats_.window_writes;
  for (unsigned i = 0; i < size; ++i)
    window_write(static_cast<uint32_t>(offset) + i, static_cast<uint8_t>(value >> (8 * i)));
}

uint32_t Vga::lfb_read(uint64_t offset, unsigned size) {
  ++stats_.lfb_reads;
  uint32_t v = 0;
  if (offset + size <= kVramBytes) std::memcpy(&v, &vram_[offset], size);
  return v;
}

void Vga::lfb_write(uint64_t offset, unsigned size, uint32_t value) {
  ++stats_.lfb_writes;
  if (offset + size > kVramBytes) return;
  std::memcpy(&vram_[offset], &value, size);
  ++generation_;
}

}  // namespace vmm86
