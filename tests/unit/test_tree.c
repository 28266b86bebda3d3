/* test_tree.c - the summation tree (tree.h): the additions one process
 * makes, the subtrees each of R ranks owns, the additions above them,
 * worked out by hand; then, for every block count up to 64 and 1 to 9
 * ranks, that the ranks' subtrees tile the blocks and that summing them
 * the distributed way gives the one-process bytes; and that summing
 * bottom-up as blocks finish, in any order, gives them too. */
#include "tests.h"

#include <string.h>

#include "dist.h"
#include "tree.h"

static void assert_pairs(const tree_pair *got, size_t n, const tree_pair *want, size_t wn)
{
    if (n != wn)
        fail_msg("%zu additions, want %zu", n, wn);
    for (size_t i = 0; i < n; i++)
        if (got[i].dst != want[i].dst || got[i].src != want[i].src)
            fail_msg("addition %zu is slot[%u] += slot[%u], want slot[%u] += slot[%u]", i, got[i].dst, got[i].src,
                     want[i].dst, want[i].src);
}

static void assert_nodes(const tree_node *got, size_t n, const tree_node *want, size_t wn)
{
    if (n != wn)
        fail_msg("%zu nodes, want %zu", n, wn);
    for (size_t i = 0; i < n; i++)
        if (got[i].first != want[i].first || got[i].level != want[i].level)
            fail_msg("node %zu is (%u, %u), want (%u, %u)", i, got[i].first, got[i].level, want[i].first,
                     want[i].level);
}

/* Five blocks: ((b0 + b1) + (b2 + b3)) + b4, level by level. */
static void one_process_order(void **state)
{
    (void)state;
    tree_pair p[64];
    const tree_pair five[] = { { 0, 1 }, { 2, 3 }, { 0, 2 }, { 0, 4 } };
    assert_pairs(p, tree_pairs(5, tree_root(5), NULL, 0, p), five, 4);
    assert_int_equal(tree_pairs(1, tree_root(1), NULL, 0, p), 0);
    const tree_pair two[] = { { 0, 1 } };
    assert_pairs(p, tree_pairs(2, tree_root(2), NULL, 0, p), two, 1);

    /* The floats: chosen so that block order gives another sum. */
    float slots[5] = { 1e8f, 1.0f, -1e8f, 1.0f, 0.5f };
    volatile float b[5] = { 1e8f, 1.0f, -1e8f, 1.0f, 0.5f };
    float want = ((b[0] + b[1]) + (b[2] + b[3])) + b[4];
    float in_block_order = (((b[0] + b[1]) + b[2]) + b[3]) + b[4];
    assert_true(want != in_block_order);
    tree_apply(slots, 1, p, tree_pairs(5, tree_root(5), NULL, 0, p), 0, 1);
    assert_true(slots[0] == want);
}

/* 64 blocks over 3 ranks: [0,21), [21,42), [42,64). */
static void three_ranks_of_64(void **state)
{
    (void)state;
    tree_node got[TREE_MAX_COVER], all[64];
    size_t nall = 0;
    const tree_node want[3][5] = { { { 0, 4 }, { 16, 2 }, { 20, 0 } },
                                   { { 21, 0 }, { 22, 1 }, { 24, 3 }, { 32, 3 }, { 40, 1 } },
                                   { { 42, 1 }, { 44, 2 }, { 48, 4 } } };
    const size_t wn[3] = { 3, 5, 3 };
    for (int r = 0; r < 3; r++) {
        size_t b0, b1;
        tree_share(64, r, 3, &b0, &b1);
        size_t k = tree_cover(64, b0, b1, got);
        assert_nodes(got, k, want[r], wn[r]);
        memcpy(all + nall, got, k * sizeof got[0]);
        nall += k;
    }
    tree_pair p[64];
    const tree_pair above[] = { { 20, 21 }, { 20, 22 }, { 40, 42 }, { 16, 20 }, { 40, 44 },
                                { 16, 24 }, { 32, 40 }, { 0, 16 },  { 32, 48 }, { 0, 32 } };
    assert_pairs(p, tree_pairs(64, tree_root(64), all, nall, p), above, 10);
    /* Inside rank 1's (22, 1): one addition. */
    const tree_pair inside[] = { { 22, 23 } };
    assert_pairs(p, tree_pairs(64, all[4], NULL, 0, p), inside, 1);
    /* A share that runs to the end of 5 blocks takes the clipped right edge. */
    size_t k = tree_cover(5, 4, 5, got);
    const tree_node edge[] = { { 4, 2 } };
    assert_nodes(got, k, edge, 1);
}

/* Every n <= 64 and R <= 9: the ranks' nodes are aligned and tile [0, n) in
 * order, every block but 0 is added exactly once, and the distributed sum
 * (each rank its subtrees, then the rest above them) equals the one-process
 * sum bit for bit. */
