// Sieve of Eratosthenes below N (default 20,000,000): byte array, the count of primes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  const unsigned n = argc > 1 ? (unsigned)atol(argv[1]) : 20000000u;
  unsigned char* composite = malloc(n);
  if (!composite) return 1;
  memset(composite, 0, n);
  unsigned count = 0;
  for (unsigned i = 2; i < n; ++i) {
    if (composite[i]) continue;
    ++count;
    for (unsigned long long j = (unsigned long long)i * i; j < n; j += i) composite[j] = 1;
  }
  printf("%u\n", count);
  return 0;
}
