/* Guest side of the compute benchmark: ring 3, paging on. The harness puts the buffer
 * address and length in a parameter block at kParams; the digest goes back there. */
#include "md5.h"

struct params {
  const unsigned char* data;
  unsigned int len;
  unsigned int rounds;
  unsigned char digest[16];
};

__attribute__((section(".text.startup"))) void entry(void) {
  struct params* p = (struct params*)0x00300000;
  for (unsigned int r = 0; r < p->rounds; ++r) md5(p->data, p->len, p->digest);
  __asm__ volatile("int3");  /* back to the monitor through the guest IDT */
  for (;;) {}
}
