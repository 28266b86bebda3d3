#include "threads.h"

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
