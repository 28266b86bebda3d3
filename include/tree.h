/* tree.h - the order in which a batch's block gradients are summed: one
 * fixed binary tree over the blocks, so that one process, any thread count
 * and any number of MPI ranks add the same floats in the same pairs and get
 * the same bytes. Pure functions, no state.
 *
 * The leaves are blocks 0..n-1. Node (first, level) covers the blocks
 * [first, first + 2^level) clipped to n, with first a multiple of 2^level;
 * its sum is left + right, its children being (first, level-1) and
 * (first + 2^(level-1), level-1), or just the left child when the right one
 * is empty (starts at n or beyond). The root is (0, L), 2^L the smallest
 * power of two >= n. A node's sum lives in the slot of its first block, so
 * summing is a list of in-place additions slot[dst] += slot[src].
 *
 * With R ranks, rank r owns the blocks tree_share(n, r, R) and covers them
 * with the fewest aligned nodes (tree_cover): it sums those itself, and only
 * their sums travel; the additions above them (tree_pairs with HAVE = every
 * rank's nodes) are the root's remaining ones, in the same tree. */
#ifndef TRAINER_TREE_H
#define TRAINER_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t first, level;
} tree_node;

typedef struct {
    uint32_t dst, src; /* slot[dst] += slot[src] */
} tree_pair;

/* The smallest L with 2^L >= n (0 for n <= 1). */
uint32_t tree_root_level(size_t n);

/* The root node of an n-leaf tree. */
tree_node tree_root(size_t n);

/* The share of N items that RANK of NRANKS works on: [*first, *end). */
void tree_share(size_t n, int rank, int nranks, size_t *first, size_t *end);

/* The fewest aligned nodes of the n-leaf tree that cover blocks [lo, hi),
 * left to right, into OUT; returns how many. At most two per level, so
 * TREE_MAX_COVER is always room enough (and so is n). */
#define TREE_MAX_COVER 130
size_t tree_cover(size_t n, size_t lo, size_t hi, tree_node *out);

/* The additions, level by level from the bottom and left to right within a
 * level, that leave NODE's sum in the slot of its first block, given that
 * the slots of the HAVE nodes (aligned nodes, as tree_cover gives) already
 * hold their sums: the additions inside them are left out. HAVE may be NULL
 * when NHAVE is 0. OUT has room for n - 1 pairs; returns how many. */
size_t tree_pairs(size_t n, tree_node node, const tree_node *have, size_t nhave, tree_pair *out);

/* NODE's parent in the n-leaf tree, into *PARENT. Returns 1 with the
 * addition that completes the parent in *PAIR, or 0 when the parent has no
 * right child and so already holds NODE's sum. Summing bottom-up, each pair
 * done once both its children are complete, makes exactly tree_pairs'
 * additions for the root, in any order of the leaves. */
int tree_up(size_t n, tree_node node, tree_node *parent, tree_pair *pair);

/* Applies PAIRS to the columns [c0, c1) of the slots (slot k at
 * slots + k * stride). */
void tree_apply(float *slots, size_t stride, const tree_pair *pairs, size_t npairs, size_t c0, size_t c1);

#endif
