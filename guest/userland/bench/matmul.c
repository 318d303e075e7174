// Dense matrix multiply, double precision, i-k-j order (vectorizable: gcc -O2 -msse2 uses
// SSE2 on the guest, SSE2/AVX-free x86-64 code natively). Prints a checksum of C = A*B.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 320;
  double* a = malloc(sizeof(double) * (size_t)n * (size_t)n);
  double* b = malloc(sizeof(double) * (size_t)n * (size_t)n);
  double* c = calloc((size_t)n * (size_t)n, sizeof(double));
  if (!a || !b || !c) return 1;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      a[i * n + j] = (double)((i * 7 + j * 3) % 17) / 16.0;
      b[i * n + j] = (double)((i * 5 + j * 11) % 13) / 12.0;
    }
  }
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      for (int j = 0; j < n; ++j) c[i * n + j] += aik * b[k * n + j];
    }
  }
  double sum = 0;
  for (int i = 0; i < n * n; ++i) sum += c[i] * (double)(i % 5 + 1);
  printf("%.6f\n", sum);
  return 0;
}
