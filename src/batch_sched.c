/* batch_sched.c - blocks then chunks across an OpenMP team (batch_sched.h).
 *
 * Measured against the plain OpenMP form (a serial batch loop, and per
 * batch one `omp parallel for schedule(dynamic,1)` over the blocks, the
 * gather, one over the chunks; the implicit barriers order them):
 * training samples/s of one epoch of 15,000 images (the metrics CSV),
 * median of 5 alternating runs each, libgomp's default wait policy, on 2
 * cores (Zen 5) shared with three other developers' builds and tests.
 *
 *                          busy (load 4-7)         + one spinner per core
 *   batch  threads    this   plain  plain/this    this   plain  plain/this
 *     64      1      46,799  52,487    1.12       6,143   5,799    0.94
 *     64      2      23,165  10,266    0.44       6,530   1,412    0.22
 *     64      8      25,017  36,202    1.45       9,627  16,719    1.74
 *     32      1      23,980  24,672    1.03       5,192   5,106    0.98
 *     32      2      24,403   1,420    0.06       4,978     561    0.11
 *     32      8      20,245  22,572    1.12       5,686  10,455    1.84
 *
 * With two threads on two busy cores the plain form collapses: at each of
 * its barriers libgomp spins (GOMP_SPINCOUNT, 300,000 by default when the
 * threads fit the cores) on one core while the thread it waits for sits
 * preempted, so every batch waits out a time slice. Here a thread the OS
 * has descheduled delays nothing. With OMP_WAIT_POLICY=passive the plain
 * form keeps up (medians of 3, busy, plain/this: 1.19 and 0.95 at 2
 * threads, 0.98 and 1.10 at 8), but a program cannot set that for itself.
 * Oversubscribed (8 threads on 2 busy cores) the plain form was faster:
 * its idle threads sleep in the kernel, where these helpers yield and nap.
 *
 * On the same 2 cores with nothing else running (one epoch of all 60,000
 * images, median of 5 alternating runs, the kernels of 753a3a7):
 *
 *   config    threads    this     plain   plain/this
 *   default      1      64,730   64,793     1.00
 *   default      2     109,164  107,382     0.98
 *   default      8     107,714   86,260     0.80
 *   fast         1      64,013   63,117     0.99
 *   fast         2      99,908   97,359     0.97
 *   fast         8      99,272   65,187     0.66
 *
 * So this scheduler stays: 2-3% faster at one thread per core when quiet,
 * 2 to 16 times faster when a core is shared; oversubscribed, it is 1.3x
 * to 1.5x faster when quiet and 0.6x to 0.7x when busy. Since then the
 * trainer runs no more threads than CPUs unless --threads insists
 * (threads.h): a helper preempted while it held a block still stalled the
 * batch. */
#include "batch_sched.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

void sched_init(batch_sched *s, const sched_work *work, int nthreads)
{
    memset(s, 0, sizeof *s);
    s->work = *work;
    s->nthreads = nthreads > 0 ? nthreads : 1;
}

static int claim(_Atomic uint64_t *ctr, uint32_t gen, uint32_t n, uint32_t *idx)
{
    uint64_t old = atomic_load_explicit(ctr, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(old >> 32) != gen || (uint32_t)old >= n)
            return 0;
        if (atomic_compare_exchange_weak_explicit(ctr, &old, old + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *idx = (uint32_t)old;
            return 1;
        }
    }
}

/* Waiting without burning a shared core: spin briefly, then yield, then
 * sleep 20 us at a time. */
static void backoff(unsigned *spins)
{
    if (++*spins < 256)
        return;
    if (*spins < 1024) {
        sched_yield();
        return;
    }
    struct timespec ts = { 0, 20000 };
    nanosleep(&ts, NULL);
}

/* Lane L's blocks: [*first, first + *count) of the step's. */
static void lane_span(const batch_sched *s, uint32_t l, uint32_t *first, uint32_t *count)
{
    *first = (uint32_t)((uint64_t)s->nblocks * l / s->nlanes);
    *count = (uint32_t)((uint64_t)s->nblocks * (l + 1) / s->nlanes) - *first;
}

