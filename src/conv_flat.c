/* conv_flat.c - the kernels on the input's grid ("flat") with 512-bit
 * vectors: 16 consecutive outputs of a channel laid on the input's rows,
 * so that every tap is one load whatever the row width, for the rows that
 * chunks of 16 would leave a quarter or more idle (fwd_path). The forward
 * pass, dw for a first layer (no din), and din where its grid wastes fewer
 * lanes than rows padded to 16 (3x3 kernels). */
#include <string.h>

#include "conv_simd.h"

#ifdef GEN_V16
/* ---- Rows not a multiple of 16 wide, with 512-bit vectors: the input's grid ----
 * A vector holds 16 consecutive outputs of a channel on the input's grid:
 * output (y, x) at y*W + x, so the window of every lane starts K - 1
 * columns apart at a row's end, and each tap is one plain load at
 * grid + ky*W + kx for the whole vector, whatever the row width. The
 * K - 1 lanes per row past OW are computed and dropped: compressed out of
 * the vector, so the valid lanes of a row's end and the rows after, which
 * are contiguous in the output, are one masked store (24-wide rows: 42
 * vectors for 36 vectors' worth of outputs, where row chunks of 16 take
 * 48; 11-wide rows of a 13-wide input: 85% of the lanes used, where rows
 * padded to 16 use 69%). The last vector's loads are masked to stay inside the input.
 * Tiles are P channels x T vectors; the sum order per output (bias, c, ky,
 * kx) is the other forward kernels', so the bits are too. */
static ALWAYS_INLINE void flat_fwd_tile(float *out, const float *in, const float *w, const float *b, int C,
                                        int H, int W, int OH, int OW, int o0, int v0, const int P, const int T,
                                        const int K, __mmask16 last, int relu)
{
    enum { PMAX = 4, TMAX = 6 };
    vz acc[PMAX][TMAX];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++)
            acc[p][t] = vbcast_v16(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + (size_t)c * H * W + 16 * v0;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                vz x[TMAX];
                for (int t = 0; t < T; t++) {
                    const float *src = ip + 16 * t + ky * W + kx;
                    x[t] = last == 0xffff ? vload_v16(src) : (vz)_mm512_maskz_loadu_ps(last, src);
                    IN_REGISTER(x[t]);
                }
                for (int p = 0; p < P; p++) {
                    vz wv = vbcast_v16(wp[(size_t)p * C * K * K + ky * K + kx]);
                    IN_REGISTER(wv); /* one broadcast for T FMAs, not one folded into each */
                    for (int t = 0; t < T; t++)
                        acc[p][t] += wv * x[t];
                }
            }
    }
    for (int t = 0; t < T; t++) {
        const int g = 16 * (v0 + t), y = g / W, x = g % W;
        /* lanes on the grid: x .. W-1 of row y, then 0 .. W-1 of the rows
         * after; the first OW of each row are outputs */
        unsigned keep = 0;
        for (int l = 0, xx = x, yy = y; l < 16 && yy < OH; l += W - xx, xx = 0, yy++) {
            const int n = OW - xx <= 0 ? 0 : OW - xx < 16 - l ? OW - xx : 16 - l;
            keep |= ((1u << n) - 1) << l;
        }
        const int n = __builtin_popcount(keep), at = y * OW + (x < OW ? x : OW);
        for (int p = 0; p < P; p++) {
            vz v = acc[p][t];
            if (relu)
                v = vrelu_v16(&v);
            __m512 packed = _mm512_maskz_compress_ps((__mmask16)keep, (__m512)v);
            _mm512_mask_storeu_ps(out + (size_t)(o0 + p) * OH * OW + at, (__mmask16)((1u << n) - 1), packed);
        }
    }
}

static ALWAYS_INLINE void flat_fwd_k(float *out, const float *in, const float *w, const float *b, int C, int H,
                                     int W, int OC, const int K, int relu)
{
    const int OH = H - K + 1, OW = W - K + 1, ng = (OH - 1) * W + OW, nv = (ng + 15) / 16;
    const __mmask16 last = (__mmask16)(ng % 16 ? (1u << (ng % 16)) - 1 : 0xffffu);
#define FLAT_ROW(PV)                                                                            \
    {                                                                                           \
        int v = 0;                                                                              \
        for (; v + 6 < nv; v += 6)                                                              \
            flat_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, (PV), 6, K, 0xffff, relu);     \
        for (; v + 2 < nv; v += 2)                                                              \
            flat_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, (PV), 2, K, 0xffff, relu);     \
        for (; v + 1 < nv; v++)                                                                 \
            flat_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, (PV), 1, K, 0xffff, relu);     \
        flat_fwd_tile(out, in, w, b, C, H, W, OH, OW, o0, v, (PV), 1, K, last, relu);           \
    }
    int o0 = 0;
    for (; o0 + 4 <= OC; o0 += 4)
        FLAT_ROW(4)
    for (; o0 + 2 <= OC; o0 += 2)
        FLAT_ROW(2)
    for (; o0 < OC; o0++)
        FLAT_ROW(1)
