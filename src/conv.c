/* conv.c - the convolution layer: the plain reference kernels (the tests'
 * oracle), the loop kernels for any shape, and the dispatch: which kernel
 * runs a shape (fwd_path, bwd_path; conv_kernel_path names it) and the
 * entry points of layers.h. The vector kernels live one family to a file:
 * conv_tiled.c, conv_general.c, conv_rowpairs.c, conv_flat.c, conv_rows.c
 * and conv_oc.c; conv_simd.h holds what they share. */
#include <stdio.h>
#include <string.h>

#include "conv_simd.h"
#include "layers.h"

void conv_forward_ref(float *out, const float *in, const float *w, const float *b,
                      int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float s = b[o];
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++)
                            s += w[((o * C + c) * K + ky) * K + kx] * in[(c * H + y + ky) * W + x + kx];
                out[(o * OH + y) * OW + x] = s;
            }
}

void conv_backward_ref(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    if (din)
        memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float g = dout[(o * OH + y) * OW + x];
                db[o] += g;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int wi = ((o * C + c) * K + ky) * K + kx;
                            int ii = (c * H + y + ky) * W + x + kx;
                            dw[wi] += g * in[ii];
                            if (din)
                                din[ii] += g * w[wi];
                        }
            }
}

/* The loop kernels for any shape keep the output row (x) innermost so the
 * compiler vectorises it, and hoist one weight per (ky, kx) into a register. */
static void conv_forward_loops(float *out, const float *in, const float *w, const float *b,
                               int C, int H, int W, int OC, int K, int relu)
{
    int OH = H - K + 1, OW = W - K + 1;
    for (int o = 0; o < OC; o++) {
        float *restrict op = out + (size_t)o * OH * OW;
        for (int i = 0; i < OH * OW; i++)
            op[i] = b[o];
        for (int c = 0; c < C; c++) {
            const float *ip = in + (size_t)c * H * W;
            const float *wp = w + ((size_t)o * C + c) * K * K;
            for (int y = 0; y < OH; y++) {
                float *restrict orow = op + y * OW;
                for (int ky = 0; ky < K; ky++) {
                    const float *irow = ip + (y + ky) * W;
                    for (int kx = 0; kx < K; kx++) {
                        float wv = wp[ky * K + kx];
                        for (int x = 0; x < OW; x++)
                            orow[x] += wv * irow[x + kx];
                    }
                }
            }
        }
        if (relu)
            for (int i = 0; i < OH * OW; i++)
                op[i] = op[i] > 0.0f ? op[i] : 0.0f;
    }
}

static void conv_backward_loops(float *din, float *dw, float *db, const float *dout,
                                const float *in, const float *w, int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    if (din)
        memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int o = 0; o < OC; o++) {
        const float *gp = dout + (size_t)o * OH * OW;
        if (dw) {
            float s = 0.0f;
            for (int i = 0; i < OH * OW; i++)
                s += gp[i];
            db[o] += s;
        }
        for (int c = 0; c < C; c++) {
            const float *ip = in + (size_t)c * H * W;
            float *dwp = dw ? dw + ((size_t)o * C + c) * K * K : NULL;
            const float *wp = w + ((size_t)o * C + c) * K * K;
            float *dip = din ? din + (size_t)c * H * W : NULL;
            if (dwp)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        float acc = 0.0f;
                        for (int y = 0; y < OH; y++) {
                            const float *grow = gp + y * OW;
                            const float *irow = ip + (y + ky) * W + kx;
                            for (int x = 0; x < OW; x++)
                                acc += grow[x] * irow[x];
                        }
                        dwp[ky * K + kx] += acc;
                    }
            if (dip)
                for (int y = 0; y < OH; y++) {
                    const float *grow = gp + y * OW;
                    for (int ky = 0; ky < K; ky++) {
                        float *restrict drow = dip + (y + ky) * W;
                        for (int kx = 0; kx < K; kx++) {
                            float wv = wp[ky * K + kx];
                            for (int x = 0; x < OW; x++)
                                drow[x + kx] += wv * grow[x];
                        }
                    }
                }
        }
    }
}

