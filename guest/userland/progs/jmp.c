/* setjmp/longjmp across several frames, and sigsetjmp/siglongjmp restoring the mask. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>

static jmp_buf env;
static volatile int bottom = 0;  /* opaque to the compiler, so the recursion has an end */
static sigjmp_buf senv;

static int depth(int n)
{
    volatile char pad[64];
    pad[n % 64] = (char)n;
    if (n == bottom)
        longjmp(env, 42);
    if (n < bottom)
        return 0;
    return depth(n - 1) + pad[n % 64];
}

int main(void)
{
    volatile int rounds = 0;
    int r = setjmp(env);
    if (r == 0)
        depth(100);
    printf("longjmp returned %d\n", r);
    while (rounds < 5) {
        if (setjmp(env) == 0) {
            rounds++;
            longjmp(env, rounds);
        }
    }
    printf("rounds %d\n", rounds);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigsetjmp(senv, 1) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        siglongjmp(senv, 1);
    }
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("mask restored %d\n", !sigismember(&now, SIGUSR1));
    return 0;
}
