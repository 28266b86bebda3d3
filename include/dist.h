/* dist.h - data parallelism across processes with MPI (built with
 * `make MPI=1`). Every rank holds the same weights; each computes the
 * gradient blocks of its share of a batch and sums them up to the whole
 * subtrees it owns of the batch's summation tree (tree.h); only those sums
 * travel, and the ranks finish the same tree in the same order, so the
 * model bytes do not depend on the number of ranks. Without MPI every
 * function is the one-process identity, so callers need no #ifdef. */
#ifndef TRAINER_DIST_H
#define TRAINER_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

int dist_init(int *argc, char ***argv);
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);

/* The share of N items (blocks, images) that RANK works on: [*first, *end). */
void dist_share(size_t n, int rank, size_t *first, size_t *end);

/* Work is shared out in blocks: rank r owns blocks dist_share(nblocks, r),
 * and block k covers items [k*per, min((k+1)*per, total)). After each rank
 * filled the items of its blocks in BUF (ITEM_BYTES each, consecutive),
 * this gives every rank all of them. */
int dist_allgather(void *buf, size_t nblocks, size_t per, size_t total, size_t item_bytes, tr_error *err);

/* What travels with a batch's gradient: per-sample items (the losses, the
 * hits) of each rank's blocks, block k holding items [k*per, min((k+1)*per,
 * bs)), and a flag (a stop signal) that ends up true on every rank when it
 * is true on any. Unused items are NULL. */
#define DIST_MAX_ITEMS 2
typedef struct {
    void *items[DIST_MAX_ITEMS];
    size_t item_bytes[DIST_MAX_ITEMS];
    size_t per, bs;
    int flag;
} dist_extras;

/* The batch's gradient, summed over the NBLOCKS-block tree of tree.h. On
 * entry each rank's own blocks (tree_share) are filled in SLOTS (block k at
 * slots + k*stride, NPARAMS floats each), and its samples' items in X; the
 * other slots are scratch. Each rank sums its own subtrees; then either
 * every rank sends those sums to every other and all finish the tree, or,
 * when that would send more (3 ranks and up), every rank sends each other
 * rank that rank's share of the parameters of its sums (MPI_Alltoallv),
 * finishes the tree on its own share, and the shares are gathered. The
 * gathering (MPI_Allgatherv) also carries the items and the flag. OUT[0,
 * nparams) ends up with the root, the same bytes on every rank. One process
 * simply sums the tree. */
int dist_tree_sum(float *slots, size_t stride, size_t nparams, size_t nblocks, float *out, dist_extras *x,
                  tr_error *err);

/* The bytes RANK of NRANKS hands to MPI for other ranks in one step of
 * dist_tree_sum with ITEM_BYTES of items per sample, a batch of BS samples
 * in NBLOCKS blocks: 0 for one rank. What a rank gathers to all counts once
 * per receiving rank, as a direct or ring allgather sends it. */
size_t dist_step_bytes(size_t nparams, size_t nblocks, size_t bs, size_t item_bytes, int rank, int nranks);

/* True on every rank when FLAG is true on any (a stop signal seen by one
 * rank stops them all at the same batch). */
int dist_any(int flag);

/* Makes a failure on any rank the failure of all: returns RC (0 or -1) of
 * the lowest failing rank on every rank, with its message in ERR, so the
 * job ends with one clear message instead of hanging in a collective. */
int dist_agree(int rc, tr_error *err);

#endif
