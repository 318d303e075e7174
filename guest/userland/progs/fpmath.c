/* Floating point, built twice: with the x87 (-mfpmath=387) and with SSE2 scalar code
 * (-msse2 -mfpmath=sse). Every result is printed with %.17g so the last bit shows. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* volatile inputs keep the compiler from folding the arithmetic at build time */
static volatile double v_one = 1.0, v_three = 3.0, v_two = 2.0, v_tiny = 1e-310, v_big = 1e308;
static volatile double v_neg = -2.5, v_pi = 3.14159265358979323846;
static volatile float f_third = 1.0f / 3.0f;

int main(void)
{
    double third = v_one / v_three;
    printf("div %.17g\n", third);
    printf("sqrt2 %.17g\n", sqrt(v_two));
    printf("fma-like %.17g\n", third * v_three - v_one);
    double s = 0;
    for (int i = 1; i <= 100000; i++)
        s += 1.0 / ((double)i * (double)i);
    printf("basel %.17g\n", s);
    double h = 0;
    for (int i = 1; i <= 1000; i++)
        h += v_one / i;
    printf("harmonic %.17g\n", h);
    printf("denormal %.17g %.17g\n", v_tiny / 3.0, v_tiny * 1e10);
    printf("overflow %g %g\n", v_big * 10.0, -v_big * 10.0);
    printf("nan %d\n", isnan(sqrt(v_neg)) ? 1 : 0);
    printf("float %.9g %.17g\n", (double)f_third, (double)(f_third * 3.0f));
    /* conversions: truncation toward zero and rounding modes of rint */
    printf("conv %d %d %lld %lld\n", (int)v_neg, (int)(-v_neg), (long long)(v_big / 1e290),
           (long long)(-v_pi * 1e15));
    printf("rint %.17g %.17g %.17g %.17g\n", rint(v_neg), rint(-v_neg), floor(v_neg), ceil(v_neg));
    printf("int64->double %.17g\n", (double)(int64_t)0x7ffffffffffff3ffLL);
    printf("uint64->double %.17g\n", (double)(uint64_t)0xfffffffffffff3ffULL);
    /* libm: on i386 some of these go through x87 instructions (fyl2x, f2xm1, fpatan) */
    printf("sin %.17g cos %.17g tan %.17g\n", sin(v_one), cos(v_one), tan(v_one));
    printf("exp %.17g log %.17g log10 %.17g\n", exp(v_one), log(v_three), log10(v_three));
    printf("pow %.17g atan2 %.17g\n", pow(v_two, 0.5), atan2(v_one, v_three));
    printf("sinpi %.17g\n", sin(v_pi));
    printf("fmod %.17g hypot %.17g cbrt %.17g\n", fmod(v_big, v_pi), hypot(v_three, 4.0), cbrt(v_three));
    long double ld = (long double)v_one / (long double)v_three;
    printf("longdouble %.21Lg %.21Lg\n", ld, sqrtl((long double)v_two));
    printf("eps %.17g %.17g\n", DBL_EPSILON, nextafter(v_one, 2.0) - v_one);
    return 0;
}
