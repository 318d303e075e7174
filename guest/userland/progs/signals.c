/* Signals: a SIGSEGV handler that recovers twice (once by fixing the page and returning,
 * once by siglongjmp), a SIGFPE from integer division by zero, SIGALRM from alarm() and
 * from an interval timer, and a blocked signal that stays pending. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

static char *page;
static long pagesize;
static volatile sig_atomic_t segv_count, alarms, usr1;
static volatile int addr_ok = 1;
static sigjmp_buf jb;
static volatile int *volatile null_page = (volatile int *)16;

static void on_segv_fix(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)ctx;
    if ((char *)si->si_addr != page + 100)
        addr_ok = 0;
    segv_count++;
    mprotect(page, (size_t)pagesize, PROT_READ | PROT_WRITE);  /* returning retries the store */
}

static void on_segv_jump(int sig) { (void)sig; segv_count++; siglongjmp(jb, 1); }
static void on_fpe(int sig) { (void)sig; siglongjmp(jb, 2); }
static void on_alrm(int sig) { (void)sig; alarms++; }
static void on_usr1(int sig) { (void)sig; usr1++; }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    pagesize = sysconf(_SC_PAGESIZE);
    page = mmap(NULL, (size_t)pagesize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    sa.sa_sigaction = on_segv_fix;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    page[100] = 7;  /* faults once; the handler makes the page writable */
    printf("segv fixed: count=%d value=%d si_addr_ok=%d\n", segv_count, page[100], addr_ok);

    sa.sa_handler = on_segv_jump;
    sa.sa_flags = 0;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(jb, 1) == 0) {
        *null_page = 1;
        puts("not reached");
    }
    printf("segv jumped: count=%d\n", segv_count);

    sa.sa_handler = on_fpe;
    sigaction(SIGFPE, &sa, NULL);
    volatile int zero = 0, num = 10;
    int r = sigsetjmp(jb, 1);
    if (r == 0)
        printf("div %d\n", num / zero);
    printf("sigfpe recovered %d\n", r);

    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    while (!alarms)
        pause();
    printf("alarm %d\n", alarms);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (alarms < 6)
        pause();
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    printf("itimer alarms>=6 %d\n", alarms >= 6);

    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    sigpending(&pend);
    printf("pending %d delivered %d\n", sigismember(&pend, SIGUSR1), usr1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("after unblock delivered %d\n", usr1);
    return 0;
}
