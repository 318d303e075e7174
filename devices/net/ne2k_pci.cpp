#include "devices/net/ne2k_pci.h"

#include <algorithm>

namespace vmm86 {
namespace {

constexpr uint32_t kNetworkClass = 0x020000;  // network controller, Ethernet
// QEMU's subsystem IDs for its PCI devices (Red Hat, QEMU): what a guest saw there.
constexpr uint16_t kQemuSubsystemVendor = 0x1AF4;
constexpr uint16_t kQemuSubsystem = 0x1100;
constexpr uint16_t kCommandWritable = pci_command::kIoSpace | pci_command::kBusMaster | pci_command::kIntxDisable;
constexpr uint32_t kLocalSize = 0x10000;
constexpr uint32_t kPromSize = 32;

// CR (all pages, offset 0).
constexpr uint8_t kCrStop = 0x01;
constexpr uint8_t kCrStart = 0x02;
constexpr uint8_t kCrTransmit = 0x04;
constexpr uint8_t kCrDmaMask = 0x38;  // RD2-RD0: 1 read, 2 write, 3 send packet, 4+ abort
constexpr uint8_t kCrDmaRead = 0x08;
constexpr uint8_t kCrDmaWrite = 0x10;
constexpr unsigned kCrPageShift = 6;

// ISR bits.
constexpr uint8_t kIsrRx = 0x01;
constexpr uint8_t kIsrTx = 0x02;
constexpr uint8_t kIsrTxError = 0x08;
constexpr uint8_t kIsrCounters = 0x20;
constexpr uint8_t kIsrDmaDone = 0x40;
constexpr uint8_t kIsrReset = 0x80;
// TSR and RSR bits.
constexpr uint8_t kTsrOk = 0x01;
constexpr uint8_t kTsrCarrierLost = 0x04;
constexpr uint8_t kTsrAborted = 0x08;
constexpr uint8_t kRsrOk = 0x01;
constexpr uint8_t kRsrMulticast = 0x20;
// RCR (receive configuration): accept broadcast, multicast, all; monitor mode.
constexpr uint8_t kRcrBroadcast = 0x04;
constexpr uint8_t kRcrMulticast = 0x08;
constexpr uint8_t kRcrPromiscuous = 0x10;
constexpr uint8_t kRcrMonitor = 0x20;
constexpr uint8_t kTcrLoopback = 0x06;  // LB1, LB0: any loopback mode
constexpr uint8_t kDcrWordTransfer = 0x01;

// Page 0 registers (reads, then the writes that differ).
constexpr unsigned kClda0 = 0x01, kClda1 = 0x02, kBnry = 0x03, kTsr = 0x04, kNcr = 0x05, kFifo = 0x06, kIsr = 0x07,
                   kCrda0 = 0x08, kCrda1 = 0x09, kRtlId0 = 0x0A, kRtlId1 = 0x0B, kRsr = 0x0C, kCntr0 = 0x0D;
constexpr unsigned kPstart = 0x01, kPstop = 0x02, kTpsr = 0x04, kTbcr0 = 0x05, kTbcr1 = 0x06, kRsar0 = 0x08,
                   kRsar1 = 0x09, kRbcr0 = 0x0A, kRbcr1 = 0x0B, kRcr = 0x0C, kTcr = 0x0D, kDcr = 0x0E, kImr = 0x0F;
// Page 1: PAR0-5 at 1-6, CURR at 7, MAR0-7 at 8-15.
constexpr unsigned kPar0 = 0x01, kCurr = 0x07, kMar0 = 0x08;
// Page 3 (RTL8029): CONFIG2, CONFIG3 as QEMU reads them (10BASE-T, full duplex).
constexpr unsigned kConfig2 = 0x05, kConfig3 = 0x06;
constexpr uint8_t kConfigValue = 0x40;
// The RTL8029's ID in page 0 registers 0x0A/0x0B ('P', 'C').
constexpr uint8_t kRtlIdValue0 = 0x50, kRtlIdValue1 = 0x43;

constexpr uint8_t lo(uint16_t v) { return static_cast<uint8_t>(v); }
constexpr uint8_t hi(uint16_t v) { return static_cast<uint8_t>(v >> 8); }
constexpr uint16_t with_lo(uint16_t v, uint8_t b) { return static_cast<uint16_t>((v & 0xFF00) | b); }
constexpr uint16_t with_hi(uint16_t v, uint8_t b) { return static_cast<uint16_t>((v & 0x00FF) | b << 8); }

/// The Ethernet CRC-32 of a multicast address, most significant bit first, as the 8390
/// hashes it: its top six bits pick one of the 64 MAR bits.
unsigned multicast_hash(std::span<const uint8_t> address) {
  uint32_t crc = 0xFFFFFFFF;
  for (uint8_t byte : address) {
    for (int bit = 0; bit < 8; ++bit, byte >>= 1) {
      const bool carry = ((crc >> 31) ^ (byte & 1u)) != 0;
      crc <<= 1;
      if (carry) crc ^= 0x04C11DB7;
    }
  }
  return crc >> 26;
}

}  // namespace

Ne2kPci::Ne2kPci(const std::array<uint8_t, 6>& mac, InterruptPin interrupt)
    : PciFunction(PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = 0,
                              .class_code = kNetworkClass,
                              .header_type = 0,
                              .subsystem_vendor_id = kQemuSubsystemVendor,
                              .subsystem_id = kQemuSubsystem,
                              .interrupt_pin = 1}),
      mac_(mac),
      interrupt_(std::move(interrupt)),
      mem_(kLocalSize, 0) {
  define_register(pci_reg::kCommand, 2, 0, kCommandWritable);
  define_register(pci_reg::kStatus, 2, 0, 0, pci_status::kWriteOneToClear);
  define_register(pci_reg::kInterruptLine, 1, 0, 0xFF);
  define_bar(kIoBar, PciSpace::Io, kIoSize);
  reset_nic();
}