/* ---- Which kernel runs a shape ----
 * The hand-tiled kernels (conv_tiled.c) for the shapes they were written
 * for (where measured faster), the general ones (conv_general.c) for every
 * other shape with K <= 7 whose padded buffers fit the scratch, the loops
 * for the rest. */

#ifndef GEN_FWD_W24
#define GEN_FWD_W24 0
#endif
#ifndef GEN_FWD_W8
#define GEN_FWD_W8 0
#endif
#ifndef GEN_BWD_W24
#define GEN_BWD_W24 0
#endif
#ifndef GEN_BWD_W8
#define GEN_BWD_W8 0
#endif

enum { PATH_LOOPS, PATH_W24, PATH_W8, PATH_GEN8, PATH_GEN16, PATH_PAIR16, PATH_FLAT16, PATH_OC16, PATH_ROWS16,
       PATH_FLATDIN16 };

#ifdef CONV_VECTORS
/* Per thread, reused by every call: the padded copies of one sample (the
 * general kernels), fwdoc's transposed weights, flat_dw's grid; the path
 * choice checks that a shape's fit before the dispatch hands it over. */
#define SCRATCH_FLOATS (64 * 1024)
static _Thread_local float scratch[SCRATCH_FLOATS] __attribute__((aligned(64)));
#endif

static int fwd_path(int C, int H, int W, int OC, int K)
{
#ifdef CONV_VECTORS
    int OW = W - K + 1;
#if defined(GEN_V16) && !defined(GEN_NO_PAIR)
    if (OW == 8 && (H - K + 1) % 2 == 0 && K <= 7)
        return PATH_PAIR16;
#endif
#if defined(GEN_V16) && !defined(GEN_NO_FLAT)
    /* Rows 17 to 31 wide: no idle lanes (where chunks of 16 leave a
     * quarter or more of them idle at 24, 22 and 26 wide). With 3x3 and
     * smaller kernels a tile has too few taps to pay for its setup (26
     * wide: 0.97x the chunks), but at 24 wide the 2x2 pool comes from its
     * registers (the 3x3 network's conv1 as trained: 1.01x the grid and
     * a pool pass, in the whole network). */
    if (OW > 16 && OW < 32 && (K >= 4 || (K == 3 && OW == 24)) && K <= 7)
        return PATH_ROWS16;
    /* Where chunks of 16 would leave a quarter or more of the lanes idle;
     * on 26 and 28 wide rows the grid measured slower. (The backward pass
     * takes the grid only here, and only without din.) */
    if (OW > 16 && OW % 16 && OW % 16 <= 8 && K <= 7)
        return PATH_FLAT16;
    /* Rows 9 to 15 wide on a grid at most 16 wide: fewer idle lanes than
     * rows padded to 16 (11 and 10 wide: 1.25-1.3x measured). */
    if (OW > 8 && OW < 16 && W <= 16 && K <= 7)
        return PATH_FLAT16;
    /* Rows 4 to 7 wide with at least 12 filters: lanes along the filters. */
    if (OW >= 4 && OW <= 7 && OC >= 12 && K <= 7 && fwdoc_floats(C, OC, K) <= SCRATCH_FLOATS)
        return PATH_OC16;
#endif
    if (K == 5 && OW == 24 && OC % 4 == 0 && !GEN_FWD_W24)
        return PATH_W24;
    if (K == 5 && OW == 8 && OC % 4 == 0 && !GEN_FWD_W8)
        return PATH_W8;
    if (K <= 7 && gen_scratch(C, H, W, OC, K) <= SCRATCH_FLOATS)
        return gen_lanes(OW) == 16 ? PATH_GEN16 : PATH_GEN8;
#endif
    (void)C, (void)H, (void)W, (void)OC, (void)K;
    return PATH_LOOPS;
}

