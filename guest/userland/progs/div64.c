/* 64-bit arithmetic on a 32-bit CPU: division and remainder go through libgcc's
 * __udivdi3/__divdi3/__umoddi3, multiplication and shifts through 32-bit pairs. */
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    uint64_t x = 0x123456789abcdef1ULL, acc = 0;
    int64_t sacc = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;  /* xorshift64 */
        uint64_t d = (x >> (i % 61)) | 1;
        acc += x / d + x % d;
        int64_t s = (int64_t)x, sd = (int64_t)(d >> 1) - (int64_t)(i & 1 ? 0 : d >> 2);
        if (sd == 0)
            sd = -7;
        sacc += s / sd - s % sd;
    }
    printf("udiv %llu\n", (unsigned long long)acc);
    printf("sdiv %lld\n", (long long)sacc);
    volatile uint64_t big = 0xffffffffffffffffULL, three = 3;
    volatile int64_t minv = INT64_MIN, m1 = 7;
    printf("max/3 %llu max%%3 %llu\n", (unsigned long long)(big / three), (unsigned long long)(big % three));
    printf("min/7 %lld min%%7 %lld\n", (long long)(minv / m1), (long long)(minv % m1));
    printf("mul %llu\n", (unsigned long long)(big * three * 0x100000001ULL));
    printf("shift %llx %llx\n", (unsigned long long)(big >> 33), (unsigned long long)((uint64_t)three << 62));
    return 0;
}