void Ne2kPci::reset_nic() {
  std::fill(mem_.begin(), mem_.end(), 0);
  for (unsigned i = 0; i < mac_.size(); ++i) mem_[2 * i] = mem_[2 * i + 1] = mac_[i];
  mem_[14] = mem_[15] = 'W';  // a 16-bit card (the NE2000 convention drivers test)
  cr_ = kCrStop | 0x20;       // stopped, remote DMA aborted, page 0
  isr_ = kIsrReset;
  imr_ = 0;
  pstart_ = pstop_ = bnry_ = curr_ = tpsr_ = 0;
  tbcr_ = rsar_ = rbcr_ = 0;
  rcr_ = tcr_ = dcr_ = tsr_ = rsr_ = 0;
  counters_ = {};
  par_ = {};
  mar_ = {};
  queue_.clear();
  update_irq();
}

uint8_t Ne2kPci::local_byte(uint16_t address) const {
  if (address < kPromSize || (address >= kRamStart && address < kRamEnd)) return mem_[address];
  return 0xFF;
}

void Ne2kPci::write_local(uint32_t address, uint8_t value) {
  address &= kLocalSize - 1;
  if (address >= kRamStart && address < kRamEnd) mem_[address] = value;
}

// ---- Port I/O ---------------------------------------------------------------------------

uint32_t Ne2kPci::read(uint16_t offset, unsigned size) {
  ++stats_.io_accesses;
  if (offset >= kDataPort && offset < kResetPort) return read_data(size);
  if (offset >= kResetPort) {
    reset_nic();  // reading the reset port resets the card (what the drivers do)
    return 0;
  }
  uint32_t value = 0;  // a wide access to the registers reads consecutive ones
  for (unsigned i = 0; i < size && offset + i < kDataPort; ++i) value |= uint32_t{read_register(offset + i)} << 8 * i;
  return value;
}

void Ne2kPci::write(uint16_t offset, unsigned size, uint32_t value) {
  ++stats_.io_accesses;
  if (offset >= kDataPort && offset < kResetPort) {
    write_data(size, value);
    return;
  }
  if (offset >= kResetPort) return;  // writes to the reset port do nothing
  for (unsigned i = 0; i < size && offset + i < kDataPort; ++i) {
    write_register(offset + i, static_cast<uint8_t>(value >> 8 * i));
  }
}

