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

/* One step's layout, the same on every rank: each rank's subtrees (in rank
 * order, ALL[FROM[r], FROM[r+1])), its parameter columns [COLS[r],
 * COLS[r+1]), its samples [S0[r], S1[r]) and its message BYTES[r] in the
 * gathering, at DISPL[r]. The arrays live in dist_tree_sum's frame. */
typedef struct {
    float *slots;
    size_t stride, nparams, nblocks;
    dist_extras *x;
    int whole;
    size_t k, nall, total; /* this rank's subtrees; all ranks' */
    tree_node *mine, *all;
    tree_pair *pairs;
    size_t *from, *cols, *s0, *s1, *bytes;
    int *displ;
} step_plan;

static int plan_step(step_plan *p, tr_error *err)
{
    p->whole = send_whole(p->nparams, p->nblocks, size_);
    p->nall = p->total = 0;
    for (int r = 0; r < size_; r++) {
        p->from[r] = p->nall;
        p->nall += cover_of(p->nblocks, r, size_, p->all + p->nall);
        size_t c1;
        tree_share(p->nparams, r, size_, &p->cols[r], &c1);
        p->cols[r + 1] = c1;
        samples_of(p->nblocks, p->x->per, p->x->bs, r, size_, &p->s0[r], &p->s1[r]);
        p->bytes[r] = (p->whole ? (p->nall - p->from[r]) * p->nparams : c1 - p->cols[r]) * sizeof(float) + sizeof(int);
        for (int i = 0; i < DIST_MAX_ITEMS; i++)
            p->bytes[r] += p->x->items[i] ? (p->s1[r] - p->s0[r]) * p->x->item_bytes[i] : 0;
        p->displ[r] = p->total <= INT_MAX ? (int)p->total : 0; /* refused below if not */
        p->total += p->bytes[r];
    }
    p->from[size_] = p->nall;
    const size_t my_n = p->cols[rank_ + 1] - p->cols[rank_];
    if (p->total > INT_MAX || p->k * p->nparams > INT_MAX || p->nall * my_n > INT_MAX)
        return tr_fail(err, TR_ERUNTIME, "MPI: %zu bytes per step exceed MPI's int counts", p->total);
    return reserve(&gather_buf, &gather_cap, p->total, err);
}

/* Split form: rank d gets the columns it owns of each of this rank's
 * subtree sums; this rank finishes the tree on its own columns. */
static int exchange_columns(step_plan *p, tr_error *err)
{
    const size_t my0 = p->cols[rank_], my_n = p->cols[rank_ + 1] - my0;
    if (reserve(&send_buf, &send_cap, p->k * p->nparams * sizeof(float), err) != 0 ||
        reserve(&recv_buf, &recv_cap, p->nall * my_n * sizeof(float), err) != 0)
        return -1;
    int scount[size_], sdispl[size_], rcount[size_], rdispl[size_];
    float *sb = (float *)send_buf, *rb = (float *)recv_buf;
    size_t pos = 0;
    for (int d = 0; d < size_; d++) {
        sdispl[d] = (int)pos;
        const size_t n = p->cols[d + 1] - p->cols[d];
        for (size_t i = 0; d != rank_ && i < p->k; i++, pos += n)
            memcpy(sb + pos, p->slots + p->mine[i].first * p->stride + p->cols[d], n * sizeof(float));
        scount[d] = (int)pos - sdispl[d];
    }
    pos = 0;
    for (int r = 0; r < size_; r++) {
        rdispl[r] = (int)pos;
        rcount[r] = r == rank_ ? 0 : (int)((p->from[r + 1] - p->from[r]) * my_n);
        pos += (size_t)rcount[r];
    }
    if (MPI_Alltoallv(sb, scount, sdispl, MPI_FLOAT, rb, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS)
        return tr_fail(err, TR_ERUNTIME, "MPI_Alltoallv failed");
    for (int r = 0; r < size_; r++)
        for (size_t i = p->from[r]; r != rank_ && i < p->from[r + 1]; i++)
            memcpy(p->slots + p->all[i].first * p->stride + my0, rb + rdispl[r] + (i - p->from[r]) * my_n,
                   my_n * sizeof(float));
    tree_apply(p->slots, p->stride, p->pairs, tree_pairs(p->nblocks, tree_root(p->nblocks), p->all, p->nall, p->pairs),
               my0, my0 + my_n);
    return 0;
}

/* This rank's message in the gathering: its root share (or whole
 * subtrees), its samples' items and its flag. */
static void pack_mine(const step_plan *p)
{
    char *q = gather_buf + p->displ[rank_];
    if (p->whole)
        for (size_t i = 0; i < p->k; i++)
            q = put(q, p->slots + p->mine[i].first * p->stride, p->nparams * sizeof(float));
    else
        q = put(q, p->slots + p->cols[rank_], (p->cols[rank_ + 1] - p->cols[rank_]) * sizeof(float));
    const dist_extras *x = p->x;
    for (int i = 0; i < DIST_MAX_ITEMS; i++)
        if (x->items[i])
            q = put(q, (char *)x->items[i] + p->s0[rank_] * x->item_bytes[i],
                    (p->s1[rank_] - p->s0[rank_]) * x->item_bytes[i]);
    put(q, &x->flag, sizeof(int));
}

/* Rank R's message, back where it belongs: subtree sums into the slots or
 * the root share into OUT, the items into X, the flag or-ed. */
static void unpack(const step_plan *p, int r, float *out)
{
    const char *q = gather_buf + p->displ[r];
    const size_t row = p->nparams * sizeof(float);
    if (p->whole) {
        for (size_t i = p->from[r]; i < p->from[r + 1]; i++, q += row)
            if (r != rank_)
                memcpy(p->slots + p->all[i].first * p->stride, q, row);
    } else {
        const size_t n = (p->cols[r + 1] - p->cols[r]) * sizeof(float);
        memcpy(out + p->cols[r], q, n);
        q += n;
    }
    dist_extras *x = p->x;
    for (int i = 0; i < DIST_MAX_ITEMS; i++)
        if (x->items[i]) {
            size_t n = (p->s1[r] - p->s0[r]) * x->item_bytes[i];
            if (r != rank_)
                memcpy((char *)x->items[i] + p->s0[r] * x->item_bytes[i], q, n);
            q += n;
        }
    int flag;
    memcpy(&flag, q, sizeof flag);
    x->flag |= flag;
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
    size_t from[size_ + 1], cols[size_ + 1], s0[size_], s1[size_], bytes[size_];
    int displ[size_], counts[size_];
    step_plan p = { slots, stride, nparams, nblocks, x, 0, k, 0, 0, mine, all, pairs, from, cols, s0, s1, bytes, displ };
    if (plan_step(&p, err) != 0 || (!p.whole && exchange_columns(&p, err) != 0))
        return -1;
    pack_mine(&p);
    for (int r = 0; r < size_; r++)
        counts[r] = (int)bytes[r];
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gather_buf, counts, displ, MPI_BYTE, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return tr_fail(err, TR_ERUNTIME, "MPI_Allgatherv failed");
    for (int r = 0; r < size_; r++)
        unpack(&p, r, out);
    if (p.whole) {
        /* Every rank finishes the whole tree. */
        tree_apply(slots, stride, pairs, tree_pairs(nblocks, tree_root(nblocks), all, p.nall, pairs), 0, nparams);
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
