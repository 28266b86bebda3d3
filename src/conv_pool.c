/* conv_pool.c - the backward pass of a ReLU conv whose output goes only into
 * a 2x2 max pool of stride 2.
 *
 * Each window sends its gradient to one output, its argmax, and only where
 * the window's output is > 0: at least 3 in 4 of the conv's output
 * gradients are zeros. The dense kernels multiply them all; here dw and db
 * sum only the windows' winners, each a rank-1 update of dw by one input
 * patch. (din, where the layer has one, is left to conv_backward: scattered
 * patches of the weights would be stores that wait on each other.) */
#include <string.h>

#include "layers.h"

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(TRAINER_NO_VECTORS)
#define SPARSE_DW 1
#include <immintrin.h>

/* Bounds of the per-thread buffers below (the default network needs 1,568
 * floats of pairs and 144 winners). */
enum { PAIRS_MAX = 24 * 1024, WINNERS_MAX = 1024, TILE_MAX = 4096 };

/* Per thread, reused by every call. */
static _Thread_local float pairs[PAIRS_MAX + 16] __attribute__((aligned(64)));
static _Thread_local float win_g[WINNERS_MAX + 16] __attribute__((aligned(64)));
static _Thread_local int32_t win_at[WINNERS_MAX + 16] __attribute__((aligned(64)));
static _Thread_local float tiles[2 * (TILE_MAX + 32)] __attribute__((aligned(64)));

/* Floats of the row-pair copy of an input (C, H, W). */
static size_t pairs_floats(int C, int H, int W)
{
    return 2 * (size_t)C * H * W;
}

int conv_pool_weight_grads_fast(int C, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    return OC >= 1 && C >= 1 && K >= 1 && K <= 7 && OH >= 2 && OW >= 2 && OW / 2 <= 16 &&
           (size_t)(OH / 2) * (OW / 2) <= WINNERS_MAX && pairs_floats(C, H, W) <= PAIRS_MAX &&
           (size_t)C * K * K <= TILE_MAX;
}

/* The input with each row interleaved with the next one: pair (y, x) holds
 * in[y][x] and in[y+1][x] (zero past the last row). One 16-lane load at
 * (y, x) is then 8 columns of two rows, so a K x K patch is (K+1)/2 loads
 * of which 2K lanes of each are taps (the rest are multiplied and thrown
 * away). */
static void make_pairs(float *pr, const float *in, int C, int H, int W)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const float *r0 = in + ((size_t)c * H + y) * W, *r1 = r0 + W;
            float *dst = pr + 2 * ((size_t)c * H + y) * W;
            for (int x = 0; x < W; x += 16) {
                const int n = W - x < 16 ? W - x : 16;
                const __mmask16 m = (__mmask16)((1u << n) - 1);
                const __m512 a = _mm512_maskz_loadu_ps(m, r0 + x);
                const __m512 b = y + 1 < H ? _mm512_maskz_loadu_ps(m, r1 + x) : _mm512_setzero_ps();
                const __mmask16 m0 = (__mmask16)(n >= 8 ? 0xffffu : (1u << (2 * n)) - 1);
                const __mmask16 m1 = (__mmask16)(n >= 16 ? 0xffffu : n > 8 ? (1u << (2 * (n - 8))) - 1 : 0);
                _mm512_mask_storeu_ps(dst + 2 * x, m0, _mm512_permutex2var_ps(a, lo, b));
                _mm512_mask_storeu_ps(dst + 2 * x + 16, m1, _mm512_permutex2var_ps(a, hi, b));
            }
        }
    /* the last loads of a patch run up to 7 columns past the input */
    memset(pr + pairs_floats(C, H, W), 0, 16 * sizeof(float));
}

/* The winners of filter O: their gradients g and where their patches start
 * in the pairs (at), in window order; returns how many. Their sum goes
 * into db[O]. */