uint8_t Ne2kPci::read_register(unsigned reg) {
  if (reg == 0) return cr_;
  switch (cr_ >> kCrPageShift) {
    case 0:
      switch (reg) {
        case kClda0: return lo(rsar_);
        case kClda1: return hi(rsar_);
        case kBnry: return bnry_;
        case kTsr: return tsr_;
        case kNcr:
        case kFifo: return 0;
        case kIsr: return isr_;
        case kCrda0: return lo(rsar_);
        case kCrda1: return hi(rsar_);
        case kRtlId0: return kRtlIdValue0;
        case kRtlId1: return kRtlIdValue1;
        case kRsr: return rsr_;
        default: {  // CNTR0-2 clear when read
          const unsigned n = reg - kCntr0;
          const uint8_t count = counters_[n];
          counters_[n] = 0;
          return count;
        }
      }
    case 1:
      if (reg < kCurr) return par_[reg - kPar0];
      if (reg == kCurr) return curr_;
      return mar_[reg - kMar0];
    case 2:
      switch (reg) {
        case kPstart: return pstart_;
        case kPstop: return pstop_;
        case kTpsr: return tpsr_;
        case kRcr: return rcr_;
        case kTcr: return tcr_;
        case kDcr: return dcr_;
        case kImr: return imr_;
        default: return 0;
      }
    default: return reg == kConfig2 || reg == kConfig3 ? kConfigValue : 0;
  }
}

void Ne2kPci::write_register(unsigned reg, uint8_t value) {
  if (reg == 0) {
    write_command(value);
    return;
  }
  switch (cr_ >> kCrPageShift) {
    case 0:
      switch (reg) {
        case kPstart: pstart_ = value; break;
        case kPstop: pstop_ = value; break;
        case kBnry:
          bnry_ = value;
          drain_queue();  // the guest freed ring pages
          break;
        case kTpsr: tpsr_ = value; break;
        case kTbcr0: tbcr_ = with_lo(tbcr_, value); break;
        case kTbcr1: tbcr_ = with_hi(tbcr_, value); break;
        case kIsr:
          isr_ &= static_cast<uint8_t>(~(value & 0x7F));  // write 1 to clear; RST is status
          if (value & kIsrRx) {
            drain_queue();
            // Linux's ei_receive takes at most 10 frames, then acks PRX: frames left in the
            // ring (or stored after its last look at CURR) would wait for the next frame
            // from the wire, and with a full ring no frame can come. Keep PRX up.
            if (ring_pending()) isr_ |= kIsrRx;
          }
          update_irq();
          break;
        case kRsar0: rsar_ = with_lo(rsar_, value); break;
        case kRsar1: rsar_ = with_hi(rsar_, value); break;
        case kRbcr0: rbcr_ = with_lo(rbcr_, value); break;
        case kRbcr1: rbcr_ = with_hi(rbcr_, value); break;
        case kRcr: rcr_ = value; break;
        case kTcr: tcr_ = value; break;
        case kDcr: dcr_ = value; break;
        case kImr:
          imr_ = value & 0x7F;
          update_irq();
          break;
        default: break;
      }
      break;
    case 1:
      if (reg < kCurr) {
        par_[reg - kPar0] = value;
      } else if (reg == kCurr) {
        curr_ = value;
        drain_queue();
      } else {
        mar_[reg - kMar0] = value;
      }
      break;
    default: break;  // page 2 is read-only diagnostics; page 3 configuration is not kept
  }
}

void Ne2kPci::write_command(uint8_t value) {
  cr_ = value;
  if (value & kCrStop) return;
  isr_ &= static_cast<uint8_t>(~kIsrReset);
  // A remote read or write of zero bytes completes at once.
  const uint8_t dma = value & kCrDmaMask;
  if ((dma == kCrDmaRead || dma == kCrDmaWrite) && rbcr_ == 0) isr_ |= kIsrDmaDone;
  if (value & kCrTransmit) transmit();
  update_irq();
  if (value & kCrStart) drain_queue();
}

// ---- Remote DMA ---------------------------------------------------------------------------

uint32_t Ne2kPci::read_data(unsigned size) {
  // A byte access in word mode still moves a word; the byte read is its low half.
  const unsigned bytes = size == 4 ? 4 : (dcr_ & kDcrWordTransfer) ? 2 : 1;
  uint32_t value = 0;
  for (unsigned i = 0; i < bytes; ++i) {
    value |= uint32_t{local_byte(static_cast<uint16_t>(rsar_ + i))} << 8 * i;
  }
  advance_dma(bytes);
  return size == 1 ? value & 0xFF : value;
}

