#include "devices/legacy/uart16550.h"

#include <algorithm>

namespace vmm86 {
namespace {

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint16_t kRbrThr = 0;
constexpr uint16_t kIer = 1;
constexpr uint16_t kIirFcr = 2;
constexpr uint16_t kLcr = 3;
constexpr uint16_t kMcr = 4;
constexpr uint16_t kLsr = 5;
constexpr uint16_t kMsr = 6;
constexpr uint16_t kScr = 7;
// IER
constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThre = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
constexpr uint8_t kIerMask = 0x0F;
// IIR, in priority order
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirRxTimeout = 0x0C;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirIdMask = 0x0F;
constexpr uint8_t kIirFifosEnabled = 0xC0;
// FCR
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrStored = 0xC9;  // enable, DMA mode, trigger; no 64-byte FIFO on a 16550A
// LCR
constexpr uint8_t kLcrDlab = 0x80;
// MCR
constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1F;
// LSR
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrErrors = 0x1E;  // OE PE FE BI
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;
// MSR
constexpr uint8_t kMsrDcts = 0x01;
constexpr uint8_t kMsrDdsr = 0x02;
constexpr uint8_t kMsrTeri = 0x04;
constexpr uint8_t kMsrDdcd = 0x08;
constexpr uint8_t kMsrDeltas = 0x0F;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
// The host side behaves like a connected, ready terminal.
constexpr uint8_t kHostModemStatus = kMsrDcd | kMsrDsr | kMsrCts;

constexpr std::array<unsigned, 4> kRxTriggerLevels = {1, 4, 8, 14};

}  // namespace

Uart16550::Uart16550(IrqLine irq) : irq_(irq) { regs_.msr = kHostModemStatus; }

void Uart16550::reset() {
  regs_ = Uart16550Regs{};
  regs_.msr = kHostModemStatus;
  rx_head_ = 0;
  rx_count_ = 0;
  update_irq();
}

unsigned Uart16550::rx_trigger() const { return kRxTriggerLevels[regs_.fcr >> 6]; }

uint8_t Uart16550::interrupt_id() const {
  uint8_t id = kIirNone;
  if ((regs_.ier & kIerLineStatus) && (regs_.lsr & kLsrErrors)) {
    id = kIirLineStatus;
  } else if ((regs_.ier & kIerRxData) && rx_count_ > 0) {
    id = fifo_enabled() && rx_count_ < rx_trigger() ? kIirRxTimeout : kIirRxData;
  } else if ((regs_.ier & kIerThre) && regs_.thre_pending) {
    id = kIirThre;
  } else if ((regs_.ier & kIerModemStatus) && (regs_.msr & kMsrDeltas)) {
    id = kIirModemStatus;
  }
  return static_cast<uint8_t>(id | (fifo_enabled() ? kIirFifosEnabled : 0));
}

uint32_t Uart16550::read(uint16_t offset, unsigned /*size*/) {
  const bool dlab = (regs_.lcr & kLcrDlab) != 0;
  switch (offset) {
    case kRbrThr: {
      if (dlab) return regs_.dll;
      const uint8_t byte = rx_pop();
      update_irq();
      return byte;
    }
    case kIer: return dlab ? regs_.dlm : regs_.ier;
    case kIirFcr: {
      const uint8_t iir = interrupt_id();
      if ((iir & kIirIdMask) == kIirThre) {
        regs_.thre_pending = false;  // reading IIR acknowledges THRE
        update_irq();
      }
      return iir;
    }
    case kLcr: return regs_.lcr;
    case kMcr: return regs_.mcr;
    case kLsr: {
      const uint8_t lsr = static_cast<uint8_t>(regs_.lsr | (rx_count_ > 0 ? kLsrDataReady : 0) | kLsrThre | kLsrTemt);
      regs_.lsr &= static_cast<uint8_t>(~kLsrErrors);
      update_irq();
      return lsr;
    }
    case kMsr: {
      const uint8_t msr = regs_.msr;
      regs_.msr &= static_cast<uint8_t>(~kMsrDeltas);
      update_irq();
      return msr;
    }
    case kScr: return regs_.scr;
    default: return 0xFF;
  }
}

void Uart16550::write(uint16_t offset, unsigned /*size*/, uint32_t value) {
  const auto byte = static_cast<uint8_t>(value);
  const bool dlab = (regs_.lcr & kLcrDlab) != 0;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        regs_.dll = byte;
      } else {
        transmit(byte);
      }
      break;
    case kIer:
      if (dlab) {
        regs_.dlm = byte;
      } else {
        // Enabling THRE while THR is empty (it always is) raises THRE again, even if an
        // IIR read had cleared it; Linux's THRE test at port start-up depends on it.
        if ((byte & kIerThre) && !(regs_.ier & kIerThre)) regs_.thre_pending = true;
        regs_.ier = byte & kIerMask;
        update_irq();
      }
      break;
    case kIirFcr: write_fcr(byte); break;
    case kLcr: regs_.lcr = byte; break;
    case kMcr: write_mcr(byte); break;
    case kScr: regs_.scr = byte; break;
    default: break;  // LSR and MSR writes are factory-test only
  }
}

