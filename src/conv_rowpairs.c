/* conv_rowpairs.c - the kernels for output rows exactly 8 wide (conv2 of
 * the default network) with 512-bit vectors, each holding two output rows:
 * the forward pass, which takes the 2x2 max pool of an 8x8 output from its
 * registers where asked, and din. */
#include <string.h>

#include "conv_simd.h"

#ifdef GEN_V16
#include "pool512.inc"

/* ---- Output rows exactly 8 wide (conv2 of the default network) with
 * 512-bit vectors: one vector holds two output rows, which are contiguous
 * in the output, and is loaded as two 8-float input rows W apart. A tile is
 * P channels x T row pairs; the sum order per output (bias, c, ky, kx) is
 * the tiled-w8 kernel's, so the bits are too. */
static inline vz pair_load(const float *p, int W)
{
    vf lo = vload(p), hi = vload(p + W);
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* The 2x2 max pool (stride 2) of one channel's 8x8 output, held as the
 * four row pairs v[0..3]: 16 outputs and their argmax (index into the
 * channel's 64 at BASE) into pooled and argmax. The candidates of a window
 * are gathered into a (top left), b, c, d (bottom right) for
 * pool_window16, so the outputs and the argmax are maxpool_forward's bits.
 * ARGMAX NULL: the outputs only (pool_max16). */
static inline void pool_plane8(float *pooled, int32_t *argmax, const vz *v, int base)
{
    /* lanes 0-3: v[j] top row's even columns, 4-7: v[j+1]'s, 8-15 the same
     * for the bottom rows */
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 8, 10, 12, 14, 24, 26, 28, 30);
    const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
    const __m512 p01 = _mm512_permutex2var_ps((__m512)v[0], ie, (__m512)v[1]);
    const __m512 q01 = _mm512_permutex2var_ps((__m512)v[0], io, (__m512)v[1]);
    const __m512 p23 = _mm512_permutex2var_ps((__m512)v[2], ie, (__m512)v[3]);
    const __m512 q23 = _mm512_permutex2var_ps((__m512)v[2], io, (__m512)v[3]);
    const __m512 a = _mm512_shuffle_f32x4(p01, p23, 0x44), c = _mm512_shuffle_f32x4(p01, p23, 0xee);
    const __m512 bb = _mm512_shuffle_f32x4(q01, q23, 0x44), d = _mm512_shuffle_f32x4(q01, q23, 0xee);
    /* output l = 4y + x takes input (2y, 2x) of the channel */
    const __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(base),
                                        _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 32, 34, 36, 38, 48, 50, 52, 54));
    if (!argmax) {
        _mm512_storeu_ps(pooled, pool_max16(a, bb, c, d));
        return;
    }
    __m512i idx;
    const __m512 m = pool_window16(a, bb, c, d, ia, 1, 8, &idx);
    _mm512_storeu_ps(pooled, m);
    _mm512_storeu_si512(argmax, idx);
}

static ALWAYS_INLINE void fwd_pair_tile(float *out, const float *in, const float *w, const float *b, int C,
                                        int H, int W, int K, int o0, int j0, const int P, const int T, int relu,
                                        float *pooled, int32_t *argmax)
{
    enum { PMAX = 4, TMAX = 4 };
    const int OH = H - K + 1;
    vz acc[PMAX][TMAX];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++)
            acc[p][t] = vbcast_v16(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + ((size_t)c * H + 2 * j0) * W;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                vz x[TMAX];
                for (int t = 0; t < T; t++) {
                    x[t] = pair_load(ip + (2 * t + ky) * W + kx, W);
                    IN_REGISTER(x[t]);
                }
                for (int p = 0; p < P; p++) {
                    vz wv = vbcast_v16(wp[(size_t)p * C * K * K + ky * K + kx]);
                    for (int t = 0; t < T; t++)
                        acc[p][t] += wv * x[t];
                }
            }
    }
    for (int p = 0; p < P; p++) {
        for (int t = 0; t < T; t++) {
            if (relu)
                acc[p][t] = vrelu_v16(&acc[p][t]);
            if (out)
                vstore_v16(out + ((size_t)(o0 + p) * OH + 2 * (j0 + t)) * 8, &acc[p][t]);
        }
        if (T == 4 && pooled) /* a whole 8x8 channel */
            pool_plane8(pooled + (size_t)(o0 + p) * 16, argmax ? argmax + (size_t)(o0 + p) * 16 : NULL, acc[p],
                        (o0 + p) * 64);
    }
}

/* din for output rows 8 wide and 8 high (H = K + 7) with 512-bit
 * vectors: a vector of dout is two rows (2j, 2j+1); with an even ky it adds
 * to the din row pair (2m, 2m+1), m = j + ky/2 (accumulators E), with an
 * odd ky to the pair (2m+1, 2m+2), m = j + (ky-1)/2 (accumulators O). Per
 * input channel and kx, both sum over o then ky (even and odd o apart, then
 * added, where there are registers for both); then each din row gets its E
 * half, then its O half. */