void Ne2kPci::write_data(unsigned size, uint32_t value) {
  const unsigned bytes = size == 4 ? 4 : (dcr_ & kDcrWordTransfer) ? 2 : 1;
  for (unsigned i = 0; i < bytes; ++i) write_local(uint32_t{rsar_} + i, static_cast<uint8_t>(value >> 8 * i));
  advance_dma(bytes);
}

void Ne2kPci::advance_dma(unsigned bytes) {
  rsar_ = static_cast<uint16_t>(rsar_ + bytes);
  // The remote DMA wraps from the ring's end to its start, as the local DMA does.
  if (pstop_ > pstart_ && rsar_ == uint16_t{pstop_} << 8) rsar_ = static_cast<uint16_t>(pstart_ << 8);
  if (rbcr_ <= bytes) {
    if (rbcr_ != 0) {
      isr_ |= kIsrDmaDone;
      update_irq();
    }
    rbcr_ = 0;
  } else {
    rbcr_ = static_cast<uint16_t>(rbcr_ - bytes);
  }
}

// ---- Transmit -------------------------------------------------------------------------------

void Ne2kPci::transmit() {
  cr_ &= static_cast<uint8_t>(~kCrTransmit);
  const uint32_t start = uint32_t{tpsr_} << 8;
  const uint32_t length = tbcr_;
  if (length < kEthHeaderBytes || length > kEthMaxTaggedFrame || start < kRamStart || start + length > kRamEnd) {
    ++stats_.tx_errors;
    tsr_ = kTsrAborted;
    isr_ |= kIsrTxError;
    update_irq();
    return;
  }
  const std::span<const uint8_t> frame(mem_.data() + start, length);
  tsr_ = kTsrOk;
  if (!link_up_) {
    tsr_ |= kTsrCarrierLost;
  } else if (tcr_ & kTcrLoopback) {
    // Internal or external loopback: the frame comes back to our own receiver, not the wire.
    const std::vector<uint8_t> copy(frame.begin(), frame.end());
    (void)store_frame(copy);
  } else {
    ++stats_.tx_frames;
    stats_.tx_bytes += length;
    if (backend_ != nullptr) backend_->send(frame);
  }
  isr_ |= kIsrTx;
  update_irq();
}

// ---- Receive --------------------------------------------------------------------------------

bool Ne2kPci::accepts(std::span<const uint8_t> frame) const {
  if (rcr_ & kRcrPromiscuous) return true;
  const bool group = (frame[0] & 1) != 0;
  if (!group) return std::equal(par_.begin(), par_.end(), frame.begin());
  if (std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xFF; })) {
    return (rcr_ & kRcrBroadcast) != 0;
  }
  if (!(rcr_ & kRcrMulticast)) return false;
  const unsigned hash = multicast_hash(frame.first(6));
  return (mar_[hash >> 3] >> (hash & 7) & 1) != 0;
}

bool Ne2kPci::ring_valid() const {
  return pstart_ < pstop_ && uint32_t{pstart_} << 8 >= kRamStart && uint32_t{pstop_} << 8 <= kRamEnd &&
         curr_ >= pstart_ && curr_ < pstop_;
}

uint32_t Ne2kPci::ring_offset(uint8_t page) const {
  // Pages relative to PSTART, modulo the ring: Linux writes BNRY = next - 1 even when next
  // is PSTART, which puts BNRY one page before the ring (meaning its last page).
  const uint32_t pages = uint32_t{pstop_} - pstart_;
  return static_cast<uint32_t>((static_cast<int32_t>(page) - pstart_) % static_cast<int32_t>(pages) +
                               static_cast<int32_t>(pages)) %
         pages;
}

bool Ne2kPci::ring_pending() const {
  if (!ring_valid()) return false;
  // Empty either way drivers keep BNRY: on the next page to read (the datasheet's) or one
  // behind it (Linux's).
  const uint32_t pages = uint32_t{pstop_} - pstart_;
  const uint32_t bnry = ring_offset(bnry_);
  const uint32_t curr = ring_offset(curr_);
  return curr != bnry && curr != (bnry + 1) % pages;
}

