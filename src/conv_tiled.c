/* conv_tiled.c - the hand-tiled kernels for the default network's exact
 * shapes: 5x5 filters whose output rows are 24 wide (its conv1) or 8 wide
 * (its conv2), in 8-lane vectors with register tiles fixed at compile
 * time, where they measured faster than the general kernels; and the bias
 * gradient, which the general path shares. fwd_path and bwd_path (conv.c)
 * send them the shapes they were written for. */
#include <string.h>

#include "conv_simd.h"

#ifdef CONV_VECTORS
/* Output rows 24 wide (3 vectors), K = 5: P channels x 1 row (P = 4, or 8
 * with 32 registers) = 3P accumulators; per tap 3 input loads and P
 * weight broadcasts. P is a constant after inlining, so the loops unroll
 * and the accumulators live in registers. */
static ALWAYS_INLINE void fwd_w24_tile(float *out, const float *in, const float *w, const float *b,
                                       int C, int H, int W, int o0, int y, const int P, int relu)
{
    enum { K = 5, OW = 24, NV = 3, PMAX = 8 };
    const int OH = H - K + 1;
    vf acc[PMAX][NV];
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++)
            acc[p][v] = vbcast(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + ((size_t)c * H + y) * W;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                vf x[NV];
                for (int v = 0; v < NV; v++) {
                    x[v] = vload(ip + ky * W + kx + v * VL);
                    IN_REGISTER(x[v]);
                }
                for (int p = 0; p < P; p++) {
                    vf wv = vbcast(wp[(size_t)p * C * K * K + ky * K + kx]);
                    for (int v = 0; v < NV; v++)
                        acc[p][v] += wv * x[v];
                }
            }
    }
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++) {
            vf a = acc[p][v];
            if (relu)
                a = vrelu(&a);
            vstore(out + ((size_t)(o0 + p) * OH + y) * OW + v * VL, &a);
        }
}

void convk_fwd_w24_k5(float *out, const float *in, const float *w, const float *b, int C, int H,
                      int W, int OC, int relu)
{
    const int OH = H - 5 + 1;
    int o0 = 0;
    if (WIDE == 2)
        for (; o0 + 8 <= OC; o0 += 8)
            for (int y = 0; y < OH; y++)
                fwd_w24_tile(out, in, w, b, C, H, W, o0, y, 8, relu);
    for (; o0 < OC; o0 += 4)
        for (int y = 0; y < OH; y++)
            fwd_w24_tile(out, in, w, b, C, H, W, o0, y, 4, relu);
}

/* Output rows 8 wide (1 vector), K = 5: 4 channels x R rows (R = 2, or 4
 * with 32 registers) = 4R accumulators; per tap R input loads and 4
 * broadcasts. */
static ALWAYS_INLINE void fwd_w8_tile(float *out, const float *in, const float *w, const float *b,
                                      int C, int H, int W, int o0, int y0, const int R, int relu)
{
    enum { K = 5, OW = 8, P = 4, RMAX = 4 };
    const int OH = H - K + 1;
    vf acc[P][RMAX];
    for (int p = 0; p < P; p++)
        for (int r = 0; r < R; r++)
            acc[p][r] = vbcast(b[o0 + p]);
    for (int c = 0; c < C; c++) {
        const float *ip = in + ((size_t)c * H + y0) * W;
        const float *wp = w + ((size_t)o0 * C + c) * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                vf x[RMAX];
                for (int r = 0; r < R; r++) {
                    x[r] = vload(ip + (r + ky) * W + kx);
                    IN_REGISTER(x[r]);
                }
                for (int p = 0; p < P; p++) {
                    vf wv = vbcast(wp[(size_t)p * C * K * K + ky * K + kx]);
                    for (int r = 0; r < R; r++)
                        acc[p][r] += wv * x[r];
                }
            }
    }
    for (int p = 0; p < P; p++)
        for (int r = 0; r < R; r++) {
            vf a = acc[p][r];
            if (relu)
                a = vrelu(&a);
            vstore(out + ((size_t)(o0 + p) * OH + y0 + r) * OW, &a);
        }
}

