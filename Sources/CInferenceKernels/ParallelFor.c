// A small pool of worker threads for splitting one kernel call (a GEMM's panels, a batch's
// images) among the threads a benchmark or an embedder configured. Between calls the workers
// spin for a short while, then sleep: handing work to a sleeping thread costs a wake-up that is
// as long as a whole batch-1 GEMM on these hosts, while back-to-back calls find them spinning.
// The daemon runs one thread per model instance and never starts the pool.
#include "CInferenceKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define PAUSE() _mm_pause()
#else
#define PAUSE() ((void)0)
#endif

#define MAX_WORKERS 15
#define SPIN_NS 200000L

static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER;  // one call uses the pool at a time
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static int workers;  // started so far; guarded by caller_lock

// The current call: its generation in the high 32 bits, the next task index in the low 32.
static _Atomic unsigned long cursor;
static _Atomic(outpost_task_fn) job_fn;
static _Atomic(void *) job_ctx;
static _Atomic long job_count;
static _Atomic long unfinished;

static unsigned long generation_of(unsigned long c) { return c >> 32; }

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Takes task indices of call `generation` until none is left. An index is claimed by a
// compare-and-swap that also checks the generation, so a thread still here from an earlier call
// never claims a task of a later one; and while it holds a claimed task the call is unfinished,
// so the job it reads is still the one it claimed from. A call closes its generation when it
// ends (the index goes to the largest value), because the next call stores its job, count
// included, before it publishes its generation: without that, a thread still here could compare
// the old index with the new, larger count and claim a task of the new job under the old
// generation, which then ran twice.
static void run_tasks(unsigned long generation) {
    unsigned long c = atomic_load(&cursor);
    for (;;) {
        if (generation_of(c) != generation || (long)(c & 0xffffffffUL) >= atomic_load(&job_count)) return;
        if (!atomic_compare_exchange_weak(&cursor, &c, c + 1)) continue;
        atomic_load(&job_fn)(atomic_load(&job_ctx), (long)(c & 0xffffffffUL));
        atomic_fetch_sub(&unfinished, 1);
        c = atomic_load(&cursor);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    unsigned long seen = generation_of(atomic_load(&cursor));
    for (;;) {
        const long until = now_ns() + SPIN_NS;
        while (generation_of(atomic_load(&cursor)) == seen) {
            if (now_ns() < until) {
                for (int i = 0; i < 64; i++) PAUSE();
                continue;
            }
            pthread_mutex_lock(&wake_lock);
            while (generation_of(atomic_load(&cursor)) == seen) pthread_cond_wait(&wake_cond, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = generation_of(atomic_load(&cursor));
        run_tasks(seen);
    }
    return 0;
}

void outpost_parallel_for(int threads, long count, outpost_task_fn fn, void *ctx) {
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    if (threads <= 1 || count <= 1 || count > 0xffffffffL || pthread_mutex_trylock(&caller_lock) != 0) {
        for (long i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    while (workers < threads - 1) {
        pthread_t t;
        if (pthread_create(&t, 0, worker_main, 0) != 0) break;
        pthread_detach(t);
        workers++;
    }
    atomic_store(&job_fn, fn);
    atomic_store(&job_ctx, ctx);
    atomic_store(&job_count, count);
    atomic_store(&unfinished, count);
    const unsigned long generation = (generation_of(atomic_load(&cursor)) + 1) & 0xffffffffUL;
    pthread_mutex_lock(&wake_lock);
    atomic_store(&cursor, generation << 32);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
    run_tasks(generation);
    while (atomic_load(&unfinished) > 0) PAUSE();
    atomic_store(&cursor, generation << 32 | 0xffffffffUL);  // closed: see run_tasks
    pthread_mutex_unlock(&caller_lock);
}
