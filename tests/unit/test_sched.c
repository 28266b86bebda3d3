/* test_sched.c: the batch scheduler (batch_sched.c) under stress: many
 * steps of uneven blocks and chunks, a thread that falls asleep in the
 * middle of a block, 1 to 16 threads, with and without a gather. Every
 * block and chunk must run exactly once per step, every chunk after every
 * block (and after the gather), and the results, summed in block order,
 * must equal the serial ones. */
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_sched.h"
#include "tests.h"

#define MAX_BLOCKS 64
#define MAX_CHUNKS 24
#define STEPS 150

typedef struct {
    uint32_t step; /* written by thread 0 before sched_step */
    uint32_t first, nblocks, nchunks;
    int gather;
    double slot[MAX_BLOCKS];
    _Atomic int block_runs[MAX_BLOCKS], chunk_runs[MAX_CHUNKS];
    _Atomic int gathered;
    double out[MAX_CHUNKS];
    _Atomic int bad; /* a chunk saw a block not done, or no gather */
} stress;

static double value(uint32_t step, uint32_t k, uint32_t c)
{
    return (double)((step * 2654435761u) ^ (k * 40503u)) * 1e-6 + (double)c;
}

/* Uneven costs: a few blocks are a hundred times dearer than the rest, and
 * thread 1 sometimes sleeps mid-block, as a descheduled thread would. */
static void block(void *ctx, void *worker, uint32_t k)
{
    stress *s = ctx;
    int tid = *(int *)worker;
    uint32_t h = (s->step * 7919u + k * 104729u) % 97u;
    volatile double x = 0;
    for (uint32_t i = 0; i < (h < 5 ? 20000u : 200u); i++)
        x += i;
    if (tid == 1 && h % 13 == 0) {
        struct timespec ts = { 0, 300000 };
        nanosleep(&ts, NULL);
    }
    s->slot[k] = value(s->step, k, 0);
    atomic_fetch_add(&s->block_runs[k], 1);
}

static void chunk(void *ctx, void *worker, uint32_t c)
{
    (void)worker;
    stress *s = ctx;
    double sum = 0;
    for (uint32_t k = s->first; k < s->first + s->nblocks; k++) {
        if (atomic_load(&s->block_runs[k]) != 1)
            atomic_store(&s->bad, 1);
        sum += s->slot[k] + (double)c;
    }
    if (s->gather && atomic_load(&s->gathered) != 1)
        atomic_store(&s->bad, 1);
    s->out[c] = sum;
    atomic_fetch_add(&s->chunk_runs[c], 1);
}

static void gather(void *ctx)
{
    stress *s = ctx;
    for (uint32_t k = s->first; k < s->first + s->nblocks; k++)
        if (atomic_load(&s->block_runs[k]) != 1)
            atomic_store(&s->bad, 1);
    atomic_fetch_add(&s->gathered, 1);
}

static void run_team(int nthreads, int with_gather)
{
    stress *s = calloc(1, sizeof *s);
    assert_non_null(s);
    batch_sched sched;
    sched_init(&sched, &(sched_work){ block, chunk, s }, nthreads);
    int failures = 0;
#pragma omp parallel num_threads(nthreads)
    {
        int tid = omp_get_thread_num();
        if (tid != 0) {
            sched_help(&sched, tid, &tid);
        } else {
            for (uint32_t step = 1; step <= STEPS; step++) {
                s->step = step;
                s->nblocks = 1 + (step * 37u) % MAX_BLOCKS;
                s->first = (step * 11u) % (MAX_BLOCKS - s->nblocks + 1);
                s->nchunks = 1 + (step * 5u) % MAX_CHUNKS;
                s->gather = with_gather && step % 3 != 0;
                memset(s->block_runs, 0, sizeof s->block_runs);
                memset(s->chunk_runs, 0, sizeof s->chunk_runs);
                atomic_store(&s->gathered, 0);
                sched_step(&sched, s->first, s->nblocks, s->nchunks, s->gather ? gather : NULL, &tid);
                for (uint32_t k = 0; k < MAX_BLOCKS; k++)
                    failures += atomic_load(&s->block_runs[k]) != (k >= s->first && k < s->first + s->nblocks);
                for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
                    failures += atomic_load(&s->chunk_runs[c]) != (c < s->nchunks);
                    if (c < s->nchunks) {
                        double want = 0;
                        for (uint32_t k = s->first; k < s->first + s->nblocks; k++)
                            want += value(step, k, 0) + (double)c;
                        failures += s->out[c] != want;
                    }
                }
                failures += atomic_load(&s->gathered) != s->gather;
            }
            sched_quit(&sched);
        }
    }
    int bad = atomic_load(&s->bad);
    free(s);
    if (failures || bad)
        fail_msg("%d threads%s: %d wrong counts or sums, %s", nthreads, with_gather ? " (gather)" : "", failures,
                 bad ? "a chunk ran early" : "chunks in order");
}

static void test_sched_stress(void **state)
{
    (void)state;
    static const int threads[] = { 1, 2, 3, 4, 7, 8, 16 };
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        run_team(threads[i], 0);
        run_team(threads[i], 1);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sched_stress),
};
TEST_GROUP(sched_group, tests);
