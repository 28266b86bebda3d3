#include "tree.h"

uint32_t tree_root_level(size_t n)
{
    uint32_t l = 0;
    while (((size_t)1 << l) < n)
        l++;
    return l;
}

tree_node tree_root(size_t n)
{
    return (tree_node){ 0, tree_root_level(n) };
}

void tree_share(size_t n, int rank, int nranks, size_t *first, size_t *end)
{
    *first = n * (size_t)rank / (size_t)nranks;
    *end = n * ((size_t)rank + 1) / (size_t)nranks;
}

/* One past the last block of a node, clipped to n. */
static size_t node_end(size_t n, size_t first, uint32_t level)
{
    size_t end = first + ((size_t)1 << level);
    return end < n ? end : n;
}

size_t tree_cover(size_t n, size_t lo, size_t hi, tree_node *out)
{
    const uint32_t top = tree_root_level(n);
    size_t count = 0;
    while (lo < hi) {
        /* Grow the node at LO while it stays aligned and inside [lo, hi);
         * clipping at n lets a range that ends at n take a whole right edge. */
        uint32_t l = 0;
        while (l < top && lo % ((size_t)1 << (l + 1)) == 0 && node_end(n, lo, l + 1) <= hi)
            l++;
        out[count++] = (tree_node){ (uint32_t)lo, l };
        lo = node_end(n, lo, l);
    }
    return count;
}

static int inside_have(size_t i, uint32_t level, const tree_node *have, size_t nhave)
{
    for (size_t h = 0; h < nhave; h++)
        if (level <= have[h].level && i >= have[h].first && i < (size_t)have[h].first + ((size_t)1 << have[h].level))
            return 1;
    return 0;
}

size_t tree_pairs(size_t n, tree_node node, const tree_node *have, size_t nhave, tree_pair *out)
{
    size_t count = 0, end = node_end(n, node.first, node.level);
    for (uint32_t l = 1; l <= node.level; l++) {
        size_t step = (size_t)1 << l, half = step >> 1;
        for (size_t i = node.first; i < end; i += step)
            if (i + half < end && !inside_have(i, l, have, nhave))
                out[count++] = (tree_pair){ (uint32_t)i, (uint32_t)(i + half) };
    }
    return count;
}

int tree_up(size_t n, tree_node node, tree_node *parent, tree_pair *pair)
{
    const uint32_t level = node.level + 1;
    const size_t first = node.first & ~(((size_t)1 << level) - 1), half = (size_t)1 << node.level;
    *parent = (tree_node){ (uint32_t)first, level };
    if (first + half >= n)
        return 0;
    *pair = (tree_pair){ (uint32_t)first, (uint32_t)(first + half) };
    return 1;
}

void tree_apply(float *slots, size_t stride, const tree_pair *pairs, size_t npairs, size_t c0, size_t c1)
{
    for (size_t p = 0; p < npairs; p++) {
        float *restrict d = slots + pairs[p].dst * stride;
        const float *restrict s = slots + pairs[p].src * stride;
        for (size_t j = c0; j < c1; j++)
            d[j] += s[j];
    }
}
