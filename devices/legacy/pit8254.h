// Intel 8254 programmable interval timer at ports 0x40-0x43, plus the PC's system
// control port B (0x61), which carries channel 2's gate and output and the DRAM refresh
// toggle. Channel 0's output drives IRQ 0; channel 1 (refresh) and 2 (speaker) have no
// interrupt. Counters are not stepped: a running counter is a start tick and a reload
// value, and its count and OUT are computed from the virtual clock when read. Only OUT
// rising edges of channel 0 need a timer.
// Modes 0-5 (6 and 7 alias 2 and 3), LSB/MSB/LSB-then-MSB access, BCD counting, counter
// latch and read-back, gates. Simplifications: counting starts on the tick of the write
// (the chip waits for the next CLK edge), and a new count in modes 2/3 takes effect at
// once instead of at the end of the current period (Linux rewrites the mode first anyway).
#pragma once

#include <array>
#include <cstdint>

#include "devices/clock/timer_queue.h"
#include "devices/clock/virtual_clock.h"
#include "devices/io_device.h"
#include "devices/irq_line.h"

namespace vmm86 {

/// One counter's programming and counting state.
struct PitChannel {
  uint8_t mode = 0;
  uint8_t access = 3;  ///< RW bits: 1 LSB, 2 MSB, 3 LSB then MSB
  bool bcd = false;
  uint32_t reload = 0;     ///< N in counts: 1..65536 (1..10000 in BCD)
  bool counting = false;   ///< a count is loaded and the counter runs (or is paused)
  bool null_count = true;  ///< control word written, count not yet loaded
  bool gate = true;
  bool waiting_trigger = false;  ///< modes 1 and 5: count loaded, no gate edge yet
  bool paused = false;           ///< gate low stopped the counter
  uint64_t paused_elapsed = 0;   ///< ticks counted when it stopped
  uint64_t start_tick = 0;       ///< tick at which the counter held N
  uint16_t idle_count = 0;       ///< counter value while not counting
  bool idle_out = false;         ///< OUT while not counting (mode 0: low)
  bool write_msb_next = false;
  uint8_t write_lsb = 0;
  bool read_msb_next = false;
  bool count_latched = false;
  uint16_t latched_count = 0;
  bool latch_msb_next = false;
  bool status_latched = false;
  uint8_t latched_status = 0;
};

class Pit8254 {
 public:
  static constexpr uint64_t kInputHz = 1'193'182;  ///< 14.31818 MHz / 12
  static constexpr unsigned kChannels = 3;

  Pit8254(const VirtualClock& clock, TimerQueue& timers, IrqLine irq0);
  Pit8254(const Pit8254&) = delete;
  /// System reset: counters unprogrammed, port 0x61 bits clear, channel 0's timer off.
  void reset();
  Pit8254& operator=(const Pit8254&) = delete;

  /// Ports 0x40-0x43: counters 0-2 and the control word register.
  [[nodiscard]] PortIoDevice& ports() { return counter_window_; }
  /// Port 0x61: bit 0 channel 2 gate, 1 speaker data, 2-3 parity/channel-check enables,
  /// 4 refresh toggle (flips every 18 PIT ticks, about 15 us), 5 channel 2 OUT.
  [[nodiscard]] PortIoDevice& port61() { return port61_window_; }

  /// Drives a counter's GATE input (channels 0 and 1 are tied high on a PC).
  void set_gate(unsigned channel, bool high);
  /// OUT of a counter now.
  [[nodiscard]] bool output(unsigned channel) const;
  /// The counting element now (what an unlatched read would return, binary).
  [[nodiscard]] uint16_t count(unsigned channel) const;
  [[nodiscard]] const PitChannel& channel(unsigned index) const { return channels_[index]; }
  /// PIT input ticks since the virtual clock's zero.
  [[nodiscard]] uint64_t now_tick() const;

 private:
  class CounterPorts final : public PortIoDevice {
   public:
    explicit CounterPorts(Pit8254& pit) : pit_(pit) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    Pit8254& pit_;
  };
  class Port61 final : public PortIoDevice {
   public:
    explicit Port61(Pit8254& pit) : pit_(pit) {}
    uint32_t read(uint16_t offset, unsigned size) override;
    void write(uint16_t offset, unsigned size, uint32_t value) override;

   private:
    Pit8254& pit_;
  };

  [[nodiscard]] uint8_t read_counter(PitChannel& c);
  void write_counter(unsigned index, uint8_t value);
  void write_control(uint8_t value);
  void read_back(uint8_t value);
  void latch_count(PitChannel& c);
  void latch_status(PitChannel& c);
  void load_count(unsigned index, uint16_t raw);
  void stop_counting(PitChannel& c, bool out);
  /// Re-derives IRQ 0 and channel 0's timer after a change; `edge_due` when the timer
  /// fired for a rising edge that may have come and gone.
  void update_channel0(bool edge_due);

  const VirtualClock& clock_;
  IrqLine irq0_;
  std::array<PitChannel, kChannels> channels_{};
  uint8_t port61_ = 0;  ///< bits 0-3 as written
  DeviceTimer timer_;
  CounterPorts counter_window_{*this};
  Port61 port61_window_{*this};
};

}  // namespace vmm86
