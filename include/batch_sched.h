/* batch_sched.h - one step's work spread over the threads of an OpenMP
 * team, knowing nothing of what the work is: first "blocks" (independent
 * pieces), then "chunks" (pieces that may start only once every block is
 * done). Thread 0 drives the steps (sched_step); the others help
 * (sched_help) until sched_quit. No thread ever waits for another to
 * arrive: a thread the OS has descheduled simply claims nothing, and
 * thread 0 does the work itself, where a barrier would stall the step until
 * the sleeper ran. Which thread runs a piece must change nothing: the
 * callbacks write each piece's result to its own place.
 *
 * A counter holds the step's generation in its high 32 bits and the next
 * index in the low 32, so a claim made for an old step fails instead of
 * taking work of the new one. Thread 0 starts a new step only after every
 * claimed block and chunk of the last one is reported done.
 *
 * The blocks are dealt into lanes of consecutive blocks, one per thread up
 * to SCHED_LANES, each with its own counter: a thread takes its own lane's
 * blocks in order, then helps with the others'. Neighbouring blocks, whose
 * results the caller may combine (train.c sums them pairwise as they
 * finish), so mostly stay on one core. */
#ifndef TRAINER_BATCH_SCHED_H
#define TRAINER_BATCH_SCHED_H

#include <stdint.h>

typedef struct {
    /* Run by whichever thread claims the piece, with that thread's WORKER
     * (its scratch, given to sched_step or sched_help). */
    void (*block)(void *ctx, void *worker, uint32_t k);
    void (*chunk)(void *ctx, void *worker, uint32_t c);
    void *ctx;
} sched_work;

#define SCHED_LANES 16

typedef struct {
    _Alignas(64) _Atomic uint64_t next; /* a cache line each: claims in one lane do not slow another's */
} sched_lane;

typedef struct {
    _Atomic uint32_t gen;   /* the step being worked on */
    _Atomic uint32_t ready; /* the last step whose gather has run */
    _Atomic int quit;
    _Atomic uint64_t next_chunk;
    _Atomic uint32_t done_blocks, done_chunks;
    sched_lane lanes[SCHED_LANES];
    /* The step, written by thread 0 before it publishes gen. */
    uint32_t first_block, nblocks, nchunks, nlanes;
    int gathered; /* chunks wait for the gather, not for the blocks */
    int nthreads;
    sched_work work;
} batch_sched;

/* Before the team of NTHREADS starts. */
void sched_init(batch_sched *s, const sched_work *work, int nthreads);

/* Thread 0: one step, blocks FIRST_BLOCK .. FIRST_BLOCK+NBLOCKS-1 then
 * chunks 0 .. NCHUNKS-1; returns when all are done. Whatever thread 0
 * wrote before the call is visible to every callback. GATHER (may be NULL)
 * runs on thread 0 alone once the blocks are done and before any chunk
 * starts (the exchange between MPI ranks). */
void sched_step(batch_sched *s, uint32_t first_block, uint32_t nblocks, uint32_t nchunks,
                void (*gather)(void *ctx), void *worker);

/* Every other thread of the team (TID 1 .. nthreads-1): helps with each
 * step until sched_quit. */
void sched_help(batch_sched *s, int tid, void *worker);

/* Thread 0, after its last step: the helpers return. */
void sched_quit(batch_sched *s);

#endif
