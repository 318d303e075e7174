#include "devices/firmware/fw_cfg.h"

#include <algorithm>
#include <array>
#include <limits>

namespace vmm86 {
namespace {

// Offsets from kIoBase.
constexpr uint16_t kSelectorPort = 0;
constexpr uint16_t kDataPort = 1;
constexpr uint16_t kDmaHighPort = 4;
constexpr uint16_t kDmaLowPort = 8;

constexpr uint16_t kEntryMask = 0x3FFF;  // the key within its generic or x86 half
constexpr size_t kDirectoryEntrySize = 64;
constexpr size_t kDmaAccessSize = 16;  // be32 control, be32 length, be64 address

void put_be16(std::vector<uint8_t>& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

void put_be32(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

uint64_t get_be(const uint8_t* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value = value << 8 | bytes[i];
  return value;
}

std::vector<uint8_t> little_endian(uint64_t value, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
  return bytes;
}

// The port value of a 32-bit access whose bytes, in port order, are a big-endian number
// (QEMU declares the DMA register DEVICE_BIG_ENDIAN).
uint32_t swap32(uint32_t value) {
  return (value >> 24) | (value >> 8 & 0xFF00) | (value << 8 & 0xFF0000) | (value << 24);
}

bool is_file_key(uint16_t key) { return (key & FwCfg::kArchLocal) == 0 && (key & kEntryMask) >= FwCfg::kFileFirst; }

}  // namespace

FwCfg::FwCfg(DmaMemory* dma) : dma_(dma) {
  items_[kSignature] = {'Q', 'E', 'M', 'U'};
  items_[kId] = little_endian(kIdTraditional | (dma != nullptr ? kIdDma : 0), 4);
  rebuild_directory();
  select(kSignature);
}

void FwCfg::reset() {
  select(kSignature);
  dma_address_high_ = 0;
}

uint32_t FwCfg::read(uint16_t offset, unsigned size) {
  if (size == 1 && (offset == kSelectorPort || offset == kDataPort)) return read_data();
  if (size == 4 && dma_ != nullptr && (offset == kDmaHighPort || offset == kDmaLowPort)) {
    const auto half = static_cast<uint32_t>(offset == kDmaHighPort ? kDmaSignature >> 32 : kDmaSignature);
    return swap32(half);
  }
  return size == 4 ? 0xFFFFFFFF : (1u << (8 * size)) - 1;  // nothing there, as the bus floats
}

void FwCfg::write(uint16_t offset, unsigned size, uint32_t value) {
  if (offset == kSelectorPort && size == 2) {
    select(static_cast<uint16_t>(value));
  } else if (dma_ != nullptr && size == 4 && offset == kDmaHighPort) {
    dma_address_high_ = swap32(value);
  } else if (dma_ != nullptr && size == 4 && offset == kDmaLowPort) {
    const uint64_t descriptor = uint64_t{dma_address_high_} << 32 | swap32(value);
    dma_address_high_ = 0;  // the register reads as 0 after an operation
    run_dma(descriptor);
  }
  // Data port writes have been ignored since QEMU 2.4; other widths are not decoded.
}

Status FwCfg::add_bytes(uint16_t key, std::vector<uint8_t> bytes) {
  if ((key & kWriteChannel) != 0) return make_error("fw_cfg key {:#06x} has the write-channel bit", key);
  if (key == kFileDir || is_file_key(key)) {
    return make_error("fw_cfg key {:#06x} belongs to the file directory; add a file instead", key);
  }
  if (bytes.size() > std::numeric_limits<uint32_t>::max()) {
    return make_error("fw_cfg item {:#06x} is over 4 GiB", key);
  }
  if (!items_.try_emplace(key, std::move(bytes)).second) return make_error("fw_cfg key {:#06x} is taken", key);
  selected_ = item(selected_key_);  // the guest may have selected the key before it existed
  return ok_status();
}

Status FwCfg::add_u16(uint16_t key, uint16_t value) { return add_bytes(key, little_endian(value, 2)); }
Status FwCfg::add_u32(uint16_t key, uint32_t value) { return add_bytes(key, little_endian(value, 4)); }
Status FwCfg::add_u64(uint16_t key, uint64_t value) { return add_bytes(key, little_endian(value, 8)); }

Status FwCfg::add_file(std::string_view name, std::vector<uint8_t> bytes) {
  if (name.empty()) return make_error("fw_cfg file name is empty");
  if (name.size() > kMaxNameLength) {
    return make_error("fw_cfg file name '{}' is longer than {} characters", name, kMaxNameLength);
  }
  if (name.find('\0') != std::string_view::npos) return make_error("fw_cfg file name contains NUL");
  if (bytes.size() > std::numeric_limits<uint32_t>::max()) {
    return make_error("fw_cfg file '{}' is over 4 GiB", name);
  }
  if (files_.size() >= size_t{kEntryMask} + 1 - kFileFirst) return make_error("fw_cfg has no key left for '{}'", name);
  if (!files_.try_emplace(std::string(name), std::move(bytes)).second) {
    return make_error("fw_cfg file '{}' exists", name);
  }
  rebuild_directory();
  selected_ = item(selected_key_);  // keys after the new name moved up by one
  return ok_status();
}

const std::vector<uint8_t>* FwCfg::item(uint16_t key) const {
  key &= static_cast<uint16_t>(~kWriteChannel);
  if (key == kFileDir) return &directory_;
  if (is_file_key(key)) {
    const size_t slot = key - kFileFirst;
    return slot < file_slots_.size() ? file_slots_[slot] : nullptr;
  }
  const auto it = items_.find(key);
  return it != items_.end() ? &it->second : nullptr;
}

uint16_t FwCfg::file_key(std::string_view name) const {
  uint16_t key = kFileFirst;
  for (const auto& [file_name, bytes] : files_) {
    if (file_name == name) return key;
    ++key;
  }
  return 0;
}

void FwCfg::select(uint16_t key) {
  selected_key_ = key;
  selected_ = item(key);
  offset_ = 0;
}

uint8_t FwCfg::read_data() {
  if (selected_ == nullptr || offset_ >= selected_->size()) return 0;
  return (*selected_)[offset_++];
}

void FwCfg::run_dma(uint64_t descriptor) {
  std::array<uint8_t, kDmaAccessSize> access{};
  if (!dma_->read(descriptor, access)) {
    // Nothing to go on; try to report it where the control field would be.
    static_cast<void>(dma_->write(descriptor, std::array<uint8_t, 4>{0, 0, 0, kDmaError}));
    return;
  }
  const auto control = static_cast<uint32_t>(get_be(&access[0], 4));
  const auto length = static_cast<uint32_t>(get_be(&access[4], 4));
  const uint64_t address = get_be(&access[8], 8);

  if ((control & kDmaSelect) != 0) select(static_cast<uint16_t>(control >> 16));
  // One operation per access; read wins over write, write over skip (the spec's order).
  bool ok = true;
  if ((control & kDmaRead) != 0) {
    ok = dma_read(address, length);
  } else if ((control & kDmaWrite) != 0) {
    ok = length == 0;  // every item is read-only
  } else if ((control & kDmaSkip) != 0) {
    const size_t remaining = selected_ != nullptr ? selected_->size() - std::min<size_t>(offset_, selected_->size())
                                                  : 0;
    offset_ += static_cast<uint32_t>(std::min<size_t>(length, remaining));
  }
  std::vector<uint8_t> result;
  put_be32(result, ok ? 0 : kDmaError);
  static_cast<void>(dma_->write(descriptor, result));
}

bool FwCfg::dma_read(uint64_t address, uint32_t length) {
  if (selected_ != nullptr && offset_ < selected_->size()) {
    const auto count = static_cast<uint32_t>(std::min<size_t>(length, selected_->size() - offset_));
    if (!dma_->write(address, std::span(selected_->data() + offset_, count))) return false;
    offset_ += count;
    address += count;
    length -= count;
  }
  // Past the end the guest gets zeros, as from the data port.
  static constexpr std::array<uint8_t, 4096> kZeros{};
  while (length > 0) {
    const auto count = std::min<uint32_t>(length, kZeros.size());
    if (!dma_->write(address, std::span(kZeros.data(), count))) return false;
    address += count;
    length -= count;
  }
  return true;
}

void FwCfg::rebuild_directory() {
  directory_.clear();
  file_slots_.clear();
  put_be32(directory_, static_cast<uint32_t>(files_.size()));
  uint16_t key = kFileFirst;
  for (const auto& [name, bytes] : files_) {
    put_be32(directory_, static_cast<uint32_t>(bytes.size()));
    put_be16(directory_, key++);
    put_be16(directory_, 0);  // reserved
    const size_t name_start = directory_.size();
    directory_.insert(directory_.end(), name.begin(), name.end());
    directory_.resize(name_start + (kDirectoryEntrySize - 8), 0);  // NUL-padded name[56]
    file_slots_.push_back(&bytes);
  }
}

}  // namespace vmm86
