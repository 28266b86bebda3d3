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

/* This rank's subtrees (tree_cover of its blocks) into MINE; returns how many. */
static size_t cover_of(size_t nblocks, int rank, int nranks, tree_node *mine)
{
    size_t b0, b1;
    tree_share(nblocks, rank, nranks, &b0, &b1);
    return tree_cover(nblocks, b0, b1, mine);
}

/* The floats RANK sends per step when the ranks send their whole subtree
 * sums to every other rank (WHOLE), or else split by parameter shares:
 * rank d gets the columns it owns of each subtree, and later each rank's
 * share of the root goes to all. */
static size_t floats_sent(size_t nparams, size_t nblocks, int rank, int nranks, int whole)
{
    tree_node nodes[TREE_MAX_COVER];
    size_t k = cover_of(nblocks, rank, nranks, nodes), c0, c1;
    tree_share(nparams, rank, nranks, &c0, &c1);
    if (whole)
        return k * nparams * (size_t)(nranks - 1);
    return k * (nparams - (c1 - c0)) + (c1 - c0) * (size_t)(nranks - 1);
}

/* Whole subtrees when that sends no more than the split at its worst: it
 * needs one collective where the split needs two (for 2 ranks with one
 * subtree each, the bytes are the same). The same answer on every rank. */
static int send_whole(size_t nparams, size_t nblocks, int nranks)
{
    size_t whole = 0, split = 0;
    for (int r = 0; r < nranks; r++) {
        size_t w = floats_sent(nparams, nblocks, r, nranks, 1), p = floats_sent(nparams, nblocks, r, nranks, 0);
        whole = w > whole ? w : whole;
        split = p > split ? p : split;
    }
    return whole <= split;
}

/* The samples of RANK's blocks: [*s0, *s1). */
static void samples_of(size_t nblocks, size_t per, size_t bs, int rank, int nranks, size_t *s0, size_t *s1)
{
    size_t b0, b1;
    tree_share(nblocks, rank, nranks, &b0, &b1);
    *s0 = b0 * per < bs ? b0 * per : bs;
    *s1 = b1 * per < bs ? b1 * per : bs;
}

size_t dist_step_bytes(size_t nparams, size_t nblocks, size_t bs, size_t item_bytes, int rank, int nranks)
{
    if (nranks <= 1 || nblocks == 0)
        return 0;
    size_t s0, s1;
    samples_of(nblocks, (bs + nblocks - 1) / nblocks, bs, rank, nranks, &s0, &s1);
    return floats_sent(nparams, nblocks, rank, nranks, send_whole(nparams, nblocks, nranks)) * sizeof(float) +
           ((s1 - s0) * item_bytes + sizeof(int)) * (size_t)(nranks - 1);
}

/* Sums the subtrees that this rank owns, in place, over all parameters;
 * puts their nodes in MINE and returns how many. */
static size_t sum_own_subtrees(float *slots, size_t stride, size_t nparams, size_t nblocks, tree_node *mine,
                               tree_pair *pairs)
{
    size_t k = cover_of(nblocks, dist_rank(), dist_size(), mine);
    for (size_t i = 0; i < k; i++)
        tree_apply(slots, stride, pairs, tree_pairs(nblocks, mine[i], NULL, 0, pairs), 0, nparams);
    return k;
}

#ifdef TRAINER_MPI
#include <mpi.h>

static int rank_, size_ = 1;
/* dist_tree_sum's packing buffers, kept between steps so a step allocates nothing. */
static char *send_buf, *recv_buf, *gather_buf;
static size_t send_cap, recv_cap, gather_cap;

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
    free(gather_buf);
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

/* Grows *BUF to hold N bytes, 4-byte aligned (malloc's alignment). */
static int reserve(char **buf, size_t *cap, size_t n, tr_error *err)
{
    if (n <= *cap)
        return 0;
    char *p = realloc(*buf, n);
    if (!p)
        return tr_fail(err, TR_ERUNTIME, "MPI: out of memory for %zu exchange bytes", n);
    *buf = p;
    *cap = n;
    return 0;
}

/* Copies BYTES into a message and returns the end (the gathered messages
 * mix floats and bytes, so their floats may be unaligned). */
static char *put(char *to, const void *from, size_t bytes)
{
    memcpy(to, from, bytes);
    return to + bytes;
}

