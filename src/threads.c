#include "threads.h"

#include <pthread.h>
#include <sched.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The CPUs this process may run on; 0 if the kernel will not say (a mask
 * wider than cpu_set_t's 1,024: then nothing is capped). */
static int cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return CPU_COUNT(&set);
}

/* What the command asks for before the cap. */
static int threads_asked(int requested)
{
#ifdef _OPENMP
    if (requested > 0)
        return requested;
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    (void)requested;
    return 1;
#endif
}

int threads_resolve(int requested)
{
    int n = threads_asked(requested), cpus = cpus_allowed();
    return requested > 0 || cpus == 0 || n <= cpus ? n : cpus;
}

int threads_capped_from(int requested)
{
    int n = threads_asked(requested);
    return n > threads_resolve(requested) ? n : 0;
}

void threads_block_signals(int n, const sigset_t *set)
{
    /* New threads inherit the creating thread's mask: block, start them,
     * then unblock here only. */
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, set, &old);
#ifdef _OPENMP
#pragma omp parallel num_threads(n)
    {
        /* nothing: the threads exist now */
    }
#else
    (void)n;
#endif
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