static ALWAYS_INLINE void din_pair_k(float *din, const float *dout, const float *w, int C, int OC, const int K)
{
    enum { OH = 8, NJ = 4, RMAX = NJ + 3 };
    const int H = OH + K - 1, W = 8 + K - 1, RE = NJ + (K - 1) / 2, RO = NJ + (K - 2) / 2;
    /* An accumulator takes up to 3 FMAs per o, each waiting on the last:
     * two sets (even and odd o) halve those chains where the registers allow. */
    const int NS = 2 * (RE + RO) + K + 1 <= 32 ? 2 : 1;
    memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int c = 0; c < C; c++)
        for (int kx = 0; kx < K; kx++) {
            vz E[2][RMAX], O[2][RMAX];
            for (int n = 0; n < NS; n++) {
                for (int m = 0; m < RE; m++)
                    E[n][m] = vbcast_v16(0.0f);
                for (int m = 0; m < RO; m++)
                    O[n][m] = vbcast_v16(0.0f);
            }
            for (int o0 = 0; o0 < OC; o0 += NS)
                for (int n = 0; n < NS && o0 + n < OC; n++) {
                    const int o = o0 + n;
                    const float *wp = w + ((size_t)o * C + c) * K * K + kx;
                    const float *gp = dout + (size_t)o * OH * 8;
                    vz wv[7];
                    for (int ky = 0; ky < K; ky++)
                        wv[ky] = vbcast_v16(wp[ky * K]);
                    for (int j = 0; j < NJ; j++) {
                        vz g = vload_v16(gp + j * 16);
                        IN_REGISTER(g);
                        for (int ky = 0; ky < K; ky++) {
                            if (ky % 2 == 0)
                                E[n][j + ky / 2] += wv[ky] * g;
                            else
                                O[n][j + (ky - 1) / 2] += wv[ky] * g;
                        }
                    }
                }
            if (NS == 2) {
                for (int m = 0; m < RE; m++)
                    E[0][m] += E[1][m];
                for (int m = 0; m < RO; m++)
                    O[0][m] += O[1][m];
            }
            float *dp = din + (size_t)c * H * W + kx;
            for (int m = 0; m < RE; m++) {
                float h[16];
                memcpy(h, &E[0][m], sizeof h);
                for (int r = 0; r < 2; r++) {
                    vf d = vload(dp + (2 * m + r) * W) + vload(h + 8 * r);
                    vstore(dp + (2 * m + r) * W, &d);
                }
            }
            for (int m = 0; m < RO; m++) {
                float h[16];
                memcpy(h, &O[0][m], sizeof h);
                for (int r = 0; r < 2; r++) {
                    if (2 * m + 1 + r >= H)
                        break;
                    vf d = vload(dp + (2 * m + 1 + r) * W) + vload(h + 8 * r);
                    vstore(dp + (2 * m + 1 + r) * W, &d);
                }
            }
        }
}

void convk_din_pair(float *din, const float *dout, const float *w, int C, int OC, int K)
{
    switch (K) {
    case 1: din_pair_k(din, dout, w, C, OC, 1); break;
    case 2: din_pair_k(din, dout, w, C, OC, 2); break;
    case 3: din_pair_k(din, dout, w, C, OC, 3); break;
    case 4: din_pair_k(din, dout, w, C, OC, 4); break;
    case 5: din_pair_k(din, dout, w, C, OC, 5); break;
    case 6: din_pair_k(din, dout, w, C, OC, 6); break;
    case 7: din_pair_k(din, dout, w, C, OC, 7); break;
    default: break;
    }
}

/* Needs OH even; POOLED (with ARGMAX) needs OH = 8: the 2x2 max pool of
 * the output is then taken from the registers, and OUT may be NULL. */
void convk_fwd_pair(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu, float *pooled, int32_t *argmax)
{
    const int np = (H - K + 1) / 2;
#define PAIR_ROW(PV)                                                                           \
    {                                                                                          \
        int j = 0;                                                                             \
        for (; j + 4 <= np; j += 4)                                                            \
            fwd_pair_tile(out, in, w, b, C, H, W, K, o0, j, (PV), 4, relu, pooled, argmax);    \
        for (; j < np; j++)                                                                    \
            fwd_pair_tile(out, in, w, b, C, H, W, K, o0, j, (PV), 1, relu, NULL, NULL);        \
    }
    int o0 = 0;
    for (; o0 + 4 <= OC; o0 += 4)
        PAIR_ROW(4)
    for (; o0 < OC; o0++)
        PAIR_ROW(1)
#undef PAIR_ROW
}
#endif
