// qsort(3) of N pseudo-random 32-bit integers (an LCG, default 2,000,000): libc's merge
// sort with a comparison callback per step. Prints a position-weighted checksum.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void* a, const void* b) {
  const uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? (size_t)atol(argv[1]) : 2000000u;
  uint32_t* v = malloc(n * sizeof *v);
  if (!v) return 1;
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) v[i] = s = s * 1664525u + 1013904223u;
  qsort(v, n, sizeof *v, compare);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += (uint64_t)v[i] * (i % 7 + 1);
  printf("%llu\n", (unsigned long long)sum);
  return 0;
}
