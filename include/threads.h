/* threads.h - how many OpenMP threads a command uses, and which thread
 * hears a signal (the main one: threads_block_signals).
 *
 * --threads N is taken as asked. Otherwise OMP_NUM_THREADS, else one per
 * CPU, but never more threads than CPUs the process may run on (its
 * affinity: taskset, a cpuset, mpirun's binding of each rank to a core).
 * Threads beyond those only take turns, and one preempted while it holds
 * a block stalls the batch (README, Measured: OMP_NUM_THREADS=8 on the 2
 * cores, before and after this cap). The model's bytes never depend on the
 * count. With OMP_PROC_BIND or OMP_PLACES, libgomp pins the main thread at
 * start-up, so the CPUs are counted over its places instead. A build
 * without OpenMP runs 1. */
#ifndef TRAINER_THREADS_H
#define TRAINER_THREADS_H

#include <signal.h>

typedef struct {
    int n;        /* threads to run */
    int cut_from; /* what OMP_NUM_THREADS (or the default) asked for, where n is fewer; else 0 */
} thread_count;

/* Resolve once per command and pass the count down: the affinity it reads
 * is the process's at that moment. */
thread_count threads_resolve(int requested);

/* Starts OpenMP's N threads with the signals in SET blocked in all of them
 * but the calling thread, which alone then receives those signals. Call it
 * before the first parallel region: OpenMP keeps and reuses these threads
 * for every region of up to N threads. */
void threads_block_signals(int n, const sigset_t *set);

#endif
