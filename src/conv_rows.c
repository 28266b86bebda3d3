/* conv_rows.c - the forward kernel for output rows 17 to 31 wide with
 * 512-bit vectors: 16 consecutive outputs of a channel a vector, across
 * row ends, with no idle lanes; for 24-wide rows (conv1 of the default
 * network) it takes the 2x2 max pool of a row pair from its registers
 * where asked. */
#include "conv_simd.h"

#ifdef GEN_V16
#include "pool512.inc"

/* ---- Rows 17 to 31 wide, with 512-bit vectors: along the output ----
 * A channel's output (OH x OW, contiguous) is cut into vectors of 16
 * consecutive outputs. A vector that runs past the end of a row takes its
 * other lanes from the start of the next (rows at least 16 wide: never a
 * third), so each tap is a masked load from the input row under the first
 * part, merged with one from the row under the second. No lane is idle
 * but the last vector's tail (the input's grid wastes K - 1 lanes a row:
 * 24-wide rows, 36 vectors a channel against its 42), the stores are plain
 * and nothing is compressed. Two 24-wide rows are exactly three vectors,
 * so the 2x2 pool of a row pair is taken from the registers (conv1 of the
 * default network). Tiles are P channels x T vectors; the sum order per
 * output (bias, c, ky, kx) is the other forward kernels', so the bits are
 * too. */
typedef struct {
    int at[2];      /* where lane 0 of each part reads, for tap (0, 0) of a channel */
    __mmask16 m[2]; /* each part's lanes */
} rows_vec;

/* The vector whose first output is (y, x), with LEFT outputs of the
 * channel from there on. */
static inline rows_vec rows_vec_at(int y, int x, int W, int OW, int left)
{
    const int first = OW - x < 16 ? OW - x : 16, n = left < 16 ? left : 16, a = first < n ? first : n;
    rows_vec r;
    r.m[0] = (__mmask16)((1u << a) - 1);
    r.m[1] = (__mmask16)(((1u << n) - 1) & ~((1u << a) - 1));
    r.at[0] = y * W + x;
    /* lane l >= first reads column l - first of the next row */
    r.at[1] = r.m[1] ? (y + 1) * W - first : r.at[0];
    return r;
}

/* The 2x2 pool (stride 2) of one channel's 24-wide row pair, held as v[0]
 * (top row 0-15), v[1] (top 16-23, bottom 0-7) and v[2] (bottom 8-23): 12
 * outputs and their argmax (BASE: the index of the pair's first input) into
 * pooled and argmax, with pool_window16, so maxpool_forward's bits; ARGMAX
 * NULL: the outputs only (pool_max16). */
static inline void pool_rows24(float *pooled, int32_t *argmax, const vz *v, int base)
{
    /* The permutes' indices are loaded here through a pointer the compiler
     * cannot see through: as constants it hoisted them out of the loop over
     * tiles, where they held 4 of the 32 registers the FMA loop needs and
     * pushed two accumulators to the stack. */
    static const int32_t pick[4][16] __attribute__((aligned(64))) = {
        { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22 },
        { 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23 },
        { 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 },
        { 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31 },
    };
    const int32_t(*ip)[16] = pick;
    __asm__ volatile("" : "+r"(ip));
    const __m512i top = _mm512_load_si512(ip[0]);
    const __m512 a = _mm512_permutex2var_ps((__m512)v[0], top, (__m512)v[1]);
    const __m512 b = _mm512_permutex2var_ps((__m512)v[0], _mm512_load_si512(ip[1]), (__m512)v[1]);
    const __m512 c = _mm512_permutex2var_ps((__m512)v[1], _mm512_load_si512(ip[2]), (__m512)v[2]);
    const __m512 d = _mm512_permutex2var_ps((__m512)v[1], _mm512_load_si512(ip[3]), (__m512)v[2]);
    if (!argmax) {
        _mm512_mask_storeu_ps(pooled, 0x0fff, pool_max16(a, b, c, d));
        return;
    }
    const __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(base), top);
    __m512i idx;
    const __m512 m = pool_window16(a, b, c, d, ia, 1, 24, &idx);
    _mm512_mask_storeu_ps(pooled, 0x0fff, m);
    _mm512_mask_storeu_epi32(argmax, 0x0fff, idx);
}

/* Vectors v0 .. v0 + T - 1, the first starting at output (y, x). POOLED
 * (with ARGMAX): OW = 24 and T = 3 with v0 a multiple of 3, the row pair
 * v0 / 3. */
