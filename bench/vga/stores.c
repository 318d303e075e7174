/* Single 16-bit stores into VGA text memory, as a text console writes characters one at a
 * time (bench/vga_writes.py copies this into the guest): maps B8000 through /dev/mem and
 * stores N words one by one, volatile so each is its own store instruction. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const long count = argc > 1 ? atol(argv[1]) : 100000;
  const int fd = open("/dev/mem", O_RDWR | O_SYNC);
  if (fd < 0) {
    perror("/dev/mem");
    return 1;
  }
  volatile uint16_t* text = mmap(NULL, 0x8000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0xB8000);
  if (text == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (long i = 0; i < count; ++i) text[i % 2000] = (uint16_t)(0x0700 | ('a' + i % 26));
  return 0;
}