void convk_fwd_w8_k5(float *out, const float *in, const float *w, const float *b, int C, int H,
                     int W, int OC, int relu)
{
    const int OH = H - 5 + 1;
    for (int o0 = 0; o0 < OC; o0 += 4) {
        int y0 = 0;
        if (WIDE == 2)
            for (; y0 + 4 <= OH; y0 += 4)
                fwd_w8_tile(out, in, w, b, C, H, W, o0, y0, 4, relu);
        for (; y0 + 2 <= OH; y0 += 2)
            fwd_w8_tile(out, in, w, b, C, H, W, o0, y0, 2, relu);
        for (; y0 < OH; y0++)
            fwd_w8_tile(out, in, w, b, C, H, W, o0, y0, 1, relu);
    }
}

/* db[o] += sum of dout[o]: 4 vector accumulators, then a fixed combine. */
void convk_bias_grad(float *db, const float *dout, int OC, int n)
{
    for (int o = 0; o < OC; o++) {
        const float *gp = dout + (size_t)o * n;
        vf a[4] = { vbcast(0.0f), vbcast(0.0f), vbcast(0.0f), vbcast(0.0f) };
        int i = 0;
        for (; i + 4 * VL <= n; i += 4 * VL)
            for (int u = 0; u < 4; u++)
                a[u] += vload(gp + i + u * VL);
        vf t = (a[0] + a[1]) + (a[2] + a[3]);
        float s = hsum(&t);
        for (; i < n; i++)
            s += gp[i];
        db[o] += s;
    }
}

/* dw for output rows 24 wide, K = 5: vectors run along x; for P channels
 * (2, or 4 with 32 registers) and one (c, ky) the 5 kx taps are 5P
 * accumulators over every (y, x-vector), each reduced by hsum at the end. */
static ALWAYS_INLINE void dw_w24_tile(float *dw, const float *dout, const float *in, int C, int H,
                                      int W, int o0, int c, int ky, const int P)
{
    enum { K = 5, OW = 24, NV = 3, PMAX = 4 };
    const int OH = H - K + 1;
    vf acc[PMAX][K];
    for (int p = 0; p < P; p++)
        for (int kx = 0; kx < K; kx++)
            acc[p][kx] = vbcast(0.0f);
    for (int y = 0; y < OH; y++) {
        const float *irow = in + ((size_t)c * H + y + ky) * W;
        for (int v = 0; v < NV; v++) {
            vf g[PMAX];
            for (int p = 0; p < P; p++)
                g[p] = vload(dout + ((size_t)(o0 + p) * OH + y) * OW + v * VL);
            for (int kx = 0; kx < K; kx++) {
                vf x = vload(irow + v * VL + kx);
                IN_REGISTER(x);
                for (int p = 0; p < P; p++)
                    acc[p][kx] += g[p] * x;
            }
        }
    }
    for (int p = 0; p < P; p++)
        for (int kx = 0; kx < K; kx++)
            dw[(((size_t)(o0 + p) * C + c) * K + ky) * K + kx] += hsum(&acc[p][kx]);
}

void convk_dw_w24_k5(float *dw, const float *dout, const float *in, int C, int H, int W, int OC)
{
    int o0 = 0;
    if (WIDE == 2)
        for (; o0 + 4 <= OC; o0 += 4)
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < 5; ky++)
                    dw_w24_tile(dw, dout, in, C, H, W, o0, c, ky, 4);
    for (; o0 < OC; o0 += 2)
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < 5; ky++)
                dw_w24_tile(dw, dout, in, C, H, W, o0, c, ky, 2);
}

/* dw for output rows 8 wide, K = 5, 16 output channels: a small GEMM with
 * vectors along the output channel. dout is transposed to (position, OC)
 * so that for one (c, ky) the 5 kx taps x 2 channel-vectors are 10
 * accumulators over the OH*8 positions, in position order. */
static ALWAYS_INLINE void dw_w8_tile(float *dw, const float *gt, const float *in, int C, int H,
                                     int W, int c0, int ky, const int CB)
{
    enum { K = 5, OW = 8, OC = 16, NO = 2, CBMAX = 2 };
    const int OH = H - K + 1;
    vf acc[CBMAX][K][NO];
    for (int cb = 0; cb < CB; cb++)
        for (int kx = 0; kx < K; kx++)
            for (int n = 0; n < NO; n++)
                acc[cb][kx][n] = vbcast(0.0f);
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++) {
            const float *gp = gt + (y * OW + x) * OC;
            vf g[NO];
            for (int n = 0; n < NO; n++) {
                g[n] = vload(gp + n * VL);
                IN_REGISTER(g[n]);
            }
            for (int cb = 0; cb < CB; cb++) {
                const float *irow = in + ((size_t)(c0 + cb) * H + y + ky) * W + x;
                for (int kx = 0; kx < K; kx++) {
                    vf iv = vbcast(irow[kx]);
                    for (int n = 0; n < NO; n++)
                        acc[cb][kx][n] += iv * g[n];
                }
            }
        }
    for (int cb = 0; cb < CB; cb++)
        for (int kx = 0; kx < K; kx++)
            for (int n = 0; n < NO; n++)
                for (int l = 0; l < VL; l++)
                    dw[(((size_t)(n * VL + l) * C + c0 + cb) * K + ky) * K + kx] += acc[cb][kx][n][l];
}

