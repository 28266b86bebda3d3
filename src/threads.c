#include "threads.h"

#include <pthread.h>

#ifdef _OPENMP
#include <omp.h>
#endif

int threads_resolve(int requested)
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
