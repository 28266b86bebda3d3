/* conv_general.c - the general kernels, for the shapes that no kernel
 * written for a shape takes: conv_tile.inc built per width, and
 * gen_forward and gen_backward, which run them on one sample in the
 * per-thread scratch that conv.c hands them. */
#include <string.h>

#include "conv_simd.h"

#ifdef CONV_VECTORS
/* ---- General kernels (conv_tile.inc), for any filter count, K <= 7 ----
 * Instantiated with 8 lanes everywhere and with 16 where the CPU has
 * AVX-512. Rows whose width is not a multiple of the lanes are padded
 * with zeros into a per-thread scratch and the valid part copied back. */
#if defined(__AVX512F__)
#define GEN_NR 32
#else
#define GEN_NR 16
#endif
#define TV vf
#define TL 8
#define TN(x) x##_v8
#define TNR GEN_NR
#include "conv_tile.inc"
#undef TV
#undef TL
#undef TN
#undef TNR
#ifdef GEN_V16
#define TV vz
#define TL 16
#define TN(x) x##_v16
#define TNR GEN_NR
#include "conv_tile.inc"
#undef TV
#undef TL
#undef TN
#undef TNR
#endif

/* Copies C planes of H rows, W wide, into rows WP wide, zero past W. The
 * rows are short (W is at most the padded width of one or two vectors):
 * with AVX-512 each 16 floats are one masked load and store, where a
 * memcpy and a memset call a row cost more than the kernel's own loads
 * (the 3x3 network's conv2 backward: about 7% of its training time). */
void convk_pad_rows(float *dst, int WP, const float *src, int C, int H, int W)
{
    for (size_t r = 0; r < (size_t)C * H; r++) {
#ifdef GEN_V16
        for (int x = 0; x < WP; x += 16) {
            const __mmask16 in = (__mmask16)(W - x >= 16 ? 0xffffu : W > x ? (1u << (W - x)) - 1 : 0);
            const __mmask16 out = (__mmask16)(WP - x >= 16 ? 0xffffu : (1u << (WP - x)) - 1);
            _mm512_mask_storeu_ps(dst + r * WP + x, out, _mm512_maskz_loadu_ps(in, src + r * W + x));
        }
#else
        memcpy(dst + r * WP, src + r * W, sizeof(float) * (size_t)W);
        memset(dst + r * WP + W, 0, sizeof(float) * (size_t)(WP - W));
#endif
    }
}

static void unpad_rows(float *dst, const float *src, int WP, int C, int H, int W)
{
    for (size_t r = 0; r < (size_t)C * H; r++) {
#ifdef GEN_V16
        for (int x = 0; x < W; x += 16) {
            const __mmask16 m = (__mmask16)(W - x >= 16 ? 0xffffu : (1u << (W - x)) - 1);
            _mm512_mask_storeu_ps(dst + r * W + x, m, _mm512_maskz_loadu_ps(m, src + r * WP + x));
        }
#else
        memcpy(dst + r * W, src + r * WP, sizeof(float) * (size_t)W);
#endif
    }
}

static void gen_forward(float *out, const float *in, const float *w, const float *b, int C, int H, int W,
                        int OC, int K, int relu, int lanes, float *scratch)
{
    int OH = H - K + 1, OW = W - K + 1, OWp = OW < lanes ? lanes : OW, Wp = OWp + K - 1;
    float *pin = scratch, *pout = scratch + (size_t)C * H * Wp;
    int padded = OWp != OW;
    if (padded)
        convk_pad_rows(pin, Wp, in, C, H, W);
    const float *src = padded ? pin : in;
    float *dst = padded ? pout : out;
    int is = padded ? Wp : W;
#ifdef GEN_V16
    if (lanes == 16) {
        fwd_args_v16 a = { dst, src, w, b, OH * OWp, OWp, H * is, is, C * K * K, K * K, K, 1,
                           C, OC, OH, OWp, K, relu };
        fwd_v16(&a);
    } else
#endif
    {
        fwd_args_v8 a = { dst, src, w, b, OH * OWp, OWp, H * is, is, C * K * K, K * K, K, 1,
                          C, OC, OH, OWp, K, relu };
        fwd_v8(&a);
    }
    if (padded)
        unpad_rows(out, pout, OWp, OC, OH, OW);
}