static void any_split_gives_one_process_bytes(void **state)
{
    (void)state;
    enum { COLS = 3 };
    float blocks[64 * COLS], one[64 * COLS], many[64 * COLS];
    fill_uniform(blocks, 64 * COLS, -1.0f, 1.0f, 14);
    for (int i = 0; i < 64 * COLS; i += 7)
        blocks[i] *= 1e6f; /* large terms make the order show */
    tree_pair p[64];
    for (size_t n = 1; n <= 64; n++) {
        memcpy(one, blocks, sizeof blocks);
        size_t np = tree_pairs(n, tree_root(n), NULL, 0, p);
        assert_int_equal(np, n - 1);
        int added[64] = { 0 };
        for (size_t i = 0; i < np; i++)
            added[p[i].src]++;
        for (size_t i = 1; i < n; i++)
            assert_int_equal(added[i], 1);
        tree_apply(one, COLS, p, np, 0, COLS);
        for (int R = 1; R <= 9; R++) {
            memcpy(many, blocks, sizeof blocks);
            tree_node all[64];
            size_t nall = 0, next = 0;
            for (int r = 0; r < R; r++) {
                size_t b0, b1;
                tree_share(n, r, R, &b0, &b1);
                size_t k = tree_cover(n, b0, b1, all + nall);
                assert_true(k <= TREE_MAX_COVER);
                for (size_t i = nall; i < nall + k; i++) {
                    assert_int_equal(all[i].first, next);
                    assert_int_equal(all[i].first % (1u << all[i].level), 0);
                    size_t end = all[i].first + ((size_t)1 << all[i].level);
                    next = end < n ? end : n;
                    tree_apply(many, COLS, p, tree_pairs(n, all[i], NULL, 0, p), 0, COLS);
                }
                nall += k;
                assert_int_equal(next, b1);
            }
            assert_int_equal(next, n);
            /* The rest, one column at a time as the ranks split them. */
            size_t na = tree_pairs(n, tree_root(n), all, nall, p);
            for (int c = 0; c < COLS; c++)
                tree_apply(many, COLS, p, na, (size_t)c, (size_t)c + 1);
            if (memcmp(one, many, COLS * sizeof(float)) != 0)
                fail_msg("%zu blocks over %d ranks: the sum differs from one process's", n, R);
        }
    }
}

/* Summing as the blocks finish (train.c): each pair done by the second of
 * its children to complete, the leaves completing in a shuffled order, is
 * the same additions as tree_pairs and the same bytes, for every block
 * count up to 256 (train.blocks' ceiling). */
static void bottom_up_in_any_order_gives_the_same_bytes(void **state)
{
    (void)state;
    enum { N = 256, COLS = 2 };
    static float blocks[N * COLS], one[N * COLS], eager[N * COLS];
    fill_uniform(blocks, N * COLS, -1.0f, 1.0f, 15);
    for (int i = 0; i < N * COLS; i += 5)
        blocks[i] *= 1e6f;
    static tree_pair p[N];
    uint64_t rng = 88172645463325252ull;
    for (size_t n = 1; n <= N; n++) {
        memcpy(one, blocks, sizeof blocks);
        memcpy(eager, blocks, sizeof blocks);
        tree_apply(one, COLS, p, tree_pairs(n, tree_root(n), NULL, 0, p), 0, COLS);
        uint32_t order[N];
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        for (size_t i = n; i > 1; i--) { /* xorshift Fisher-Yates */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t j = rng % i;
            uint32_t t = order[i - 1];
            order[i - 1] = order[j], order[j] = t;
        }
        int arrived[N] = { 0 }, done = 0;
        for (size_t i = 0; i < n; i++) {
            tree_node node = { order[i], 0 }, parent;
            tree_pair pair;
            while (node.level < tree_root_level(n)) {
                if (tree_up(n, node, &parent, &pair)) {
                    if (arrived[pair.src]++ == 0)
                        break;
                    tree_apply(eager, COLS, &pair, 1, 0, COLS);
                    done++;
                }
                node = parent;
            }
        }
        assert_int_equal(done, n - 1);
        if (memcmp(one, eager, COLS * sizeof(float)) != 0)
            fail_msg("%zu blocks summed bottom-up: the root differs from tree_apply's", n);
    }
}

/* What the start-up line prints. At batch 64 over 2 ranks each sends its
 * half-tree's sum whole (one collective; the same bytes as splitting it by
 * parameters), its 32 samples' loss and hit and its stop flag. Over 3 ranks
 * the sums go split by parameter shares: rank 1 has 5 subtrees, sends the
 * other ranks' 3996 columns of each and its 1998 columns of the root to 2
 * ranks. */
static void bytes_per_step(void **state)
{
    (void)state;
    assert_int_equal(dist_step_bytes(5994, 64, 64, 5, 0, 1), 0);
    assert_int_equal(dist_step_bytes(5994, 64, 64, 5, 0, 2), 5994 * 4 + 32 * 5 + 4);
    assert_int_equal(dist_step_bytes(5994, 64, 64, 5, 1, 2), 5994 * 4 + 32 * 5 + 4);
    assert_int_equal(dist_step_bytes(5994, 64, 64, 5, 1, 3), (5 * 3996 + 2 * 1998) * 4 + (21 * 5 + 4) * 2);
    /* 4 ranks, one 16-block subtree each: 3/4 + 3/4 of a gradient. */
    assert_int_equal(dist_step_bytes(6000, 64, 64, 5, 2, 4), (4500 + 3 * 1500) * 4 + (16 * 5 + 4) * 3);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(one_process_order),
    cmocka_unit_test(three_ranks_of_64),
    cmocka_unit_test(any_split_gives_one_process_bytes),
    cmocka_unit_test(bottom_up_in_any_order_gives_the_same_bytes),
    cmocka_unit_test(bytes_per_step),
};

TEST_GROUP(tree_group, tests);
