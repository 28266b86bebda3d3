#include "threads.h"

#include <pthread.h>
#include <sched.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef _OPENMP
/* The CPUs this process may run on; 0 if unknown (a mask wider than
 * cpu_set_t's 1,024: then nothing is capped). */
static int cpus_allowed(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    /* Bound (OMP_PROC_BIND, OMP_PLACES): this thread now runs on its first
     * place alone; the places list what the process had, and may overlap. */
    int nplaces = omp_get_num_places();
    if (nplaces > 0) {
        for (int i = 0; i < nplaces; i++) {
            int ids[CPU_SETSIZE], n = omp_get_place_num_procs(i);
            if (n < 0 || n > CPU_SETSIZE)
                return 0;
            omp_get_place_proc_ids(i, ids);
            for (int j = 0; j < n; j++)
                if (ids[j] >= 0 && ids[j] < CPU_SETSIZE)
                    CPU_SET(ids[j], &set);
        }
        return CPU_COUNT(&set);
    }
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return CPU_COUNT(&set);
}
#endif

thread_count threads_resolve(int requested)
{
    thread_count t = { 1, 0 };
#ifdef _OPENMP
    if (requested > 0) {
        t.n = requested;
        return t;
    }
    int asked = omp_get_max_threads(), cpus = cpus_allowed(), limit = omp_get_thread_limit();
    if (limit > 0 && asked > limit) /* OMP_THREAD_LIMIT: OpenMP would run no more */
        asked = limit;
    if (asked < 1)
        asked = 1;
    t.n = cpus > 0 && asked > cpus ? cpus : asked;
    t.cut_from = t.n < asked ? asked : 0;
#else
    (void)requested;
#endif
    return t;
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