#undef FLAT_ROW
}

void convk_flat_fwd(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu)
{
    CONVK_WITH_K(K, flat_fwd_k(out, in, w, b, C, H, W, OC, KC, relu));
}

/* dw on the same grid, for layers without din (conv1): gg is dout spread
 * onto the grid (zeros in the dropped lanes and past the end), so
 * dw[o][c][ky][kx] += sum over the grid's vectors of gg[o] times the input
 * at c, ky*W + kx (the last vector's loads masked), then a horizontal sum.
 * A tile is P output channels x the K kx taps of one (c, ky). The lanes sum
 * other positions than the 8-lane tiled-w24 kernel's, so dw's bits differ
 * from it (by rounding only). */
static ALWAYS_INLINE void flat_dw_step(vz (*acc)[7], const float *gg, int ngp, const float *ip, int o0, int v,
                                       const int P, const int K, __mmask16 m)
{
    vz g[4];
    for (int p = 0; p < P; p++)
        g[p] = vload_v16(gg + (size_t)(o0 + p) * ngp + 16 * v);
    for (int kx = 0; kx < K; kx++) {
        vz x = m == 0xffff ? vload_v16(ip + 16 * v + kx) : (vz)_mm512_maskz_loadu_ps(m, ip + 16 * v + kx);
        IN_REGISTER(x);
        for (int p = 0; p < P; p++)
            acc[p][kx] += g[p] * x;
    }
}

static ALWAYS_INLINE void flat_dw_tile(float *dw, const float *gg, int ngp, const float *in, int C, int H, int W,
                                       int nv, __mmask16 last, int o0, int c, int ky, const int P, const int K)
{
    vz acc[4][7];
    for (int p = 0; p < P; p++)
        for (int kx = 0; kx < K; kx++)
            acc[p][kx] = vbcast_v16(0.0f);
    const float *ip = in + (size_t)c * H * W + (size_t)ky * W;
    int v = 0;
    for (; v + 1 < nv; v++)
        flat_dw_step(acc, gg, ngp, ip, o0, v, P, K, 0xffff);
    flat_dw_step(acc, gg, ngp, ip, o0, v, P, K, last);
    for (int p = 0; p < P; p++)
        for (int kx = 0; kx < K; kx++)
            dw[(((size_t)(o0 + p) * C + c) * K + ky) * K + kx] += hsum_v16(&acc[p][kx]);
}

/* dout (OC, OH, OW) spread onto the grid gg (OC x ngp floats): row y at
 * y*W, zeros in the dropped lanes and past the end. */
static void flat_grid(float *gg, const float *dout, int OC, int OH, int OW, int W, int ngp)
{
    for (int o = 0; o < OC; o++) {
        float *go = gg + (size_t)o * ngp;
        memset(go, 0, sizeof(float) * (size_t)ngp);
        for (int y = 0; y < OH; y++)
            memcpy(go + (size_t)y * W, dout + ((size_t)o * OH + y) * OW, sizeof(float) * (size_t)OW);
    }
}

static ALWAYS_INLINE void flat_dw_k(float *dw, float *gg, const float *dout, const float *in, int C, int H,
                                    int W, int OC, const int K)
{
    const int OH = H - K + 1, OW = W - K + 1, ng = (OH - 1) * W + OW, nv = (ng + 15) / 16, ngp = 16 * nv;
    const __mmask16 last = (__mmask16)(ng % 16 ? (1u << (ng % 16)) - 1 : 0xffffu);
    if (dout)
        flat_grid(gg, dout, OC, OH, OW, W, ngp);
    const int PB = K <= 6 ? 4 : 3;
    int o0 = 0;
    for (; o0 + PB <= OC; o0 += PB)
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < K; ky++)
                flat_dw_tile(dw, gg, ngp, in, C, H, W, nv, last, o0, c, ky, PB, K);
    for (; o0 < OC; o0++)
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < K; ky++)
                flat_dw_tile(dw, gg, ngp, in, C, H, W, nv, last, o0, c, ky, 1, K);
}

/* DOUT NULL: gg already holds the grid. */
void convk_flat_dw(float *dw, float *gg, const float *dout, const float *in, int C, int H, int W, int OC, int K)
{
    CONVK_WITH_K(K, flat_dw_k(dw, gg, dout, in, C, H, W, OC, KC));
}