static int winners(float *g, int32_t *at, float *db, const float *dpool, const int32_t *argmax, const float *pooled,
                   int o, int OH, int OW, int W)
{
    const int PH = OH / 2, PW = OW / 2;
    const __mmask16 pm = (__mmask16)((1u << PW) - 1);
    __m512 sum = _mm512_setzero_ps();
    int n = 0;
    for (int y = 0; y < PH; y++) {
        const size_t q = ((size_t)o * PH + y) * PW;
        const __mmask16 live =
            _mm512_mask_cmp_ps_mask(pm, _mm512_maskz_loadu_ps(pm, pooled + q), _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 gv = _mm512_maskz_loadu_ps(live, dpool + q);
        /* the winner counted from the window row's first output: its
         * column, or OW more in the row below */
        const __m512i rel = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(pm, argmax + q),
                                             _mm512_set1_epi32((int32_t)(((size_t)o * OH + 2 * (size_t)y) * OW)));
        const __mmask16 below = _mm512_cmpge_epi32_mask(rel, _mm512_set1_epi32(OW));
        /* its patch starts at input (2y (+1 below), column): 2 floats a place in the pairs */
        const __m512i col = _mm512_mask_sub_epi32(rel, below, rel, _mm512_set1_epi32(OW));
        __m512i pos = _mm512_add_epi32(col, _mm512_set1_epi32(2 * y * W));
        pos = _mm512_slli_epi32(_mm512_mask_add_epi32(pos, below, pos, _mm512_set1_epi32(W)), 1);
        /* compress in registers, then a plain store (the buffers have 16
         * lanes of slack): a compressing store to memory is microcoded on
         * AMD's cores, many times slower */
        _mm512_storeu_ps(g + n, _mm512_maskz_compress_ps(live, gv));
        _mm512_storeu_si512(at + n, _mm512_maskz_compress_epi32(live, pos));
        n += __builtin_popcount(live);
        sum = _mm512_add_ps(sum, gv);
    }
    db[o] += _mm512_reduce_add_ps(sum);
    return n;
}

/* acc[s][b][p] = the sum over the winners (even ones s = 0, odd ones s = 1,
 * so that the FMAs of one set do not wait on the other's) of their
 * gradient times row pair p of their patch in channel c + b: the loop of
 * patch_sums and patch_sums8, with vectors of type V. */
#define WINNER_FMAS(V, ZERO, SET1, LOADU, FMADD)                                                         \
    for (int s = 0; s < 2; s++)                                                                          \
        for (int b = 0; b < CB; b++)                                                                     \
            for (int p = 0; p < KP; p++)                                                                 \
                acc[s][b][p] = ZERO();                                                                   \
    const float *base = pr + (size_t)c * plane;                                                          \
    for (int t = 0; t < n; t += 2)                                                                       \
        for (int s = 0; s < 2 && t + s < n; s++) {                                                       \
            const V gb = SET1(g[t + s]);                                                                 \
            const float *p0 = base + at[t + s];                                                          \
            for (int b = 0; b < CB; b++)                                                                 \
                for (int p = 0; p < KP; p++)                                                             \
                    acc[s][b][p] = FMADD(gb, LOADU(p0 + b * plane + 4 * (size_t)p * W), acc[s][b][p]); \
        }

/* Where each tap of a filter's K x K kernel lies among the row pairs
 * summed below: lane 2kx + r of pair p is tap (2p + r, kx). Tap vector v
 * (taps 16v .. 16v + 15) needs at most two consecutive pairs for K <= 7,
 * the first being first[v]; idx[v] picks its lanes from them. */
typedef struct {
    __m512i idx[4];
    int first[4];
} tap_map;

