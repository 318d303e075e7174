/* Large memcpy/memmove/memset at every small alignment, with a checksum of the result:
 * glibc picks SSE2/SSSE3 variants by CPUID, so this runs the wide vector paths. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc32(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int main(void)
{
    size_t n = 16u << 20;
    uint8_t *src = malloc(n + 64), *dst = malloc(n + 64);
    uint32_t x = 12345;
    for (size_t i = 0; i < n + 64; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (uint8_t)(x >> 16);
    }
    printf("src %08x\n", crc32(src, n));
    for (int so = 0; so < 4; so++)
        for (int dof = 0; dof < 4; dof++) {
            memset(dst, 0, n + 64);
            memcpy(dst + dof * 5, src + so * 3, n - 7 * (size_t)so);
            if (so == 3 && dof == 3)
                printf("copy %08x\n", crc32(dst, n + 64));
        }
    uint32_t small = 0;
    for (size_t len = 0; len < 300; len++) {
        memcpy(dst + len % 13, src + len % 17, len);
        small = small * 31 + crc32(dst, 320);
    }
    printf("small %08x\n", small);
    memmove(dst + 1000, dst + 1, n - 2000);   /* overlapping, forward */
    memmove(dst + 3, dst + 777, n - 2000);    /* overlapping, backward */
    printf("memmove %08x\n", crc32(dst, n));
    memset(dst + 11, 0x5a, n - 100);
    printf("memset %08x cmp %d\n", crc32(dst, n), memcmp(dst + 11, dst + 12, n - 101) == 0);
    free(src);
    free(dst);
    return 0;
}
