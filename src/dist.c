#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

void dist_share(size_t n, int rank, size_t *first, size_t *end)
{
    tree_share(n, rank, dist_size(), first, end);
}

size_t dist_step_bytes(size_t nparams, size_t nblocks, size_t bs, size_t item_bytes, int rank, int nranks)
{
    if (nranks <= 1 || nblocks == 0)
        return 0;
    size_t b0, b1, c0, c1;
    tree_share(nblocks, rank, nranks, &b0, &b1);
    tree_share(nparams, rank, nranks, &c0, &c1);
    tree_node nodes[TREE_MAX_COVER];
    size_t k = tree_cover(nblocks, b0, b1, nodes);
    size_t per = (bs + nblocks - 1) / nblocks;
    size_t s0 = b0 * per < bs ? b0 * per : bs, s1 = b1 * per < bs ? b1 * per : bs;
    /* Its subtrees' sums, less its own share of the parameters; then its
     * share of the root to every other rank; then its samples' items. */
    return (k * (nparams - (c1 - c0)) + (c1 - c0) * (size_t)(nranks - 1)) * sizeof(float) +
           (s1 - s0) * item_bytes * (size_t)(nranks - 1);
}

/* Sums the subtrees that this rank owns, in place, over all parameters;
 * puts their nodes in MINE and returns how many. */
static size_t sum_own_subtrees(float *slots, size_t stride, size_t nparams, size_t nblocks, tree_node *mine,
                               tree_pair *pairs)
{
    size_t b0, b1;
    dist_share(nblocks, dist_rank(), &b0, &b1);
    size_t k = tree_cover(nblocks, b0, b1, mine);
    for (size_t i = 0; i < k; i++)
        tree_apply(slots, stride, pairs, tree_pairs(nblocks, mine[i], NULL, 0, pairs), 0, nparams);
    return k;
}

#ifdef TRAINER_MPI
#include <mpi.h>

static int rank_, size_ = 1;
/* dist_tree_sum's packing buffers, kept between steps so a step allocates nothing. */
static float *send_buf, *recv_buf;
static size_t send_cap, recv_cap;

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
    free(send_buf);
    free(recv_buf);
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

/* Grows *BUF to hold N floats. */
static int reserve(float **buf, size_t *cap, size_t n, tr_error *err)
{
    if (n <= *cap)
        return 0;
    float *p = realloc(*buf, n * sizeof(float));
    if (!p)
        return tr_fail(err, TR_ERUNTIME, "MPI: out of memory for %zu exchange floats", n);
    *buf = p;
    *cap = n;
    return 0;
}

int dist_tree_sum(float *slots, size_t stride, size_t nparams, size_t nblocks, float *out, tr_error *err)
{
    if (nblocks == 0 || nblocks > 4096)
        return tr_fail(err, TR_ERUNTIME, "MPI: %zu blocks per batch, expected 1 to 4096", nblocks);
    tree_pair pairs[nblocks];
    tree_node mine[TREE_MAX_COVER], all[nblocks];
    size_t k = sum_own_subtrees(slots, stride, nparams, nblocks, mine, pairs);
    if (size_ == 1) {
        memcpy(out, slots, nparams * sizeof(float));
        return 0;
    }
    /* Every rank's subtrees, in rank order (each rank's covers the blocks
     * after the previous one's), and each rank's share of the parameters. */
    int scount[size_], sdispl[size_], rcount[size_], rdispl[size_];
    size_t nall = 0, cols[size_ + 1], from[size_];
    for (int r = 0; r < size_; r++) {
        size_t b0, b1, c1;
        dist_share(nblocks, r, &b0, &b1);
        from[r] = nall;
        nall += tree_cover(nblocks, b0, b1, all + nall);
        dist_share(nparams, r, &cols[r], &c1);
        cols[r + 1] = c1;
    }
    const size_t my0 = cols[rank_], mine_n = cols[rank_ + 1] - my0;
    if (k * nparams > INT_MAX || nall * mine_n > INT_MAX)
        return tr_fail(err, TR_ERUNTIME, "MPI: %zu floats per step exceed MPI's int counts", k * nparams);
    if (reserve(&send_buf, &send_cap, k * nparams, err) != 0 || reserve(&recv_buf, &recv_cap, nall * mine_n, err) != 0)
        return -1;
    /* Rank d gets the columns it owns of each of this rank's subtree sums. */
    size_t pos = 0;
    for (int d = 0; d < size_; d++) {
        sdispl[d] = (int)pos;
        if (d != rank_)
            for (size_t i = 0; i < k; i++) {
                memcpy(send_buf + pos, slots + mine[i].first * stride + cols[d], (cols[d + 1] - cols[d]) * sizeof(float));
                pos += cols[d + 1] - cols[d];
            }
        scount[d] = (int)pos - sdispl[d];
    }
    pos = 0;
    for (int r = 0; r < size_; r++) {
        size_t nr = (r + 1 < size_ ? from[r + 1] : nall) - from[r];
        rdispl[r] = (int)pos;
        rcount[r] = r == rank_ ? 0 : (int)(nr * mine_n);
        pos += (size_t)rcount[r];
    }
    if (MPI_Alltoallv(send_buf, scount, sdispl, MPI_FLOAT, recv_buf, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return tr_fail(err, TR_ERUNTIME, "MPI_Alltoallv failed");
    for (int r = 0; r < size_; r++) {
        if (r == rank_)
            continue;
        size_t nr = (r + 1 < size_ ? from[r + 1] : nall) - from[r];
        for (size_t i = 0; i < nr; i++)
            memcpy(slots + all[from[r] + i].first * stride + my0, recv_buf + rdispl[r] + i * mine_n,
                   mine_n * sizeof(float));
    }
    /* The rest of the tree, above every rank's subtrees, on this rank's
     * columns; then every rank gets every share. */
    tree_apply(slots, stride, pairs, tree_pairs(nblocks, tree_root(nblocks), all, nall, pairs), my0, my0 + mine_n);
    memcpy(out + my0, slots + my0, mine_n * sizeof(float));
    for (int r = 0; r < size_; r++) {
        rcount[r] = (int)(cols[r + 1] - cols[r]);
        rdispl[r] = (int)cols[r];
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD) !=
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

int dist_tree_sum(float *slots, size_t stride, size_t nparams, size_t nblocks, float *out, tr_error *err)
{
    if (nblocks == 0 || nblocks > 4096)
        return tr_fail(err, TR_ERUNTIME, "%zu blocks per batch, expected 1 to 4096", nblocks);
    tree_pair pairs[nblocks];
    tree_node mine[TREE_MAX_COVER];
    sum_own_subtrees(slots, stride, nparams, nblocks, mine, pairs);
    memcpy(out, slots, nparams * sizeof(float));
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
