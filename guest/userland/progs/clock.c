/* Clocks: only properties that hold on any machine are printed (monotonic never goes
 * back, a sleep lasts at least as long as asked, the wall clock is after 2020). */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static double diff(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

int main(void)
{
    struct timespec prev, now, start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    prev = start;
    int backwards = 0;
    for (int i = 0; i < 100000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (diff(prev, now) < 0)
            backwards++;
        prev = now;
    }
    printf("monotonic backwards %d\n", backwards);
    struct timespec req = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
    double slept = diff(start, now);
    printf("nanosleep 20ms lasted >=20ms %d, <10s %d\n", slept >= 0.02, slept < 10);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("realtime after 2020 %d, gettimeofday agrees %d\n", rt.tv_sec > 1577836800,
           tv.tv_sec - rt.tv_sec >= 0 && tv.tv_sec - rt.tv_sec < 5);
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("cputime positive %d\n", cpu.tv_sec > 0 || cpu.tv_nsec > 0);
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC, &res);
    printf("resolution <=1ms %d\n", res.tv_sec == 0 && res.tv_nsec <= 1000000);
    return 0;
}
