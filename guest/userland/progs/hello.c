/* The regression that opened issue 14: gcc's 32-bit crt files (and a static glibc) carry
 * ENDBR32, which the translator once re-encoded into an instruction the host rejects. */
#include <stdio.h>

int main(void)
{
    puts("hello, world");
    return 0;
}
