/* mmap/mprotect/mremap/munmap, anonymous and file-backed memory. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf jb;
static void on_segv(int sig) { (void)sig; siglongjmp(jb, 1); }

static uint32_t sum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(void)
{
    size_t len = 4u << 20;
    uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < len; i++)
        a[i] = (uint8_t)(i * 31 + (i >> 12));
    printf("anon %08x\n", sum(a, len));

    signal(SIGSEGV, on_segv);
    mprotect(a, len, PROT_READ);
    int faulted = 0;
    if (sigsetjmp(jb, 1) == 0)
        a[12345] = 0;
    else
        faulted = 1;
    printf("write to read-only faulted %d, data kept %d\n", faulted, a[12345] == (uint8_t)(12345 * 31 + 3));
    mprotect(a, len, PROT_READ | PROT_WRITE);
    a[12345] = 0;

    uint8_t *b = mremap(a, len, 2 * len, MREMAP_MAYMOVE);
    memset(b + len, 0xa5, len);
    printf("mremap %08x\n", sum(b, 2 * len));
    munmap(b, 2 * len);

    const char *path = "/tmp/mmap-test.bin";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (ftruncate(fd, 65536) != 0)
        return 1;
    uint8_t *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (int i = 0; i < 65536; i++)
        m[i] = (uint8_t)(i ^ (i >> 8));
    msync(m, 65536, MS_SYNC);
    munmap(m, 65536);
    uint8_t buf[65536];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    unlink(path);
    printf("file %zd %08x\n", n, sum(buf, sizeof buf));

    /* a guard page between two mappings stays inaccessible */
    uint8_t *g = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(g + 4096, 4096, PROT_NONE);
    faulted = 0;
    if (sigsetjmp(jb, 1) == 0)
        (void)*(volatile uint8_t *)(g + 4096 + 5);
    else
        faulted = 1;
    printf("guard read faulted %d\n", faulted);
    return 0;
}