#if defined(__AVX512F__)
/* With 512-bit vectors the 16 output channels are one vector: for two
 * input channels and one ky, 2 x 5 kx taps = 10 accumulators, one load of
 * dout and 10 broadcasts per position. */
#define CONV_AVX512 1
typedef float vf16 __attribute__((vector_size(64)));

static void dw_w8_oc16_v16(float *dw, const float *gt, const float *in, int C, int H, int W)
{
    enum { K = 5, OW = 8, OC = 16, CB = 2 };
    const int OH = H - K + 1;
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int cb_n = C - c0 < CB ? C - c0 : CB;
        for (int ky = 0; ky < K; ky++) {
            vf16 acc[CB][K];
            for (int cb = 0; cb < CB; cb++)
                for (int kx = 0; kx < K; kx++)
                    acc[cb][kx] = (vf16){ 0 };
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    vf16 g;
                    memcpy(&g, gt + (y * OW + x) * OC, sizeof g);
                    for (int cb = 0; cb < CB; cb++) {
                        /* a missing second channel reads the first again */
                        const float *irow = in + ((size_t)(c0 + (cb < cb_n ? cb : 0)) * H + y + ky) * W + x;
                        for (int kx = 0; kx < K; kx++) {
                            float v = irow[kx];
                            acc[cb][kx] += (vf16){ v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v } * g;
                        }
                    }
                }
            for (int cb = 0; cb < cb_n; cb++)
                for (int kx = 0; kx < K; kx++)
                    for (int l = 0; l < OC; l++)
                        dw[(((size_t)l * C + c0 + cb) * K + ky) * K + kx] += acc[cb][kx][l];
        }
    }
}
#endif

/* The tile is 5 kx taps x 2 channel-vectors of one input channel (two
 * channels per tile, with 32 registers, measured no faster). */
void convk_dw_w8_k5_oc16(float *dw, const float *dout, const float *in, int C, int H, int W)
{
    enum { K = 5, OW = 8, OC = 16 };
    const int OH = H - K + 1, NP = OH * OW;
    float gt[64 * OC];
    for (int o = 0; o < OC; o++)
        for (int pos = 0; pos < NP; pos++)
            gt[pos * OC + o] = dout[o * NP + pos];
#ifdef CONV_AVX512
    dw_w8_oc16_v16(dw, gt, in, C, H, W);
#else
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            dw_w8_tile(dw, gt, in, C, H, W, c, ky, 1);
#endif
}

/* din for output rows 8 wide, K = 5, OH = 8 (so H = 12): for one input
 * channel and one kx, the 12 input rows are accumulators over (o, ky);
 * then they are added into din shifted by kx. */
void convk_din_w8_k5_h12(float *din, const float *dout, const float *w, int C, int W, int OC)
{
    enum { K = 5, OW = 8, OH = 8, H = OH + K - 1 };
    memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int c = 0; c < C; c++)
        for (int kx = 0; kx < K; kx++) {
            vf acc[H];
            for (int r = 0; r < H; r++)
                acc[r] = vbcast(0.0f);
            for (int o = 0; o < OC; o++) {
                const float *wp = w + ((size_t)o * C + c) * K * K + kx;
                const float *gp = dout + (size_t)o * OH * OW;
                vf wv[K];
                for (int ky = 0; ky < K; ky++)
                    wv[ky] = vbcast(wp[ky * K]);
                for (int y = 0; y < OH; y++) {
                    vf g = vload(gp + y * OW);
                    for (int ky = 0; ky < K; ky++)
                        acc[y + ky] += wv[ky] * g;
                }
            }
            float *dp = din + (size_t)c * H * W + kx;
            for (int r = 0; r < H; r++) {
                vf d = vload(dp + r * W) + acc[r];
                vstore(dp + r * W, &d);
            }
        }
}
#endif