/* The blocks of thread TID's own lane, then of the lanes after it. */
static void run_blocks(batch_sched *s, uint32_t gen, int tid, void *worker)
{
    const uint32_t nl = s->nlanes, home = (uint32_t)tid % nl;
    for (uint32_t i = 0; i < nl; i++) {
        uint32_t l = (home + i) % nl, first, count, k;
        lane_span(s, l, &first, &count);
        while (claim(&s->lanes[l].next, gen, count, &k)) {
            s->work.block(s->work.ctx, worker, s->first_block + first + k);
            atomic_fetch_add_explicit(&s->done_blocks, 1, memory_order_acq_rel);
        }
    }
}

/* Whatever of step GEN this thread can still claim. */
static void work_on(batch_sched *s, uint32_t gen, int tid, void *worker)
{
    run_blocks(s, gen, tid, worker);
    /* With a gather, the chunks wait until thread 0 has run it; without,
     * they start as soon as the blocks are done. */
    unsigned spins = 0;
    while (s->gathered ? atomic_load_explicit(&s->ready, memory_order_acquire) != gen
                       : atomic_load_explicit(&s->done_blocks, memory_order_acquire) < s->nblocks) {
        if (atomic_load_explicit(&s->gen, memory_order_acquire) != gen)
            return;
        backoff(&spins);
    }
    uint32_t c;
    while (claim(&s->next_chunk, gen, s->nchunks, &c)) {
        s->work.chunk(s->work.ctx, worker, c);
        atomic_fetch_add_explicit(&s->done_chunks, 1, memory_order_acq_rel);
    }
}

void sched_step(batch_sched *s, uint32_t first_block, uint32_t nblocks, uint32_t nchunks,
                void (*gather)(void *ctx), void *worker)
{
    uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
    /* The counters move to the new step first. A helper still inside the
     * last step (descheduled at its end) may be about to claim from them;
     * had it seen the new nblocks beside the old counter, it would have run
     * a block of this step under the last one's name and counted it twice,
     * letting the chunks start early. With the new generation in place its
     * claims fail, whatever sizes it reads. */
    for (int l = 0; l < SCHED_LANES; l++)
        atomic_store_explicit(&s->lanes[l].next, (uint64_t)gen << 32, memory_order_seq_cst);
    atomic_store_explicit(&s->next_chunk, (uint64_t)gen << 32, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    s->first_block = first_block;
    s->nblocks = nblocks;
    {
        uint32_t nl = s->nthreads < SCHED_LANES ? (uint32_t)s->nthreads : SCHED_LANES;
        s->nlanes = nblocks == 0 ? 1 : nl < nblocks ? nl : nblocks;
    }
    s->nchunks = nchunks;
    s->gathered = gather != NULL;
    atomic_store_explicit(&s->done_blocks, 0, memory_order_relaxed);
    atomic_store_explicit(&s->done_chunks, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gen, gen, memory_order_release);

    if (gather) {
        /* Thread 0 is the one that gathers: it helps with the blocks, waits
         * for them, gathers, then opens the chunks. */
        run_blocks(s, gen, 0, worker);
        unsigned spins = 0;
        while (atomic_load_explicit(&s->done_blocks, memory_order_acquire) < s->nblocks)
            backoff(&spins);
        gather(s->work.ctx);
        atomic_store_explicit(&s->ready, gen, memory_order_release);
    }
    work_on(s, gen, 0, worker);
    unsigned spins = 0;
    while (atomic_load_explicit(&s->done_chunks, memory_order_acquire) < s->nchunks)
        backoff(&spins);
}

void sched_help(batch_sched *s, int tid, void *worker)
{
    uint32_t seen = atomic_load_explicit(&s->gen, memory_order_acquire);
    unsigned spins = 0;
    while (!atomic_load_explicit(&s->quit, memory_order_acquire)) {
        uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
        if (gen != seen) {
            seen = gen;
            work_on(s, gen, tid, worker);
            spins = 0;
        } else {
            backoff(&spins);
        }
    }
}

void sched_quit(batch_sched *s)
{
    atomic_store_explicit(&s->quit, 1, memory_order_release);
}
