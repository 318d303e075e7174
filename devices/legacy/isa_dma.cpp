#include "devices/legacy/isa_dma.h"

#include <algorithm>
#include <vector>

namespace vmm86 {
namespace {

// Register numbers within a controller (ports 0x00-0x0F; 0xC0 + 2 * n on controller 2).
constexpr unsigned kRegStatusCommand = 8;  ///< read: status, write: command
constexpr unsigned kRegRequest = 9;
constexpr unsigned kRegSingleMask = 10;
constexpr unsigned kRegMode = 11;
constexpr unsigned kRegClearFlipFlop = 12;
constexpr unsigned kRegMasterClear = 13;  ///< read: the temporary register
constexpr unsigned kRegClearMasks = 14;
constexpr unsigned kRegAllMasks = 15;

constexpr uint8_t kCommandDisable = 0x04;  ///< controller disable
constexpr uint8_t kModeTypeMask = 0x0C;
constexpr uint8_t kModeKindMask = 0xC0;
constexpr uint8_t kSetBit = 0x04;  ///< request and single-mask registers: set, else clear

/// Page register (offset from 0x80) of each channel.
constexpr std::array<uint8_t, IsaDma::kChannels> kPageIndex{0x7, 0x3, 0x1, 0x2, 0xF, 0xB, 0x9, 0xA};

constexpr unsigned unit_bytes(unsigned channel) { return channel >= 4 ? 2 : 1; }

}  // namespace

IsaDma::IsaDma(DmaMemory* memory) : memory_(memory) { reset(); }

void IsaDma::reset() {
  master_clear(0);
  master_clear(1);
}

void IsaDma::master_clear(unsigned controller) {
  controllers_[controller] = Controller{};
  masks_ |= static_cast<uint8_t>(0x0F << (4 * controller));
}

void IsaDma::attach(unsigned channel, IsaDmaClient* client) { clients_[channel % kChannels] = client; }

void IsaDma::set_dreq(unsigned channel, bool level) {
  const auto bit = static_cast<uint8_t>(1u << (channel % kChannels));
  dreq_ = static_cast<uint8_t>(level ? dreq_ | bit : dreq_ & ~bit);
  if (level) service();
}

bool IsaDma::channel_ready(unsigned channel) const {
  channel %= kChannels;
  if (channel == kCascadeChannel || (masks_ & (1u << channel)) != 0) return false;
  if ((controllers_[channel / 4].command & kCommandDisable) != 0) return false;
  if ((channels_[channel].mode & kModeKindMask) == kModeCascade) return false;
  if (channel >= 4) return true;
  // Controller 1 reaches the bus through controller 2's channel 0.
  return (masks_ & (1u << kCascadeChannel)) == 0 && (controllers_[1].command & kCommandDisable) == 0 &&
         (channels_[kCascadeChannel].mode & kModeKindMask) == kModeCascade;
}

void IsaDma::service() {
  if (servicing_) return;  // a client's dma_ready() called back into the controller
  servicing_ = true;
  for (unsigned ch = 0; ch < kChannels; ++ch) {
    if ((dreq_ & (1u << ch)) != 0 && clients_[ch] != nullptr && channel_ready(ch)) clients_[ch]->dma_ready(ch);
  }
  servicing_ = false;
}

IsaDmaTransfer IsaDma::to_memory(unsigned channel, std::span<const uint8_t> data) {
  // The buffer is only read in this direction; transfer() shares one signature for both.
  std::vector<uint8_t> copy(data.begin(), data.end());
  return transfer(channel % kChannels, Direction::ToMemory, copy);
}

IsaDmaTransfer IsaDma::from_memory(unsigned channel, std::span<uint8_t> out) {
  return transfer(channel % kChannels, Direction::FromMemory, out);
}

IsaDmaTransfer IsaDma::transfer(unsigned channel, Direction direction, std::span<uint8_t> buffer) {
  IsaDmaTransfer result;
  if (!channel_ready(channel)) return result;
  const IsaDmaChannel& c = channels_[channel];
  const unsigned width = unit_bytes(channel);
  const uint8_t type = c.mode & kModeTypeMask;
  const bool memory_access = direction == Direction::ToMemory ? type == kModeWrite : type == kModeRead;
  const size_t wanted = buffer.size() / width;
  size_t done = 0;
  while (done < wanted) {
    // Up to the end of the count and of the 64K-unit window (the page never changes).
    size_t chunk = std::min<size_t>(wanted - done, uint32_t{c.current_count} + 1);
    const bool down = (c.mode & kModeDecrement) != 0;
    chunk = std::min<size_t>(chunk, down ? uint32_t{c.current_address} + 1 : 0x10000u - c.current_address);
    move_block(channel, direction, memory_access, buffer.subspan(done * width, chunk * width));
    done += chunk;
    if (count_down(channel, static_cast<uint32_t>(chunk))) {
      result.terminal_count = true;
      break;
    }
  }
  result.bytes = done * width;
  bytes_transferred_ += result.bytes;
  return result;
}

void IsaDma::move_block(unsigned channel, Direction direction, bool memory_access, std::span<uint8_t> bytes) {
  IsaDmaChannel& c = channels_[channel];
  const unsigned width = unit_bytes(channel);
  const auto units = static_cast<uint32_t>(bytes.size() / width);
  const bool down = (c.mode & kModeDecrement) != 0;
  // The block's lowest address: counting down, unit i goes to current - i.
  const auto low = static_cast<uint16_t>(down ? c.current_address - (units - 1) : c.current_address);
  const uint64_t phys = physical_address(channel, low);
  // Decrementing transfers meet memory in the opposite unit order.
  auto reverse_units = [&](std::span<uint8_t> block) {
    for (uint32_t i = 0, j = units - 1; i < j; ++i, --j) {
      std::swap_ranges(block.begin() + i * width, block.begin() + (i + 1) * width, block.begin() + j * width);
    }
  };
  if (!memory_access) {
    if (direction == Direction::FromMemory) std::fill(bytes.begin(), bytes.end(), uint8_t{0xFF});
  } else if (direction == Direction::ToMemory) {
    if (down) reverse_units(bytes);
    memory_write(phys, bytes);
  } else {
    memory_read(phys, bytes);
    if (down) reverse_units(bytes);
  }
  c.current_address = static_cast<uint16_t>(down ? c.current_address - units : c.current_address + units);
}

bool IsaDma::count_down(unsigned channel, uint32_t units) {
  IsaDmaChannel& c = channels_[channel];
  if (units <= c.current_count) {
    c.current_count = static_cast<uint16_t>(c.current_count - units);
    return false;
  }
  // Terminal count: the count wrapped past zero.
  Controller& ctl = controllers_[channel / 4];
  const auto bit = static_cast<uint8_t>(1u << (channel % 4));
  ctl.terminal_counts |= bit;
  ctl.requests = static_cast<uint8_t>(ctl.requests & ~bit);
  if ((c.mode & kModeAutoinit) != 0) {
    c.current_address = c.base_address;
    c.current_count = c.base_count;
  } else {
    c.current_count = 0xFFFF;
    masks_ |= static_cast<uint8_t>(1u << channel);
  }
  return true;
}

uint8_t IsaDma::page(unsigned channel) const { return pages_[kPageIndex[channel % kChannels]]; }

uint64_t IsaDma::physical_address(unsigned channel, uint16_t address) const {
  const uint8_t page = pages_[kPageIndex[channel]];
  if (channel < 4) return uint64_t{page} << 16 | address;
  return uint64_t{static_cast<uint8_t>(page & 0xFE)} << 16 | uint64_t{address} << 1;
}

void IsaDma::memory_read(uint64_t phys, std::span<uint8_t> out) {
  // Outside RAM nothing answers the bus cycle: the data lines float high.
  if (memory_ == nullptr || !memory_->read(phys, out)) std::fill(out.begin(), out.end(), uint8_t{0xFF});
}

void IsaDma::memory_write(uint64_t phys, std::span<const uint8_t> data) {
  if (memory_ != nullptr) (void)memory_->write(phys, data);  // a write outside RAM goes nowhere
}

// ---- Registers -------------------------------------------------------------------------

uint8_t IsaDma::read_register(unsigned controller, unsigned reg) {
  Controller& ctl = controllers_[controller];
  if (reg < kRegStatusCommand) {
    const IsaDmaChannel& c = channels_[controller * 4 + reg / 2];
    const uint16_t value = (reg & 1) != 0 ? c.current_count : c.current_address;
    const bool high = ctl.flip_flop;
    ctl.flip_flop = !ctl.flip_flop;
    return static_cast<uint8_t>(high ? value >> 8 : value);
  }
  if (reg == kRegStatusCommand) {
    const auto pins = static_cast<uint8_t>((dreq_ >> (4 * controller)) & 0x0F);
    const auto status = static_cast<uint8_t>(ctl.terminal_counts | (pins | ctl.requests) << 4);
    ctl.terminal_counts = 0;  // reading the status clears the TC bits
    return status;
  }
  if (reg == kRegMasterClear) return 0;  // the temporary register (memory-to-memory only)
  return 0xFF;                           // write-only registers
}

void IsaDma::write_channel_register(unsigned controller, unsigned reg, uint8_t value) {
  Controller& ctl = controllers_[controller];
  IsaDmaChannel& c = channels_[controller * 4 + reg / 2];
  uint16_t& base = (reg & 1) != 0 ? c.base_count : c.base_address;
  uint16_t& current = (reg & 1) != 0 ? c.current_count : c.current_address;
  base = ctl.flip_flop ? static_cast<uint16_t>((base & 0x00FF) | value << 8)
                       : static_cast<uint16_t>((base & 0xFF00) | value);
  current = base;  // a write loads the base and the current register together
  ctl.flip_flop = !ctl.flip_flop;
}

void IsaDma::write_register(unsigned controller, unsigned reg, uint8_t value) {
  Controller& ctl = controllers_[controller];
  const auto channel_bit = static_cast<uint8_t>(1u << (4 * controller + (value & 3)));
  switch (reg) {
    case kRegStatusCommand: ctl.command = value; break;
    case kRegRequest: {
      const auto bit = static_cast<uint8_t>(1u << (value & 3));
      ctl.requests = static_cast<uint8_t>((value & kSetBit) != 0 ? ctl.requests | bit : ctl.requests & ~bit);
      break;
    }
    case kRegSingleMask:
      masks_ = static_cast<uint8_t>((value & kSetBit) != 0 ? masks_ | channel_bit : masks_ & ~channel_bit);
      break;
    case kRegMode: channels_[controller * 4 + (value & 3)].mode = value; break;
    case kRegClearFlipFlop: ctl.flip_flop = false; break;
    case kRegMasterClear: master_clear(controller); break;
    case kRegClearMasks: masks_ = static_cast<uint8_t>(masks_ & ~(0x0F << (4 * controller))); break;
    case kRegAllMasks:
      masks_ = static_cast<uint8_t>((masks_ & ~(0x0F << (4 * controller))) | (value & 0x0F) << (4 * controller));
      break;
    default: write_channel_register(controller, reg, value); return;
  }
  service();  // a channel may have become ready for a device that waits
}

uint32_t IsaDma::Ports::read(uint16_t offset, unsigned /*size*/) {
  if (controller_ < 0) return dma_.pages_[(offset + 1u) & 0x0F];
  const auto ctl = static_cast<unsigned>(controller_);
  return dma_.read_register(ctl, ctl == 0 ? offset & 0x0Fu : (offset >> 1) & 0x0Fu);
}

void IsaDma::Ports::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  const auto byte = static_cast<uint8_t>(value);
  if (controller_ < 0) {
    dma_.pages_[(offset + 1u) & 0x0F] = byte;
    return;
  }
  const auto ctl = static_cast<unsigned>(controller_);
  dma_.write_register(ctl, ctl == 0 ? offset & 0x0Fu : (offset >> 1) & 0x0Fu, byte);
}

}  // namespace vmm86