static int bwd_path(int has_din, int C, int H, int W, int OC, int K)
{
#ifdef CONV_VECTORS
    int OH = H - K + 1, OW = W - K + 1;
#if defined(GEN_V16) && !defined(GEN_NO_PAIR)
    if (OW == 8 && OH == 8 && K <= 7 && gen_scratch(C, H, W, OC, K) <= SCRATCH_FLOATS)
        return PATH_PAIR16;
#endif
#if defined(GEN_V16) && !defined(GEN_NO_FLAT)
    if (!has_din && OW > 16 && OW % 16 && OW % 16 <= 8 && K <= 7 && flat_dw_floats(H, W, OC, K) <= SCRATCH_FLOATS)
        return PATH_FLAT16;
    /* din on its own grid, where that wastes fewer lanes than dout's rows
     * padded to the vector: 3x3 kernels, whose din is barely wider than
     * dout (12x12 from 10x10: 69% of the lanes against 62%); dw, where
     * the pool above does not sum it, as the general path. 1.3x the
     * general din for the 3x3 network's conv2 (kernel harness, 5 runs). */
    if (has_din && K <= 7 && flat_din_floats(H, W, OC, K) <= SCRATCH_FLOATS &&
        gen_scratch(C, H, W, OC, K) <= SCRATCH_FLOATS &&
        flat_din_lane_use(H, W, K) > (double)OW / round_up(OW, gen_lanes(OW)))
        return PATH_FLATDIN16;
#endif
    int fast_dw = K == 5 && ((OW == 24 && OC % 2 == 0) || (OW == 8 && OH <= 8 && OC == 16));
    int fast_din = !has_din || (K == 5 && OW == 8 && OH == 8);
    if (fast_dw && fast_din && !(OW == 24 ? GEN_BWD_W24 : GEN_BWD_W8))
        return OW == 24 ? PATH_W24 : PATH_W8;
    if (K <= 7 && gen_scratch(C, H, W, OC, K) <= SCRATCH_FLOATS)
        return gen_lanes(OW) == 16 ? PATH_GEN16 : PATH_GEN8;
#endif
    (void)has_din, (void)C, (void)H, (void)W, (void)OC, (void)K;
    return PATH_LOOPS;
}

static const char *path_name(int path)
{
    switch (path) {
    case PATH_W24: return "tiled-w24";
    case PATH_W8: return "tiled-w8";
    case PATH_GEN8: return "vec256";
    case PATH_GEN16: return "vec512";
    case PATH_PAIR16: return "vec512-rowpairs";
    case PATH_FLAT16: return "vec512-flat";
    case PATH_OC16: return "vec512-oc";
    case PATH_ROWS16: return "vec512-rows";
    case PATH_FLATDIN16: return "vec512-flat";
    default: return "loops";
    }
}

void conv_kernel_path(char *buf, size_t size, int has_din, int has_dw, int C, int H, int W, int OC, int K)
{
    int f = fwd_path(C, H, W, OC, K), b = bwd_path(has_din, C, H, W, OC, K);
#ifdef CONV_VECTORS
    if (b == PATH_FLATDIN16 && has_dw) { /* dw as the general path */
        snprintf(buf, size, "forward %s, dw %s, din %s", path_name(f),
                 path_name(gen_lanes(W - K + 1) == 16 ? PATH_GEN16 : PATH_GEN8), path_name(b));
        return;
    }
#endif
    if (!has_dw && has_din)
        snprintf(buf, size, "forward %s, din %s", path_name(f), path_name(b));
    else if (!has_dw)
        snprintf(buf, size, "forward %s", path_name(f));
    else if (f == b)
        snprintf(buf, size, "%s", path_name(f));
    else
        snprintf(buf, size, "forward %s, backward %s", path_name(f), path_name(b));
}

static void conv_forward_any(float *out, const float *in, const float *w, const float *b,
                             int C, int H, int W, int OC, int K, int relu)
{
    switch (fwd_path(C, H, W, OC, K)) {
#ifdef CONV_VECTORS
    case PATH_W24:
        convk_fwd_w24_k5(out, in, w, b, C, H, W, OC, relu);
        return;
    case PATH_W8:
        convk_fwd_w8_k5(out, in, w, b, C, H, W, OC, relu);
        return;
    case PATH_GEN8:
        convk_gen_forward(out, in, w, b, C, H, W, OC, K, relu, 8, scratch);
        return;
    case PATH_GEN16:
        convk_gen_forward(out, in, w, b, C, H, W, OC, K, relu, 16, scratch);
        return;
#ifdef GEN_V16
    case PATH_PAIR16:
        convk_fwd_pair(out, in, w, b, C, H, W, OC, K, relu, NULL, NULL);
        return;
    case PATH_FLAT16:
        convk_flat_fwd(out, in, w, b, C, H, W, OC, K, relu);
        return;
    case PATH_OC16:
        convk_fwdoc(out, in, w, b, scratch, C, H, W, OC, K, relu);
        return;
    case PATH_ROWS16:
        convk_rows_fwd(out, in, w, b, C, H, W, OC, K, relu, NULL, NULL);
        return;
#endif
#endif
    default:
        conv_forward_loops(out, in, w, b, C, H, W, OC, K, relu);
    }
}