size_t Uart16550::push_input(std::span<const uint8_t> bytes) {
  if (regs_.mcr & kMcrLoop) return 0;  // loopback disconnects the receiver input
  const size_t n = std::min(bytes.size(), rx_free());
  for (size_t i = 0; i < n; ++i) rx_push(bytes[i]);
  stats_.rx_bytes += n;
  update_irq();
  return n;
}

void Uart16550::rx_push(uint8_t byte) {
  if (rx_count_ == rx_capacity()) {
    // Overrun: a FIFO keeps its contents and loses the new byte; the lone holding
    // register is overwritten.
    regs_.lsr |= kLsrOverrun;
    ++stats_.overruns;
    if (!fifo_enabled()) rx_[rx_head_] = byte;
    return;
  }
  rx_[(rx_head_ + rx_count_) % kFifoSize] = byte;
  ++rx_count_;
}

uint8_t Uart16550::rx_pop() {
  if (rx_count_ == 0) return 0;
  const uint8_t byte = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kFifoSize;
  --rx_count_;
  return byte;
}

void Uart16550::rx_clear() {
  rx_head_ = 0;
  rx_count_ = 0;
}

void Uart16550::transmit(uint8_t byte) {
  if (regs_.mcr & kMcrLoop) {
    rx_push(byte);
  } else {
    ++stats_.tx_bytes;
    if (sink_) sink_(byte);
  }
  regs_.thre_pending = true;  // THR is empty again at once
  update_irq();
}

void Uart16550::write_fcr(uint8_t value) {
  const bool was_enabled = fifo_enabled();
  // Without the enable bit the other bits are not programmed (16550A datasheet).
  regs_.fcr = (value & kFcrEnable) ? static_cast<uint8_t>(value & kFcrStored) : 0;
  if (fifo_enabled() != was_enabled || (value & kFcrClearRx)) rx_clear();
  update_irq();
}

void Uart16550::write_mcr(uint8_t value) {
  regs_.mcr = value & kMcrMask;
  if (regs_.mcr & kMcrLoop) {
    // Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
    set_modem_status(
        static_cast<uint8_t>(((regs_.mcr & kMcrRts) ? kMsrCts : 0) | ((regs_.mcr & kMcrDtr) ? kMsrDsr : 0) |
                             ((regs_.mcr & kMcrOut1) ? kMsrRi : 0) | ((regs_.mcr & kMcrOut2) ? kMsrDcd : 0)));
  } else {
    set_modem_status(kHostModemStatus);
  }
  update_irq();
}

void Uart16550::set_modem_status(uint8_t status) {
  const uint8_t old = regs_.msr;
  const uint8_t changed = static_cast<uint8_t>((old ^ status) & ~kMsrDeltas);
  uint8_t delta = old & kMsrDeltas;
  if (changed & kMsrCts) delta |= kMsrDcts;
  if (changed & kMsrDsr) delta |= kMsrDdsr;
  if (changed & kMsrDcd) delta |= kMsrDdcd;
  if ((old & kMsrRi) && !(status & kMsrRi)) delta |= kMsrTeri;  // trailing edge only
  regs_.msr = static_cast<uint8_t>(status | delta);
}

void Uart16550::update_irq() {
  const bool pending = (interrupt_id() & kIirNone) == 0;
  // On the PC the OUT2 pin gates the IRQ driver; loopback forces OUT2 inactive.
  const bool enabled = (regs_.mcr & kMcrOut2) && !(regs_.mcr & kMcrLoop);
  irq_.set_level(pending && enabled);
}

}  // namespace vmm86
