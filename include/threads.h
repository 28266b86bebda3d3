/* threads.h - how many OpenMP threads a command uses: the requested count,
 * else OMP_NUM_THREADS, else one per core; 1 in a build without OpenMP. */
#ifndef TRAINER_THREADS_H
#define TRAINER_THREADS_H

int threads_resolve(int requested);

#endif