void conv_forward(float *out, const float *in, const float *w, const float *b,
                  int C, int H, int W, int OC, int K)
{
    conv_forward_any(out, in, w, b, C, H, W, OC, K, 0);
}

void conv_relu_forward(float *out, const float *in, const float *w, const float *b,
                       int C, int H, int W, int OC, int K)
{
    conv_forward_any(out, in, w, b, C, H, W, OC, K, 1);
}

int conv_relu_pool_fused(int C, int H, int W, int OC, int K)
{
#ifdef GEN_V16
    const int path = fwd_path(C, H, W, OC, K), OH = H - K + 1, OW = W - K + 1;
    return (path == PATH_PAIR16 && OH == 8) || (path == PATH_ROWS16 && OW == 24 && OH % 2 == 0);
#else
    (void)C, (void)H, (void)W, (void)OC, (void)K;
    return 0;
#endif
}

void conv_relu_pool_forward(float *out, float *pooled, int32_t *argmax, const float *in, const float *w,
                            const float *b, int C, int H, int W, int OC, int K)
{
#ifdef GEN_V16
    if (conv_relu_pool_fused(C, H, W, OC, K)) {
        if (fwd_path(C, H, W, OC, K) == PATH_PAIR16)
            convk_fwd_pair(out, in, w, b, C, H, W, OC, K, 1, pooled, argmax);
        else
            convk_rows_fwd(out, in, w, b, C, H, W, OC, K, 1, pooled, argmax);
        return;
    }
#endif
    conv_forward_any(out, in, w, b, C, H, W, OC, K, 1);
    maxpool_forward(pooled, argmax, out, OC, H - K + 1, W - K + 1, 2, 2);
}

void conv_backward(float *din, float *dw, float *db, const float *dout,
                   const float *in, const float *w, int C, int H, int W, int OC, int K)
{
    switch (bwd_path(din != NULL, C, H, W, OC, K)) {
#ifdef CONV_VECTORS
    case PATH_W24:
    case PATH_W8: {
        int OH = H - K + 1, OW = W - K + 1;
        if (dw) {
            convk_bias_grad(db, dout, OC, OH * OW);
            if (OW == 24)
                convk_dw_w24_k5(dw, dout, in, C, H, W, OC);
            else
                convk_dw_w8_k5_oc16(dw, dout, in, C, H, W);
        }
        if (din)
            convk_din_w8_k5_h12(din, dout, w, C, W, OC);
        return;
    }
    case PATH_GEN8:
        convk_gen_backward(din, dw, db, dout, in, w, C, H, W, OC, K, 8, scratch);
        return;
    case PATH_GEN16:
        convk_gen_backward(din, dw, db, dout, in, w, C, H, W, OC, K, 16, scratch);
        return;
#ifdef GEN_V16
    case PATH_PAIR16: /* bias and dw as the general path, din in row pairs */
        if (dw)
            convk_gen_backward(NULL, dw, db, dout, in, w, C, H, W, OC, K, 8, scratch);
        if (din)
            convk_din_pair(din, dout, w, C, OC, K);
        return;
    case PATH_FLAT16: /* no din: bwd_path takes it only for the first layer */
        if (dw) {
            convk_bias_grad(db, dout, OC, (H - K + 1) * (W - K + 1));
            convk_flat_dw(dw, scratch, dout, in, C, H, W, OC, K);
        }
        return;
    case PATH_FLATDIN16: /* bias and dw as the general path, din on its grid */
        if (dw)
            convk_gen_backward(NULL, dw, db, dout, in, w, C, H, W, OC, K, gen_lanes(W - K + 1), scratch);
        if (din)
            convk_flat_din(din, scratch, dout, w, C, H, W, OC, K);
        return;
#endif
#endif
    default:
        conv_backward_loops(din, dw, db, dout, in, w, C, H, W, OC, K);
    }
}
