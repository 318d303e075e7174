// What a process that grows and reshapes its memory does: maps N MiB (default 32), writes
// one byte per page, mprotects every other 64 KiB read-only and back, mremaps the whole
// region to twice its size and touches the new half, unmaps; R rounds (default 4). Each
// first touch is a page fault in the guest kernel: this measures the monitor's cost per
// fresh guest page. Prints a checksum.
#define _GNU_SOURCE  // mremap
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 32u;
  const int rounds = argc > 2 ? atoi(argv[2]) : 4;
  const size_t page = 4096, size = mib << 20;
  uint64_t sum = 0;
  for (int r = 0; r < rounds; ++r) {
    uint8_t* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (size_t off = 0; off < size; off += page) p[off] = (uint8_t)(off >> 12);
    for (size_t off = 0; off < size; off += 2 * 65536) mprotect(p + off, 65536, PROT_READ);
    for (size_t off = 0; off < size; off += 2 * 65536) sum += p[off];
    if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0) return 1;
    uint8_t* q = mremap(p, size, 2 * size, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) return 1;
    for (size_t off = size; off < 2 * size; off += page) q[off] = (uint8_t)r;
    for (size_t off = 0; off < 2 * size; off += page) sum += q[off];
    munmap(q, 2 * size);
  }
  printf("%llu\n", (unsigned long long)sum);
  return 0;
}