static inline __attribute__((always_inline)) tap_map make_tap_map(const int K)
{
    tap_map m;
    for (int v = 0; v < (K * K + 15) / 16; v++) {
        int32_t lane[16];
        m.first[v] = 16 * v / K / 2;
        for (int l = 0; l < 16; l++) {
            const int t = 16 * v + l < K * K ? 16 * v + l : K * K - 1, ky = t / K, kx = t % K;
            lane[l] = 16 * (ky / 2 - m.first[v]) + 2 * kx + ky % 2;
        }
        m.idx[v] = _mm512_loadu_si512(lane);
    }
    return m;
}

/* The sums of channels c .. c + CB - 1 of filter o's dw into tile (C x K x
 * K floats, then 16 of slack): KP row pairs of 16 lanes per channel
 * (WINNER_FMAS), their lanes then put in tap order. The tile takes plain
 * stores in increasing order (a vector's lanes past the channel's taps are
 * written over by the next channel's); adding each channel's taps into dw
 * at once would load dw right behind the stores to the channel before,
 * which cannot be forwarded and stall in a chain. */
static inline __attribute__((always_inline)) void patch_sums(float *tile, const float *pr, const float *g,
                                                             const int32_t *at, int n, int c, size_t plane, int W,
                                                             const tap_map *map, const int CB, const int K)
{
    enum { KPMAX = 4 };
    const int KP = (K + 1) / 2, NV = (K * K + 15) / 16;
    __m512 acc[2][2][KPMAX];
    WINNER_FMAS(__m512, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_fmadd_ps)
    for (int b = 0; b < CB; b++) {
        __m512 sum[KPMAX + 1];
        for (int p = 0; p < KP; p++)
            sum[p] = _mm512_add_ps(acc[0][b][p], acc[1][b][p]);
        sum[KP] = sum[KP - 1];
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(tile + (size_t)(c + b) * K * K + 16 * v,
                             _mm512_permutex2var_ps(sum[map->first[v]], map->idx[v], sum[map->first[v] + 1]));
    }
}

/* patch_sums for K <= 4 with 8-lane vectors: a pair's 4 columns of two
 * rows hold every tap, and a 32-byte load crosses a cache line less often
 * than a 64-byte one (these sums are bound by their loads, one a FMA). */
static inline __attribute__((always_inline)) void patch_sums8(float *tile, const float *pr, const float *g,
                                                              const int32_t *at, int n, int c, size_t plane, int W,
                                                              const int CB, const int K)
{
    const int KP = (K + 1) / 2;
    __m256 acc[2][2][2];
    WINNER_FMAS(__m256, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_fmadd_ps)
    /* lane 8p + 2kx + r of the two pairs side by side is tap (2p + r, kx) */
    int32_t lane[16];
    for (int i = 0; i < 16; i++) {
        const int tap = i < K * K ? i : K * K - 1, ky = tap / K, kx = tap % K;
        lane[i] = 8 * (ky / 2) + 2 * kx + ky % 2;
    }
    const __m512i idx = _mm512_loadu_si512(lane);
    for (int b = 0; b < CB; b++) {
        const __m256 p0 = _mm256_add_ps(acc[0][b][0], acc[1][b][0]);
        const __m256 p1 = KP > 1 ? _mm256_add_ps(acc[0][b][1], acc[1][b][1]) : p0;
        const __m512 both = _mm512_insertf32x8(_mm512_castps256_ps512(p0), p1, 1);
        _mm512_storeu_ps(tile + (size_t)(c + b) * K * K, _mm512_permutexvar_ps(idx, both));
    }
}

/* dw[o] += the tile (nt floats, 64-byte aligned). */
static void add_tile(float *dw, const float *t, size_t nt)
{
    size_t i = 0;
    for (; i + 16 <= nt; i += 16)
        _mm512_storeu_ps(dw + i, _mm512_add_ps(_mm512_loadu_ps(dw + i), _mm512_load_ps(t + i)));
    if (i < nt) {
        const __mmask16 m = (__mmask16)((1u << (nt - i)) - 1);
        _mm512_mask_storeu_ps(dw + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dw + i), _mm512_load_ps(t + i)));
    }
}