static void gen_backward(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                         int C, int H, int W, int OC, int K, int lanes, float *scratch)
{
    int OH = H - K + 1, OW = W - K + 1, OWp = OW < lanes ? lanes : OW, Wp = OWp + K - 1;
    int padded = OWp != OW, ol = dw ? dwoc_lanes(OW, OC) : 0;
    float *pin = scratch, *pdin = pin + (size_t)C * H * Wp, *pg = pdin + (size_t)C * H * Wp;
    float *gt = padded ? pg + (size_t)OC * OH * OWp : scratch;
    if (dw)
        convk_bias_grad(db, dout, OC, OH * OW);
    if (padded) {
        convk_pad_rows(pg, OWp, dout, OC, OH, OW);
        if (dw && !ol)
            convk_pad_rows(pin, Wp, in, C, H, W);
    }
    const float *src = padded ? pin : in, *g = padded ? pg : dout;
    float *dd = padded ? pdin : din;
    int is = padded ? Wp : W;
    if (ol) {
        int OCp = round_up(OC, ol), np = OH * OW;
#ifdef GEN_V16
        if (ol == 16) {
            convk_dout_t16(gt, OCp, dout, OC, np);
            convk_dwt16(dw, gt, OCp, in, H, W, C, OC, OH, OW, K);
        } else
#endif
        {
            for (int pos = 0; pos < np; pos++) {
                for (int o = 0; o < OC; o++)
                    gt[(size_t)pos * OCp + o] = dout[(size_t)o * np + pos];
                for (int o = OC; o < OCp; o++)
                    gt[(size_t)pos * OCp + o] = 0.0f;
            }
            dwoc_v8(dw, gt, OCp, in, H, W, C, OC, OH, OW, K);
        }
    }
#ifdef GEN_V16
    if (lanes == 16) {
        if (dw && !ol)
            dw_v16(dw, g, OH * OWp, OWp, src, H * is, is, C, OC, OH, OWp, K);
        if (din) {
            memset(dd, 0, sizeof(float) * (size_t)C * H * is);
            din_v16(dd, H * is, is, g, OH * OWp, OWp, w, C, OC, OH, OWp, K);
        }
    } else
#endif
    {
        if (dw && !ol)
            dw_v8(dw, g, OH * OWp, OWp, src, H * is, is, C, OC, OH, OWp, K);
        if (din) {
            memset(dd, 0, sizeof(float) * (size_t)C * H * is);
            din_v8(dd, H * is, is, g, OH * OWp, OWp, w, C, OC, OH, OWp, K);
        }
    }
    if (din && padded)
        unpad_rows(din, pdin, Wp, C, H, W);
}

/* The lanes as constants: from them GCC sees that a padded row is one
 * vector wide, so that each row's pad and unpad is one masked load and
 * store (as when the dispatch shared this file and told it so; without,
 * the 3x3 network trained 3.5% slower). */
void convk_gen_forward(float *out, const float *in, const float *w, const float *b, int C, int H, int W,
                       int OC, int K, int relu, int lanes, float *scratch)
{
    if (lanes == 16)
        gen_forward(out, in, w, b, C, H, W, OC, K, relu, 16, scratch);
    else
        gen_forward(out, in, w, b, C, H, W, OC, K, relu, 8, scratch);
}

void convk_gen_backward(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                        int C, int H, int W, int OC, int K, int lanes, float *scratch)
{
    if (lanes == 16)
        gen_backward(din, dw, db, dout, in, w, C, H, W, OC, K, 16, scratch);
    else
        gen_backward(din, dw, db, dout, in, w, C, H, W, OC, K, 8, scratch);
}
#endif
