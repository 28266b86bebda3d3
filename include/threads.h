/* threads.h - how many OpenMP threads a command uses, and which thread
 * hears a signal (the main one: threads_block_signals).
 *
 * --threads N is taken as asked. Otherwise OMP_NUM_THREADS, else one per
 * CPU, but never more threads than CPUs the process may run on (its
 * affinity: taskset, a cpuset, mpirun's binding of each rank to a core).
 * Threads beyond those only take turns, and one preempted while it holds
 * a block stalls the batch: 8 threads on 2 cores ran at 0.93 of 2 threads'
 * speed, capped at 2 at 0.98. The model's bytes never depend on the count.
 * A build without OpenMP runs 1. */
#ifndef TRAINER_THREADS_H
#define TRAINER_THREADS_H

#include <signal.h>

int threads_resolve(int requested);

/* The count OMP_NUM_THREADS asked for where threads_resolve gives fewer
 * (the CPUs), else 0: for the lines that say how many threads run. */
int threads_capped_from(int requested);

/* Starts OpenMP's N threads with the signals in SET blocked in all of them
 * but the calling thread, which alone then receives those signals. Call it
 * before the first parallel region: OpenMP keeps and reuses these threads
 * for every region of up to N threads. */
void threads_block_signals(int n, const sigset_t *set);

#endif
