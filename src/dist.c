#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

void dist_share(size_t n, int rank, size_t *first, size_t *end)
{
    size_t size = (size_t)dist_size();
    *first = n * (size_t)rank / size;
    *end = n * ((size_t)rank + 1) / size;
}

#ifdef TRAINER_MPI
#include <mpi.h>

static int rank_, size_ = 1;

int dist_init(int *argc, char ***argv)
{
    int provided;
    /* Only the thread that called MPI_Init makes MPI calls. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    return 0;
}

void dist_finalize(void)
{
    MPI_Finalize();
}

int dist_rank(void)
{
    return rank_;
}

int dist_size(void)
{
    return size_;
}

int dist_allgather(void *buf, size_t nblocks, size_t per, size_t total, size_t item_bytes, tr_error *err)
{
    if (size_ == 1)
        return 0;
    int counts[size_], displs[size_];
    if (total * item_bytes > INT_MAX)
        return tr_fail(err, TR_ERUNTIME, "MPI: %zu bytes per step exceed MPI's int counts", total * item_bytes);
    for (int r = 0; r < size_; r++) {
        size_t first, end;
        dist_share(nblocks, r, &first, &end);
        first = first * per < total ? first * per : total;
        end = end * per < total ? end * per : total;
        counts[r] = (int)((end - first) * item_bytes);
        displs[r] = (int)(first * item_bytes);
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_BYTE, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return tr_fail(err, TR_ERUNTIME, "MPI_Allgatherv failed");
    return 0;
}

int dist_any(int flag)
{
    if (size_ == 1)
        return flag;
    int any = 0;
    MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return any;
}

int dist_agree(int rc, tr_error *err)
{
    if (size_ == 1)
        return rc;
    int mine = rc != 0 ? rank_ : INT_MAX, first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX)
        return 0;
    tr_error shared = *err;
    MPI_Bcast(&shared, (int)sizeof shared, MPI_BYTE, first, MPI_COMM_WORLD);
    /* Only rank 0 prints: name the rank that failed when it is another. */
    memcpy(err->msg, shared.msg, sizeof err->msg);
    if (first != 0 && snprintf(err->msg, sizeof err->msg, "rank %d: %s", first, shared.msg) < 0)
        memcpy(err->msg, shared.msg, sizeof err->msg);
    err->code = shared.code;
    return -1;
}

#else /* one process */

int dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

void dist_finalize(void) {}

int dist_rank(void)
{
    return 0;
}

int dist_size(void)
{
    return 1;
}

int dist_allgather(void *buf, size_t nblocks, size_t per, size_t total, size_t item_bytes, tr_error *err)
{
    (void)buf;
    (void)nblocks;
    (void)per;
    (void)total;
    (void)item_bytes;
    (void)err;
    return 0;
}

int dist_any(int flag)
{
    return flag;
}

int dist_agree(int rc, tr_error *err)
{
    (void)err;
    return rc;
}

#endif
