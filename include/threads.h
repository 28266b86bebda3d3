/* threads.h - how many OpenMP threads a command uses: the requested count,
 * else OMP_NUM_THREADS, else one per core; 1 in a build without OpenMP.
 * And which thread hears a signal: the main one (threads_block_signals). */
#ifndef TRAINER_THREADS_H
#define TRAINER_THREADS_H

#include <signal.h>

int threads_resolve(int requested);

/* Starts OpenMP's N threads with the signals in SET blocked in all of them
 * but the calling thread, which alone then receives those signals. Call it
 * before the first parallel region: OpenMP keeps and reuses these threads
 * for every region of up to N threads. */
void threads_block_signals(int n, const sigset_t *set);

#endif