static ALWAYS_INLINE void rows_fwd_tile(float *out, const float *in, const float *w, const float *b, int C,
                                        int H, int W, int OH, int OW, int o0, int v0, int y, int x, const int P,
                                        const int T, const int K, int relu, float *pooled, int32_t *argmax)
{
    enum { PMAX = 8, TMAX = 3 };
    rows_vec r[TMAX];
    for (int t = 0, left = OH * OW - 16 * v0; t < T; t++, left -= 16) {
        r[t] = rows_vec_at(y, x, W, OW, left);
        if ((x += 16) >= OW) {
            x -= OW;
            y++;
        }
    }
    vz acc[PMAX][TMAX];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++)
            acc[p][t] = vbcast_v16(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + (size_t)c * H * W;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *tap = ip + ky * W + kx;
                vz xv[TMAX];
                for (int t = 0; t < T; t++) {
                    __m512 v = _mm512_maskz_loadu_ps(r[t].m[0], tap + r[t].at[0]);
                    xv[t] = (vz)_mm512_mask_loadu_ps(v, r[t].m[1], tap + r[t].at[1]);
                    IN_REGISTER(xv[t]);
                }
                for (int p = 0; p < P; p++) {
                    vz wv = vbcast_v16(wp[(size_t)p * C * K * K + ky * K + kx]);
                    for (int t = 0; t < T; t++)
                        acc[p][t] += wv * xv[t];
                }
            }
    }
    /* The pools below are too long for GCC to unroll the loop over p: read
     * through a variable index there, the accumulators themselves were
     * stored after every FMA. */
    vz v[PMAX][TMAX];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) {
            v[p][t] = acc[p][t];
            if (relu)
                v[p][t] = vrelu_v16(&v[p][t]);
        }
    for (int p = 0; p < P; p++) {
        const size_t o = (size_t)(o0 + p) * OH * OW;
        if (out)
            for (int t = 0; t < T; t++)
                _mm512_mask_storeu_ps(out + o + 16 * (v0 + t), r[t].m[0] | r[t].m[1], (__m512)v[p][t]);
        if (T == 3 && pooled) {
            const size_t at = (size_t)(o0 + p) * (OH / 2) * 12 + 12 * (size_t)(v0 / 3);
            pool_rows24(pooled + at, argmax ? argmax + at : NULL, v[p], (int)o + 48 * (v0 / 3));
        }
    }
}

/* Vectors 3 PAIR to 3 PAIR + 2 of 24-wide rows: output rows 2 PAIR and
 * 2 PAIR + 1, whole, so the first and last vectors lie in one row each
 * and take a plain load a tap, and the middle one a plain load merged
 * with one masked load (rows_fwd_tile: six masked loads, two of them with
 * no lanes). The taps along a row are unrolled and, with one channel (C
 * a constant 1: conv1), every weight is a constant offset from one
 * pointer; unrolling the rows as well spilled accumulators (0.97x). */
static ALWAYS_INLINE void rows24_fwd_tile(float *out, const float *in, const float *w, const float *b, const int C,
                                          int H, int W, int OH, int o0, int pair, const int P, const int K,
                                          int relu, float *pooled, int32_t *argmax)
{
    enum { PMAX = 8 };
    vz acc[PMAX][3];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < 3; t++)
            acc[p][t] = vbcast_v16(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + (size_t)c * H * W + 2 * pair * W;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++) {
#pragma GCC unroll 7
            for (int kx = 0; kx < K; kx++) {
                const float *tap = ip + ky * W + kx;
                vz xv[3];
                /* a row's last 8 outputs, then the next row's first 8:
                 * the plain load reads no further than the next row */
                xv[0] = (vz)_mm512_loadu_ps(tap);
                xv[1] = (vz)_mm512_mask_loadu_ps(_mm512_loadu_ps(tap + 16), 0xff00, tap + W - 8);
                xv[2] = (vz)_mm512_loadu_ps(tap + W + 8);
                for (int t = 0; t < 3; t++)
                    IN_REGISTER(xv[t]);
                for (int p = 0; p < P; p++) {
                    vz wv = vbcast_v16(wp[(size_t)p * C * K * K + ky * K + kx]);
                    for (int t = 0; t < 3; t++)
                        acc[p][t] += wv * xv[t];
                }
            }
        }
    }
    /* vmaxps with 0 second: x > 0 ? x : +0 for -0 and NaN too (it returns
     * its second operand for those), so vrelu's bits in one instruction
     * where vrelu takes two. */
    vz v[PMAX][3];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < 3; t++)
            v[p][t] = relu ? (vz)_mm512_max_ps((__m512)acc[p][t], _mm512_setzero_ps()) : acc[p][t];
    /* Unrolled, the pools read the accumulators from their registers (see
     * rows_fwd_tile). */
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        const size_t o = (size_t)(o0 + p) * OH * 24;
        if (out)
            for (int t = 0; t < 3; t++)
                _mm512_storeu_ps(out + o + 48 * pair + 16 * t, (__m512)v[p][t]);
        if (pooled) {
            const size_t at = (size_t)(o0 + p) * (OH / 2) * 12 + 12 * (size_t)pair;
            pool_rows24(pooled + at, argmax ? argmax + at : NULL, v[p], (int)o + 48 * pair);
        }
    }
}