/* ---- din on its own grid ----
 * din[c] is H x W, contiguous: 16 consecutive positions a vector, every
 * lane a real input (12x12 of the 3x3 network: 9 vectors, none idle). As
 * a gather, din[c][y][x] = sum over o, ky, kx of w[o][c][ky][kx] times
 * dout[o][y - ky][x - kx], so each tap is one load from dout laid on the
 * same W-wide grid, shifted back by ky*W + kx: with K - 1 zeros after
 * each row (an x - kx below 0 reads the row before's end) and K - 1 rows
 * of zeros before and after (gp, made by flat_din_grid). No din is read
 * back and nothing is padded or copied out; the sum per input runs over
 * (o, ky, kx) in order. Tiles are P input channels x T vectors. */
static void flat_din_grid(float *gp, size_t ngp, const float *dout, int OC, int OH, int OW, int W, size_t lead)
{
    for (int o = 0; o < OC; o++) {
        float *g = gp + (size_t)o * ngp;
        memset(g, 0, sizeof(float) * lead);
        convk_pad_rows(g + lead, W, dout + (size_t)o * OH * OW, 1, OH, OW);
        const size_t used = lead + (size_t)OH * W;
        memset(g + used, 0, sizeof(float) * (ngp - used));
    }
}

static ALWAYS_INLINE void flat_din_tile(float *din, const float *gp, size_t ngp, const float *w, int C, int H,
                                        int W, int OC, size_t lead, int c0, int v0, const int P, const int T,
                                        const int K, __mmask16 last)
{
    enum { PMAX = 8, TMAX = 3 };
    vz acc[PMAX][TMAX];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++)
            acc[p][t] = vbcast_v16(0.0f);
    for (int o = 0; o < OC; o++) {
        const float *g = gp + (size_t)o * ngp + lead + 16 * v0;
        const float *wp = w + ((size_t)o * C + c0) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                vz x[TMAX];
                for (int t = 0; t < T; t++) {
                    x[t] = vload_v16(g + 16 * t - ky * W - kx);
                    IN_REGISTER(x[t]);
                }
                for (int p = 0; p < P; p++) {
                    /* one broadcast for T FMAs, not one folded into each */
                    vz wv = vbcast_v16(wp[(size_t)p * K * K + ky * K + kx]);
                    IN_REGISTER(wv);
                    for (int t = 0; t < T; t++)
                        acc[p][t] += wv * x[t];
                }
            }
    }
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) {
            float *d = din + (size_t)(c0 + p) * H * W + 16 * (v0 + t);
            _mm512_mask_storeu_ps(d, t == T - 1 ? last : (__mmask16)0xffff, (__m512)acc[p][t]);
        }
}

static ALWAYS_INLINE void flat_din_k(float *din, float *gp, const float *dout, const float *w, int C, int H, int W,
                                     int OC, const int K)
{
    const int OH = H - K + 1, OW = W - K + 1, n = H * W, nv = (n + 15) / 16;
    const size_t lead = flat_din_lead(W, K), ngp = flat_din_stride(H, W, K);
    const __mmask16 last = (__mmask16)(n % 16 ? (1u << (n % 16)) - 1 : 0xffffu);
    flat_din_grid(gp, ngp, dout, OC, OH, OW, W, lead);
    /* The grid is padded, so only the last vector's store is masked: it
     * ends a tile of 3 where it can (12x12: 3 + 3 + 3, not 3 + 3 + 1 + 1
     * + 1, whose lone vectors wait on their FMAs' latency). */
#define FLAT_DIN(PV)                                                                                    \
    {                                                                                                   \
        int v = 0;                                                                                      \
        for (; v + 3 <= nv; v += 3)                                                                     \
            flat_din_tile(din, gp, ngp, w, C, H, W, OC, lead, c0, v, (PV), 3, K, v + 3 == nv ? last : 0xffff); \
        if (nv - v == 2)                                                                                \
            flat_din_tile(din, gp, ngp, w, C, H, W, OC, lead, c0, v, (PV), 2, K, last);                 \
        else if (nv - v == 1)                                                                           \
            flat_din_tile(din, gp, ngp, w, C, H, W, OC, lead, c0, v, (PV), 1, K, last);                 \
    }
    int c0 = 0;
    for (; c0 + 8 <= C; c0 += 8)
        FLAT_DIN(8)
    for (; c0 + 4 <= C; c0 += 4)
        FLAT_DIN(4)
    for (; c0 < C; c0++)
        FLAT_DIN(1)
#undef FLAT_DIN
}

void convk_flat_din(float *din, float *gp, const float *dout, const float *w, int C, int H, int W, int OC, int K)
{
    CONVK_WITH_K(K, flat_din_k(din, gp, dout, w, C, H, W, OC, KC));
}
#endif
