/* MD5 (RFC 1321) over a buffer: the compute kernel of the translator benchmark. The same
 * source is built as a freestanding 32-bit guest program and as native x86-64 code. */
#include "md5.h"

static const unsigned int k_table[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const unsigned char r_table[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                          5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                          4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                          6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static unsigned int rotl(unsigned int x, unsigned int c) { return (x << c) | (x >> (32 - c)); }

static void block(unsigned int h[4], const unsigned char* p) {
  unsigned int w[16];
  for (int i = 0; i < 16; ++i)
    w[i] = (unsigned int)p[4 * i] | ((unsigned int)p[4 * i + 1] << 8) | ((unsigned int)p[4 * i + 2] << 16) |
           ((unsigned int)p[4 * i + 3] << 24);
  unsigned int a = h[0], b = h[1], c = h[2], d = h[3];
  for (unsigned int i = 0; i < 64; ++i) {
    unsigned int f, g;
    if (i < 16) { f = (b & c) | (~b & d); g = i; }
    else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
    else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
    else { f = c ^ (b | ~d); g = (7 * i) % 16; }
    unsigned int t = d;
    d = c;
    c = b;
    b = b + rotl(a + f + k_table[i] + w[g], r_table[i]);
    a = t;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

void md5(const unsigned char* data, unsigned int len, unsigned char out[16]) {
  unsigned int h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  unsigned int i = 0;
  for (; i + 64 <= len; i += 64) block(h, data + i);
  unsigned char tail[128];
  unsigned int rest = len - i, n = 0;
  for (; n < rest; ++n) tail[n] = data[i + n];
  tail[n++] = 0x80;
  unsigned int total = rest + 9 <= 64 ? 64 : 128;
  while (n < total - 8) tail[n++] = 0;
  unsigned long long bits = (unsigned long long)len * 8;
  for (int k = 0; k < 8; ++k) tail[n++] = (unsigned char)(bits >> (8 * k));
  for (unsigned int off = 0; off < total; off += 64) block(h, tail + off);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 4; ++j) out[4 * k + j] = (unsigned char)(h[k] >> (8 * j));
}