/* The row pairs of 24-wide rows (the rest, an odd last row, goes to
 * rows_fwd_tile). */
static ALWAYS_INLINE void rows24_fwd_pairs(float *out, const float *in, const float *w, const float *b, int C,
                                           int H, int W, int OH, int o0, const int P, const int K, int relu,
                                           float *pooled, int32_t *argmax)
{
    for (int pair = 0; pair < OH / 2; pair++)
        if (C == 1)
            rows24_fwd_tile(out, in, w, b, 1, H, W, OH, o0, pair, P, K, relu, pooled, argmax);
        else
            rows24_fwd_tile(out, in, w, b, C, H, W, OH, o0, pair, P, K, relu, pooled, argmax);
}

static ALWAYS_INLINE void rows_fwd_k(float *out, const float *in, const float *w, const float *b, int C, int H,
                                     int W, int OC, const int K, int relu, float *pooled, int32_t *argmax)
{
    const int OH = H - K + 1, OW = W - K + 1, nv = (OH * OW + 15) / 16;
#define ROWS_GROUP(PV)                                                                                    \
    {                                                                                                     \
        int v = 0, y = 0, x = 0;                                                                          \
        if (OW == 24) {                                                                                   \
            rows24_fwd_pairs(out, in, w, b, C, H, W, OH, o0, (PV), K, relu, pooled, argmax);               \
            v = 3 * (OH / 2);                                                                              \
            y = OH / 2 * 2;                                                                               \
        }                                                                                                 \
        for (; v + 3 <= nv; v += 3) {                                                                     \
            rows_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, y, x, (PV), 3, K, relu, pooled, argmax); \
            for (x += 48; x >= OW; x -= OW)                                                               \
                y++;                                                                                      \
        }                                                                                                 \
        for (; v < nv; v++) {                                                                             \
            rows_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, y, x, (PV), 1, K, relu, NULL, NULL);     \
            if ((x += 16) >= OW) {                                                                        \
                x -= OW;                                                                                  \
                y++;                                                                                      \
            }                                                                                             \
        }                                                                                                 \
    }
    int o0 = 0;
    for (; o0 + 8 <= OC; o0 += 8)
        ROWS_GROUP(8)
    for (; o0 + 4 <= OC; o0 += 4)
        ROWS_GROUP(4)
    for (; o0 < OC; o0++)
        ROWS_GROUP(1)
#undef ROWS_GROUP
}

/* K 3 (24-wide rows) to 7 (fwd_path's choice); POOLED (with ARGMAX, or
 * without it for the maxima only) needs OW = 24 and OH even, and OUT may
 * then be NULL. */
void convk_rows_fwd(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu, float *pooled, int32_t *argmax)
{
    switch (K) {
    case 3: rows_fwd_k(out, in, w, b, C, H, W, OC, 3, relu, pooled, argmax); break;
    case 4: rows_fwd_k(out, in, w, b, C, H, W, OC, 4, relu, pooled, argmax); break;
    case 5: rows_fwd_k(out, in, w, b, C, H, W, OC, 5, relu, pooled, argmax); break;
    case 6: rows_fwd_k(out, in, w, b, C, H, W, OC, 6, relu, pooled, argmax); break;
    case 7: rows_fwd_k(out, in, w, b, C, H, W, OC, 7, relu, pooled, argmax); break;
    default: break;
    }
}
#endif