/* Two tiles, one a filter: filter o's goes into dw while filter o + 1's
 * is summed, so that its loads come long after its stores (right after
 * them, they span several stores, which cannot be forwarded: a stall per
 * load). */
static inline __attribute__((always_inline)) void sparse_dw_k(float *dw, float *db, const float *dpool,
                                                              const int32_t *argmax, const float *pooled,
                                                              int C, int H, int W, int OC, const int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const size_t plane = 2 * (size_t)H * W, nt = (size_t)C * K * K, stride = (nt + 16 + 15) / 16 * 16;
    const tap_map map = make_tap_map(K);
    for (int o = 0; o < OC; o++) {
        float *t = tiles + (o % 2) * stride;
        const int n = winners(win_g, win_at, db, dpool, argmax, pooled, o, OH, OW, W);
        int c = 0;
        for (; c + 1 < C; c += 2)
            if (K <= 4)
                patch_sums8(t, pairs, win_g, win_at, n, c, plane, W, 2, K);
            else
                patch_sums(t, pairs, win_g, win_at, n, c, plane, W, &map, 2, K);
        if (c < C) {
            if (K <= 4)
                patch_sums8(t, pairs, win_g, win_at, n, c, plane, W, 1, K);
            else
                patch_sums(t, pairs, win_g, win_at, n, c, plane, W, &map, 1, K);
        }
        if (o > 0)
            add_tile(dw + (size_t)(o - 1) * nt, tiles + ((o - 1) % 2) * stride, nt);
    }
    add_tile(dw + (size_t)(OC - 1) * nt, tiles + ((OC - 1) % 2) * stride, nt);
}

static void sparse_dw(float *dw, float *db, const float *dpool, const int32_t *argmax, const float *pooled,
                      const float *in, int C, int H, int W, int OC, int K)
{
    make_pairs(pairs, in, C, H, W);
    switch (K) {
    case 1: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 1); break;
    case 2: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 2); break;
    case 3: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 3); break;
    case 4: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 4); break;
    case 5: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 5); break;
    case 6: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 6); break;
    default: sparse_dw_k(dw, db, dpool, argmax, pooled, C, H, W, OC, 7); break;
    }
}
#else
int conv_pool_weight_grads_fast(int C, int H, int W, int OC, int K)
{
    (void)C, (void)H, (void)W, (void)OC, (void)K;
    return 0;
}
#endif

/* The plain version, for shapes the fast one does not take (and its
 * oracle in the tests). */
static void weight_grads_loops(float *dw, float *db, const float *dpool, const int32_t *argmax, const float *pooled,
                               const float *in, int C, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, np = (OH / 2) * (OW / 2);
    for (int o = 0; o < OC; o++)
        for (int j = 0; j < np; j++) {
            const size_t q = (size_t)o * np + j;
            if (!(pooled[q] > 0.0f))
                continue;
            const float g = dpool[q];
            const int32_t a = argmax[q] - o * OH * OW, y = a / OW, x = a % OW;
            db[o] += g;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++)
                        dw[(((size_t)o * C + c) * K + ky) * K + kx] += g * in[((size_t)c * H + y + ky) * W + x + kx];
        }
}

const char *conv_pool_weight_grads_path(int C, int H, int W, int OC, int K)
{
    return conv_pool_weight_grads_fast(C, H, W, OC, K) ? "vec512-winners" : "loops";
}

void conv_pool_weight_grads(float *dw, float *db, const float *dpool, const int32_t *argmax, const float *pooled,
                            const float *in, int C, int H, int W, int OC, int K)
{
#ifdef SPARSE_DW
    if (conv_pool_weight_grads_fast(C, H, W, OC, K)) {
        sparse_dw(dw, db, dpool, argmax, pooled, in, C, H, W, OC, K);
        return;
    }
#endif
    weight_grads_loops(dw, db, dpool, argmax, pooled, in, C, H, W, OC, K);
}