void Ne2kPci::receive(std::span<const uint8_t> frame) {
  if (frame.size() < kEthHeaderBytes || frame.size() > kEthMaxTaggedFrame || !link_up_) {
    drop_frame();
    return;
  }
  if (!accepts(frame)) {
    ++stats_.rx_filtered;
    return;
  }
  if (queue_.empty() && store_frame(frame)) return;
  if (queue_.size() >= kMaxQueuedFrames) {
    drop_frame();
    return;
  }
  ++stats_.rx_queued;
  queue_.emplace_back(frame.begin(), frame.end());
}

void Ne2kPci::drain_queue() {
  while (!queue_.empty() && store_frame(queue_.front())) queue_.pop_front();
}

void Ne2kPci::drop_frame() {
  ++stats_.rx_dropped;
  uint8_t& missed = counters_[2];
  if (missed != 0xFF) ++missed;
  // The counter's top bit set interrupts (ISR.CNT), so the driver reads and clears it.
  if (missed & 0x80) {
    isr_ |= kIsrCounters;
    update_irq();
  }
}

bool Ne2kPci::store_frame(std::span<const uint8_t> frame) {
  if (cr_ & kCrStop) return false;  // stopped: waits for the start (or is dropped by the queue)
  if (!ring_valid()) return false;
  if (rcr_ & kRcrMonitor) {
    // Monitor mode checks the frame and counts it, but stores nothing.
    return true;
  }
  const uint32_t size = std::max<uint32_t>(static_cast<uint32_t>(frame.size()), kEthMinFrame);
  const uint32_t count = size + 4;  // the byte count includes the 4-byte header
  // Pages taken, with QEMU's slack of 4 bytes so that Linux's next-page check holds for
  // every length.
  const uint32_t pages = (count + 4 + 255) >> 8;
  const uint32_t ring_pages = uint32_t{pstop_} - pstart_;
  // The 8390 stops when its local DMA would enter the page at BNRY: pages CURR+1 ..
  // CURR+pages-1 must all be before it (BNRY == CURR is an empty ring).
  const uint32_t distance = (ring_offset(bnry_) + ring_pages - ring_offset(curr_)) % ring_pages;
  if (pages > ring_pages || (distance != 0 && distance < pages)) return false;

  uint32_t next = curr_ + pages;
  if (next >= pstop_) next -= ring_pages;
  rsr_ = static_cast<uint8_t>(kRsrOk | ((frame[0] & 1) ? kRsrMulticast : 0));
  uint32_t address = uint32_t{curr_} << 8;
  const uint32_t ring_start = uint32_t{pstart_} << 8;
  const uint32_t ring_end = uint32_t{pstop_} << 8;
  auto put = [&](uint8_t byte) {
    write_local(address, byte);
    if (++address == ring_end) address = ring_start;
  };
  put(rsr_);
  put(static_cast<uint8_t>(next));
  put(static_cast<uint8_t>(count));
  put(static_cast<uint8_t>(count >> 8));
  for (uint32_t i = 0; i < size; ++i) put(i < frame.size() ? frame[i] : 0);  // runts padded
  curr_ = static_cast<uint8_t>(next);
  ++stats_.rx_frames;
  stats_.rx_bytes += frame.size();
  isr_ |= kIsrRx;
  update_irq();
  return true;
}

// ---- Interrupts -----------------------------------------------------------------------------

void Ne2kPci::config_written(uint8_t reg, unsigned size) {
  if (reg < pci_reg::kCommand + 2 && pci_reg::kCommand < reg + size) update_irq();  // INTx disable
}

void Ne2kPci::update_irq() {
  const bool pending = (isr_ & imr_ & 0x7F) != 0;
  const uint16_t status = config_word(pci_reg::kStatus);
  store(pci_reg::kStatus, 2, pending ? status | pci_status::kInterrupt : status & ~pci_status::kInterrupt);
  const bool level = pending && !intx_disabled();
  if (level == irq_level_) return;
  irq_level_ = level;
  if (level) ++stats_.interrupts;
  if (interrupt_) interrupt_(level);
}

}  // namespace vmm86
