/* PC platform helpers shared by the conformance kernels: the local APIC's registers at their
   default base and a busy wait on PIT channel 2 (a time base that needs no interrupts). */
#pragma once

#include "lib/conformance.h"

#define APIC_BASE 0xFEE00000u

static inline uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t*)(APIC_BASE + reg); }
static inline void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t*)(APIC_BASE + reg) = v; }

/* Busy-waits `ms` milliseconds (at most 54) on PIT channel 2 in mode 0 (OUT2 in port 0x61). */
static inline void pit_wait_ms(unsigned ms) {
  const uint32_t count = 1193182u * ms / 1000u;
  outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate on, speaker off */
  outb(0x43, 0xB0);                                  /* channel 2, lobyte/hibyte, mode 0 */
  outb(0x42, (uint8_t)count);
  outb(0x42, (uint8_t)(count >> 8));
  while (!(inb(0x61) & 0x20)) {
  }
}