int dist_tree_sum(float *slots, size_t stride, size_t nparams, size_t nblocks, float *out, dist_extras *x,
                  tr_error *err)
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
    const int whole = send_whole(nparams, nblocks, size_);
    /* Every rank's subtrees, in rank order, and each rank's parameter
     * share, samples and message size in the gathering. */
    int scount[size_], sdispl[size_], rcount[size_], rdispl[size_];
    size_t nall = 0, from[size_ + 1], cols[size_ + 1], s0[size_], s1[size_], bytes[size_], total = 0;
    for (int r = 0; r < size_; r++) {
        from[r] = nall;
        nall += cover_of(nblocks, r, size_, all + nall);
        size_t c1;
        tree_share(nparams, r, size_, &cols[r], &c1);
        cols[r + 1] = c1;
        samples_of(nblocks, x->per, x->bs, r, size_, &s0[r], &s1[r]);
        bytes[r] = (whole ? (nall - from[r]) * nparams : c1 - cols[r]) * sizeof(float) + sizeof(int);
        for (int i = 0; i < DIST_MAX_ITEMS; i++)
            bytes[r] += x->items[i] ? (s1[r] - s0[r]) * x->item_bytes[i] : 0;
        total += bytes[r];
    }
    from[size_] = nall;
    const size_t my0 = cols[rank_], my_n = cols[rank_ + 1] - my0;
    if (total > INT_MAX || k * nparams > INT_MAX || nall * my_n > INT_MAX)
        return tr_fail(err, TR_ERUNTIME, "MPI: %zu bytes per step exceed MPI's int counts", total);
    if (reserve(&gather_buf, &gather_cap, total, err) != 0)
        return -1;

    if (!whole) {
        /* Rank d gets the columns it owns of each of this rank's subtree
         * sums; this rank finishes the tree on its own columns. */
        if (reserve(&send_buf, &send_cap, k * nparams * sizeof(float), err) != 0 ||
            reserve(&recv_buf, &recv_cap, nall * my_n * sizeof(float), err) != 0)
            return -1;
        float *sb = (float *)send_buf, *rb = (float *)recv_buf;
        size_t pos = 0;
        for (int d = 0; d < size_; d++) {
            sdispl[d] = (int)pos;
            for (size_t i = 0; d != rank_ && i < k; i++) {
                memcpy(sb + pos, slots + mine[i].first * stride + cols[d], (cols[d + 1] - cols[d]) * sizeof(float));
                pos += cols[d + 1] - cols[d];
            }
            scount[d] = (int)pos - sdispl[d];
        }
        pos = 0;
        for (int r = 0; r < size_; r++) {
            rdispl[r] = (int)pos;
            rcount[r] = r == rank_ ? 0 : (int)((from[r + 1] - from[r]) * my_n);
            pos += (size_t)rcount[r];
        }
        if (MPI_Alltoallv(sb, scount, sdispl, MPI_FLOAT, rb, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return tr_fail(err, TR_ERUNTIME, "MPI_Alltoallv failed");
        for (int r = 0; r < size_; r++)
            for (size_t i = from[r]; r != rank_ && i < from[r + 1]; i++)
                memcpy(slots + all[i].first * stride + my0, rb + rdispl[r] + (i - from[r]) * my_n,
                       my_n * sizeof(float));
        tree_apply(slots, stride, pairs, tree_pairs(nblocks, tree_root(nblocks), all, nall, pairs), my0,
                   my0 + my_n);
    }

    /* The gathering: this rank's root share (or whole subtrees), its
     * samples' items and its flag, to every rank. */
    size_t displ = 0;
    for (int r = 0; r < rank_; r++)
        displ += bytes[r];
    char *p = gather_buf + displ;
    if (whole)
        for (size_t i = 0; i < k; i++)
            p = put(p, slots + mine[i].first * stride, nparams * sizeof(float));
    else
        p = put(p, slots + my0, my_n * sizeof(float));
    for (int i = 0; i < DIST_MAX_ITEMS; i++)
        if (x->items[i])
            p = put(p, (char *)x->items[i] + s0[rank_] * x->item_bytes[i], (s1[rank_] - s0[rank_]) * x->item_bytes[i]);
    p = put(p, &x->flag, sizeof(int));
    displ = 0;
    for (int r = 0; r < size_; r++) {
        rcount[r] = (int)bytes[r];
        rdispl[r] = (int)displ;
        displ += bytes[r];
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gather_buf, rcount, rdispl, MPI_BYTE, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return tr_fail(err, TR_ERUNTIME, "MPI_Allgatherv failed");
    for (int r = 0; r < size_; r++) {
        const char *q = gather_buf + rdispl[r];
        if (whole) {
            for (size_t i = from[r]; i < from[r + 1]; i++, q += nparams * sizeof(float))
                if (r != rank_)
                    memcpy(slots + all[i].first * stride, q, nparams * sizeof(float));
        } else {
            memcpy(out + cols[r], q, (cols[r + 1] - cols[r]) * sizeof(float));
            q += (cols[r + 1] - cols[r]) * sizeof(float);
        }
        for (int i = 0; i < DIST_MAX_ITEMS; i++)
            if (x->items[i]) {
                size_t n = (s1[r] - s0[r]) * x->item_bytes[i];
                if (r != rank_)
                    memcpy((char *)x->items[i] + s0[r] * x->item_bytes[i], q, n);
                q += n;
            }
        int flag;
        memcpy(&flag, q, sizeof flag);
        x->flag |= flag;
    }
    if (whole) {
        /* Every rank finishes the whole tree. */
        tree_apply(slots, stride, pairs, tree_pairs(nblocks, tree_root(nblocks), all, nall, pairs), 0, nparams);
        memcpy(out, slots, nparams * sizeof(float));
    }
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

int dist_tree_sum(float *slots, size_t stride, size_t nparams, size_t nblocks, float *out, dist_extras *x,
                  tr_error *err)
{
    (void)x;
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
