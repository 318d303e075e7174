/* pthreads: threads sum disjoint ranges under a mutex, bump a shared counter with atomic
 * read-modify-write (lock xadd / lock cmpxchg), and meet at a barrier. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define NTHREADS 4
#define PER_THREAD 250000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t barrier;
static uint64_t total;
static int counter, cas_counter;
static __thread int tls_value;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t local = 0;
    tls_value = id * 1000;
    for (uint64_t i = (uint64_t)id * PER_THREAD; i < (uint64_t)(id + 1) * PER_THREAD; i++) {
        local += i * i % 7919;
        __atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
    }
    for (int i = 0; i < 10000; i++) {
        int old = __atomic_load_n(&cas_counter, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&cas_counter, &old, old + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            ;
    }
    pthread_mutex_lock(&lock);
    total += local;
    pthread_mutex_unlock(&lock);
    pthread_barrier_wait(&barrier);
    return (void *)(intptr_t)(tls_value + id);
}

int main(void)
{
    pthread_t t[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    long rets = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        rets += (long)(intptr_t)ret;
    }
    printf("sum %llu counter %d cas %d rets %ld\n", (unsigned long long)total, counter, cas_counter, rets);
    return 0;
}
