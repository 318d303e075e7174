#include "devices/storage/ide_bus_master.h"

#include <algorithm>

namespace vmm86 {
namespace {

constexpr uint32_t kPrdEndOfTable = 0x80000000;
constexpr uint32_t kMaxPrdEntries = 0x10000 / 8;

// A guest PRD table as a DmaStream: entries are fetched as they are needed.
class PrdStream final : public DmaStream {
 public:
  PrdStream(DmaMemory& memory, uint32_t table) : memory_(memory), table_(table) {}

  DmaStatus to_guest(std::span<const uint8_t> data) override {
    return transfer(data.size(), [&](uint64_t phys, size_t done, size_t length) {
      return memory_.write(phys, data.subspan(done, length));
    });
  }
  DmaStatus from_guest(std::span<uint8_t> out) override {
    return transfer(out.size(), [&](uint64_t phys, size_t done, size_t length) {
      return memory_.read(phys, out.subspan(done, length));
    });
  }
  /// The entry marked EOT has been used up.
  [[nodiscard]] bool table_used_up() const { return ended_ && left_ == 0; }

 private:
  template <class Copy>
  DmaStatus transfer(size_t total, Copy copy) {
    size_t done = 0;
    while (done < total) {
      if (left_ == 0) {
        if (ended_ || index_ >= kMaxPrdEntries) return DmaStatus::TableTooShort;
        if (!next_entry()) return DmaStatus::MemoryError;
        continue;
      }
      const size_t length = std::min<size_t>(left_, total - done);
      if (!copy(address_, done, length)) return DmaStatus::MemoryError;
      address_ += length;
      left_ -= static_cast<uint32_t>(length);
      done += length;
    }
    return DmaStatus::Ok;
  }

  bool next_entry() {
    std::array<uint8_t, 8> entry{};
    if (!memory_.read(uint64_t{table_} + uint64_t{index_} * 8, entry)) return false;
    ++index_;
    auto dword = [&](size_t at) {
      return static_cast<uint32_t>(entry[at]) | static_cast<uint32_t>(entry[at + 1]) << 8 |
             static_cast<uint32_t>(entry[at + 2]) << 16 | static_cast<uint32_t>(entry[at + 3]) << 24;
    };
    const uint32_t flags_count = dword(4);
    address_ = dword(0) & ~uint32_t{1};
    const uint32_t count = flags_count & 0xFFFE;
    left_ = count == 0 ? 0x10000 : count;
    ended_ = (flags_count & kPrdEndOfTable) != 0;
    return true;
  }

  DmaMemory& memory_;
  uint32_t table_;
  uint32_t index_ = 0;
  uint64_t address_ = 0;
  uint32_t left_ = 0;
  bool ended_ = false;
};

}  // namespace

IdeBusMaster::IdeBusMaster(DmaMemory& memory, IdeChannel& primary, IdeChannel& secondary) : memory_(memory) {
  engines_[0].channel = &primary;
  engines_[1].channel = &secondary;
  for (Engine& engine : engines_) {
    engine.owner = this;
    engine.channel->set_dma_listener(&engine);
  }
}

IdeBusMaster::~IdeBusMaster() {
  for (Engine& engine : engines_) engine.channel->set_dma_listener(nullptr);
}

void IdeBusMaster::reset() {
  for (Engine& engine : engines_) engine.regs = {};
}

void IdeBusMaster::Engine::dma_requested() {
  if ((regs.command & kCommandStart) != 0 && (regs.status & kStatusActive) != 0) owner->run(*this);
}

void IdeBusMaster::run(Engine& engine) {
  PrdStream stream(memory_, engine.regs.prd_table);
  const DmaStatus status = engine.channel->run_dma(stream);
  switch (status) {
    case DmaStatus::Ok:
      if (stream.table_used_up()) engine.regs.status &= static_cast<uint8_t>(~kStatusActive);
      break;
    case DmaStatus::TableTooShort: engine.regs.status &= static_cast<uint8_t>(~kStatusActive); break;
    case DmaStatus::MemoryError:
      engine.regs.status = static_cast<uint8_t>((engine.regs.status | kStatusError) & ~kStatusActive);
      break;
  }
}

uint8_t IdeBusMaster::read_byte(uint16_t offset) const {
  const ChannelRegs& regs = engines_[(offset >> 3) & 1].regs;
  switch (offset & 7) {
    case 0: return regs.command;
    case 2: return regs.status;
    case 4: return static_cast<uint8_t>(regs.prd_table);
    case 5: return static_cast<uint8_t>(regs.prd_table >> 8);
    case 6: return static_cast<uint8_t>(regs.prd_table >> 16);
    case 7: return static_cast<uint8_t>(regs.prd_table >> 24);
    default: return 0;
  }
}

void IdeBusMaster::write_byte(uint16_t offset, uint8_t value) {
  Engine& engine = engines_[(offset >> 3) & 1];
  ChannelRegs& regs = engine.regs;
  const unsigned byte = offset & 7u;
  switch (byte) {
    case 0: {
      const bool was_started = (regs.command & kCommandStart) != 0;
      regs.command = value & (kCommandStart | kCommandToMemory);
      if ((value & kCommandStart) == 0) {
        // Stopping aborts the transfer; the device keeps waiting (the guest resets it).
        regs.status &= static_cast<uint8_t>(~kStatusActive);
      } else if (!was_started) {
        regs.status |= kStatusActive;
        if (engine.channel->dma_requested()) run(engine);
      }
      break;
    }
    case 2:
      regs.status = static_cast<uint8_t>((regs.status & (kStatusActive | kStatusError | kStatusInterrupt)) |
                                         (value & (kStatusDrive0Dma | kStatusDrive1Dma)));
      regs.status &= static_cast<uint8_t>(~(value & (kStatusError | kStatusInterrupt)));
      break;
    case 4:
    case 5:
    case 6:
    case 7: {
      const unsigned shift = 8 * (byte - 4);
      regs.prd_table = (regs.prd_table & ~(0xFFu << shift)) | static_cast<uint32_t>(value) << shift;
      regs.prd_table &= ~uint32_t{3};  // dword aligned
      break;
    }
    default: break;
  }
}

uint32_t IdeBusMaster::read(uint16_t offset, unsigned size) {
  uint32_t value = 0;
  for (unsigned i = 0; i < size && offset + i < kPorts; ++i) {
    value |= static_cast<uint32_t>(read_byte(static_cast<uint16_t>(offset + i))) << (8 * i);
  }
  return value;
}

void IdeBusMaster::write(uint16_t offset, unsigned size, uint32_t value) {
  for (unsigned i = 0; i < size && offset + i < kPorts; ++i) {
    write_byte(static_cast<uint16_t>(offset + i), static_cast<uint8_t>(value >> (8 * i)));
  }
}

}  // namespace vmm86
