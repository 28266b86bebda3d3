/* test_kernels.c - the fast convolution kernels against the plain six-loop
 * reference versions on many shapes, and maxpool's tie rule. */
#include "tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

typedef struct {
    int C, H, W, OC, K;
} shape;

/* The list covers every kernel path (conv_kernel_path names them): the
 * hand-tiled kernels on the default network's shapes, the general ones (8
 * and 16 lanes, rows padded or not, vectors along rows or along output
 * channels, filter counts that are not a multiple of the tile or the lanes)
 * on the shapes the benchmark sweeps and on odd ones, and the loops on
 * kernels larger than 7. */
static const shape shapes[] = {
    { 1, 28, 28, 8, 5 },   /* conv1 of the default network */
    { 8, 12, 12, 16, 5 },  /* conv2 */
    { 3, 28, 28, 4, 5 },   /* output rows 24 wide, other channel counts */
    { 2, 28, 28, 2, 5 },
    { 1, 20, 28, 12, 5 },  /* 16 rows of 24 */
    { 2, 27, 28, 5, 5 },   /* 23 rows of 24: row pairs, then a last row alone */
    { 2, 12, 12, 8, 5 },   /* output rows 8 wide */
    { 4, 10, 12, 16, 5 },  /* 6 rows of 8 */
    { 3, 14, 12, 16, 5 },  /* 10 rows of 8 */
    { 1, 28, 28, 16, 5 },  /* the benchmark's sweep: conv1 16 and 32 filters */
    { 1, 28, 28, 32, 5 },
    { 8, 12, 12, 32, 5 },  /* conv2 32 and 64 filters */
    { 16, 12, 12, 64, 5 },
    { 1, 28, 28, 8, 3 },   /* 3x3: 26 wide, then 13 -> 11 */
    { 8, 13, 13, 16, 3 },
    { 1, 26, 26, 8, 3 },   /* 3x3 as trained (the live shapes): 24 wide, then 12 -> 10 */
    { 8, 12, 12, 16, 3 },
    { 1, 28, 28, 12, 5 },  /* 12 filters: a tile tail */
    { 12, 12, 12, 12, 5 },
    { 1, 32, 32, 8, 5 },   /* 32x32 input: 28 wide, then 14 -> 10 */
    { 8, 14, 14, 16, 5 },
    { 1, 28, 28, 8, 7 },   /* 7x7: 22 wide, then 11 -> 5 */
    { 1, 26, 26, 8, 7 },   /* 7x7 as trained: 20 wide, then 10 -> 4 */
    { 8, 10, 10, 16, 7 },
    { 2, 24, 23, 5, 4 },   /* 20 wide, 21 rows: vectors across rows, a short last one */
    { 8, 11, 11, 16, 7 },
    { 3, 15, 15, 5, 7 },   /* 8x8 outputs of other kernels: row pairs */
    { 7, 10, 10, 9, 3 },
    { 2, 11, 11, 3, 4 },
    { 1, 32, 32, 6, 6 },   /* even kernel */
    { 5, 9, 9, 20, 4 },    /* 20 filters: a lane tail */
    { 3, 18, 40, 9, 3 },   /* 38 wide: three vectors of 16, padded */
    { 3, 7, 7, 2, 3 },     /* K = 3, W = 7 */
    { 2, 9, 7, 3, 3 },     /* H != W */
    { 1, 5, 5, 1, 5 },     /* kernel the size of the input: one output */
    { 4, 6, 11, 5, 1 },    /* 1x1 kernel */
    { 3, 8, 5, 4, 4 },     /* even kernel, odd width */
    { 5, 13, 17, 7, 6 },   /* odd everything, output width 12 */
    { 2, 3, 33, 3, 2 },    /* short and wide: long vectorised rows */
    { 1, 28, 28, 100, 3 }, /* wide layer: more floats than the padding scratch, needed by none */
    { 8, 12, 12, 20, 6 },  /* rows 7 wide, 20 filters: lanes along the filters, a lane tail */
    { 4, 10, 10, 12, 5 },  /* rows 6 wide, 12 filters: a block of 4 rows and single rows */
    { 2, 12, 12, 3, 9 },   /* K > 7: the loops */
};

static void conv_forward_matches_ref(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        size_t nin = (size_t)p->C * p->H * p->W, nw = (size_t)p->OC * p->C * p->K * p->K;
        size_t nout = (size_t)p->OC * (p->H - p->K + 1) * (p->W - p->K + 1);
        float *in = alloc_floats(nin), *w = alloc_floats(nw), *b = alloc_floats((size_t)p->OC);
        float *fast = alloc_floats(nout + 1), *ref = alloc_floats(nout + 1);
        fill_uniform(in, nin, -1, 1, 100 + s);
        fill_uniform(w, nw, -0.5f, 0.5f, 200 + s);
        fill_uniform(b, (size_t)p->OC, -1, 1, 300 + s);
        /* Garbage in the outputs, and a sentinel just past them. */
        for (size_t i = 0; i <= nout; i++)
            fast[i] = ref[i] = 1234.5f;
        conv_forward(fast, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        conv_forward_ref(ref, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        char what[96];
        snprintf(what, sizeof what, "conv_forward C=%d H=%d W=%d OC=%d K=%d", p->C, p->H, p->W, p->OC, p->K);
        assert_floats_close(what, fast, ref, nout, 1e-5);
        assert_true(fast[nout] == 1234.5f);
        free(in);
        free(w);
        free(b);
        free(fast);
        free(ref);
    }
}

static void conv_backward_matches_ref(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        size_t nin = (size_t)p->C * p->H * p->W, nw = (size_t)p->OC * p->C * p->K * p->K;
        size_t nout = (size_t)p->OC * (p->H - p->K + 1) * (p->W - p->K + 1), nb = (size_t)p->OC;
        float *in = alloc_floats(nin), *w = alloc_floats(nw), *dout = alloc_floats(nout);
        float *din_f = alloc_floats(nin + 1), *din_r = alloc_floats(nin + 1);
        float *dw_f = alloc_floats(nw), *dw_r = alloc_floats(nw);
        float *db_f = alloc_floats(nb), *db_r = alloc_floats(nb);
        fill_uniform(in, nin, -1, 1, 400 + s);
        fill_uniform(w, nw, -0.5f, 0.5f, 500 + s);
        fill_uniform(dout, nout, -1, 1, 600 + s);
        /* Both add into the same non-zero dw and db, and overwrite din. */
        fill_uniform(dw_f, nw, -2, 2, 700 + s);
        memcpy(dw_r, dw_f, nw * sizeof(float));
        fill_uniform(db_f, nb, -2, 2, 800 + s);
        memcpy(db_r, db_f, nb * sizeof(float));
        for (size_t i = 0; i <= nin; i++)
            din_f[i] = din_r[i] = -99.0f;
        conv_backward(din_f, dw_f, db_f, dout, in, w, p->C, p->H, p->W, p->OC, p->K);
        conv_backward_ref(din_r, dw_r, db_r, dout, in, w, p->C, p->H, p->W, p->OC, p->K);
        char what[3][96];
        const char *names[3] = { "din", "dw", "db" };
        for (int k = 0; k < 3; k++)
            snprintf(what[k], sizeof what[k], "conv_backward %s C=%d H=%d W=%d OC=%d K=%d", names[k],
                     p->C, p->H, p->W, p->OC, p->K);
        assert_floats_close(what[0], din_f, din_r, nin, 1e-5);
        assert_floats_close(what[1], dw_f, dw_r, nw, 1e-5);
        assert_floats_close(what[2], db_f, db_r, nb, 1e-5);
        assert_true(din_f[nin] == -99.0f);

        /* dw NULL: din alone, the same bits. */
        float *din_o = alloc_floats(nin);
        conv_backward(din_o, NULL, NULL, dout, in, w, p->C, p->H, p->W, p->OC, p->K);
        if (memcmp(din_o, din_f, nin * sizeof(float)) != 0)
            fail_msg("%s: din alone is not the same bits", what[0]);
        free(din_o);

        /* din == NULL (the first layer; another path) gives the same
         * parameter gradients. */
        float *dw_n = alloc_floats(nw), *db_n = alloc_floats(nb);
        fill_uniform(dw_n, nw, -2, 2, 700 + s);
        fill_uniform(db_n, nb, -2, 2, 800 + s);
        conv_backward(NULL, dw_n, db_n, dout, in, w, p->C, p->H, p->W, p->OC, p->K);
        assert_floats_close(what[1], dw_n, dw_r, nw, 1e-5);
        assert_floats_close(what[2], db_n, db_r, nb, 1e-5);
        free(dw_n);
        free(db_n);
        free(in);
        free(w);
        free(dout);
        free(din_f);
        free(din_r);
        free(dw_f);
        free(dw_r);
        free(db_f);
        free(db_r);
    }
}

/* conv_relu_forward is conv_forward_ref followed by max(x, 0). */
static void conv_relu_forward_matches_ref(void **state)
{
    (void)state;
    size_t zeros = 0, positives = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        size_t nin = (size_t)p->C * p->H * p->W, nw = (size_t)p->OC * p->C * p->K * p->K;
        size_t nout = (size_t)p->OC * (p->H - p->K + 1) * (p->W - p->K + 1);
        float *in = alloc_floats(nin), *w = alloc_floats(nw), *b = alloc_floats((size_t)p->OC);
        float *fast = alloc_floats(nout), *ref = alloc_floats(nout);
        fill_uniform(in, nin, -1, 1, 1100 + s);
        fill_uniform(w, nw, -0.5f, 0.5f, 1200 + s);
        fill_uniform(b, (size_t)p->OC, -1, 1, 1300 + s);
        for (size_t i = 0; i < nout; i++)
            fast[i] = -1234.5f;
        conv_relu_forward(fast, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        conv_forward_ref(ref, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        double scale = max_abs(ref, nout);
        for (size_t i = 0; i < nout; i++) {
            double want = ref[i] > 0 ? ref[i] : 0.0;
            if (!(fast[i] >= 0.0f && fabs(fast[i] - want) <= 1e-5 * (want + scale)))
                fail_msg("conv_relu_forward C=%d H=%d W=%d OC=%d K=%d: %.9g, want %.9g at %zu", p->C, p->H,
                         p->W, p->OC, p->K, (double)fast[i], want, i);
            zeros += fast[i] == 0.0f;
            positives += fast[i] > 0.0f;
        }
        free(in);
        free(w);
        free(b);
        free(fast);
        free(ref);
    }
    assert_true(zeros > 100 && positives > 100); /* both sides of the ReLU were seen */
}

/* The ReLU inside the kernels gives relu_forward's +0 for a NaN and for a
 * -0 sum (a fast path's max with 0 must take the 0 then), so the fused
 * pool sees no NaN and no -0 either. Filter 0 sums -0s (weights and bias
 * -0, inputs positive); a NaN pixel makes NaN sums in every filter. */
static void conv_relu_zero_and_nan_give_plus_zero(void **state)
{
    (void)state;
    enum { C = 1, H = 28, W = 28, OC = 8, K = 5, OH = H - K + 1, OW = W - K + 1 };
    static float in[C * H * W], w[OC * C * K * K], b[OC], ref[OC * OH * OW], fast[OC * OH * OW];
    static float pooled[OC * (OH / 2) * (OW / 2)], pwant[OC * (OH / 2) * (OW / 2)];
    static int32_t arg[OC * (OH / 2) * (OW / 2)], awant[OC * (OH / 2) * (OW / 2)];
    fill_uniform(in, C * H * W, 0.1f, 1, 3100);
    fill_uniform(w, OC * C * K * K, -0.5f, 0.5f, 3200);
    fill_uniform(b, OC, -1, 1, 3300);
    for (int i = 0; i < C * K * K; i++)
        w[i] = -0.0f;
    b[0] = -0.0f;
    in[13 * W + 13] = NAN;
    conv_forward_ref(ref, in, w, b, C, H, W, OC, K);
    conv_relu_forward(fast, in, w, b, C, H, W, OC, K);
    const float plus0 = 0.0f;
    size_t nans = 0, negzeros = 0;
    for (int i = 0; i < OC * OH * OW; i++)
        if (isnan(ref[i]) || (ref[i] == 0 && signbit(ref[i]))) {
            nans += isnan(ref[i]);
            negzeros += !isnan(ref[i]);
            if (memcmp(&fast[i], &plus0, sizeof plus0) != 0)
                fail_msg("conv_relu_forward: output %d is %g, want +0 (the sum is %g)", i, (double)fast[i],
                         (double)ref[i]);
        }
    assert_true(nans >= OC * K * K && negzeros > 500);
    maxpool_forward(pwant, awant, fast, OC, OH, OW, 2, 2);
    /* unfused (no 512-bit vectors), the call needs the conv's output */
    float *out = conv_relu_pool_fused(C, H, W, OC, K) ? NULL : ref;
    for (int mode = out ? 1 : 0; mode < 2; mode++) {
        conv_relu_pool_forward(out, pooled, mode ? arg : NULL, in, w, b, C, H, W, OC, K);
        for (int i = 0; i < OC * (OH / 2) * (OW / 2); i++)
            if (memcmp(&pooled[i], &pwant[i], sizeof(float)) != 0 || (mode && arg[i] != awant[i]))
                fail_msg("conv_relu_pool_forward%s: output %d is %g, want %g", mode ? "" : " (no argmax)", i,
                         (double)pooled[i], (double)pwant[i]);
    }
}

/* conv_relu_pool_forward gives the bits of conv_relu_forward then
 * maxpool_forward (2x2, stride 2): the pooled values, the argmax, and the
 * conv's output where it is asked for; without it, and without the
 * argmax, where the pool is fused. */
static void conv_relu_pool_forward_matches_unfused(void **state)
{
    (void)state;
    int fused = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        const int OH = p->H - p->K + 1, OW = p->W - p->K + 1;
        if (OH < 2 || OW < 2)
            continue;
        size_t nin = (size_t)p->C * p->H * p->W, nw = (size_t)p->OC * p->C * p->K * p->K;
        size_t nout = (size_t)p->OC * OH * OW, np = (size_t)p->OC * (OH / 2) * (OW / 2);
        float *in = alloc_floats(nin), *w = alloc_floats(nw), *b = alloc_floats((size_t)p->OC);
        float *out = alloc_floats(nout), *want = alloc_floats(nout);
        float *pooled = alloc_floats(np + 1), *pwant = alloc_floats(np);
        int32_t *arg = calloc(np + 1, sizeof *arg), *awant = calloc(np, sizeof *awant);
        assert_non_null(arg);
        assert_non_null(awant);
        fill_uniform(in, nin, -1, 1, 2200 + s);
        fill_uniform(w, nw, -0.5f, 0.5f, 2300 + s);
        fill_uniform(b, (size_t)p->OC, -1, 1, 2400 + s);
        conv_relu_forward(want, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        maxpool_forward(pwant, awant, want, p->OC, OH, OW, 2, 2);
        int f = conv_relu_pool_fused(p->C, p->H, p->W, p->OC, p->K);
        fused += f;
        /* 0: the maxima only (net_predict), 1: with argmax (training), 2: and
         * the conv's output (the report); the first two where it is fused */
        for (int mode = f ? 0 : 2; mode < 3; mode++) {
            int32_t *a = mode ? arg : NULL;
            for (size_t i = 0; i < nout; i++)
                out[i] = -7.0f;
            for (size_t i = 0; i <= np; i++) {
                pooled[i] = -1234.5f;
                arg[i] = -1;
            }
            conv_relu_pool_forward(mode == 2 ? out : NULL, pooled, a, in, w, b, p->C, p->H, p->W, p->OC, p->K);
            char what[96];
            snprintf(what, sizeof what, "conv_relu_pool_forward C=%d H=%d W=%d OC=%d K=%d%s", p->C, p->H, p->W,
                     p->OC, p->K, mode == 2 ? "" : mode ? " (no output kept)" : " (no argmax)");
            for (size_t i = 0; i < np; i++)
                if (memcmp(&pooled[i], &pwant[i], sizeof(float)) != 0 || (a && arg[i] != awant[i]))
                    fail_msg("%s: output %zu is %g from %d, want %g from %d", what, i, (double)pooled[i], arg[i],
                             (double)pwant[i], awant[i]);
            assert_true(pooled[np] == -1234.5f && arg[np] == -1);
            if (mode == 2)
                assert_memory_equal(out, want, nout * sizeof(float));
        }
        free(in);
        free(w);
        free(b);
        free(out);
        free(want);
        free(pooled);
        free(pwant);
        free(arg);
        free(awant);
    }
#if defined(__AVX512F__) && !defined(TRAINER_NO_VECTORS)
    assert_true(fused >= 4); /* the default conv1 and conv2, and more, take the fused kernels */
#endif
}

/* conv_pool_weight_grads, which sums the pool windows' winners only, gives
 * the dw and db of maxpool2x2_relu_backward then conv_backward_ref, up to
 * rounding, on a ReLU conv's real output and its pool (about half the
 * windows dead, so both kinds are seen). */
static void conv_pool_weight_grads_match_ref(void **state)
{
    (void)state;
    int fast = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        const int OH = p->H - p->K + 1, OW = p->W - p->K + 1;
        if (OH < 2 || OW < 2)
            continue;
        size_t nin = (size_t)p->C * p->H * p->W, nw = (size_t)p->OC * p->C * p->K * p->K, nb = (size_t)p->OC;
        size_t nout = (size_t)p->OC * OH * OW, np = (size_t)p->OC * (OH / 2) * (OW / 2);
        float *in = alloc_floats(nin), *w = alloc_floats(nw), *b = alloc_floats(nb), *out = alloc_floats(nout);
        float *dout = alloc_floats(nout), *pooled = alloc_floats(np), *dpool = alloc_floats(np);
        float *dw_f = alloc_floats(nw), *dw_r = alloc_floats(nw), *db_f = alloc_floats(nb), *db_r = alloc_floats(nb);
        int32_t *arg = calloc(np, sizeof *arg);
        assert_non_null(arg);
        fill_uniform(in, nin, -1, 1, 2500 + s);
        fill_uniform(w, nw, -0.5f, 0.5f, 2600 + s);
        fill_uniform(b, nb, -1, 1, 2700 + s);
        fill_uniform(dpool, np, -1, 1, 2800 + s);
        /* both add into the same non-zero dw and db */
        fill_uniform(dw_f, nw, -2, 2, 2900 + s);
        memcpy(dw_r, dw_f, nw * sizeof(float));
        fill_uniform(db_f, nb, -2, 2, 3000 + s);
        memcpy(db_r, db_f, nb * sizeof(float));
        conv_relu_forward(out, in, w, b, p->C, p->H, p->W, p->OC, p->K);
        maxpool_forward(pooled, arg, out, p->OC, OH, OW, 2, 2);
        maxpool2x2_relu_backward(dout, dpool, arg, pooled, p->OC, OH, OW);
        conv_backward_ref(NULL, dw_r, db_r, dout, in, w, p->C, p->H, p->W, p->OC, p->K);
        conv_pool_weight_grads(dw_f, db_f, dpool, arg, pooled, in, p->C, p->H, p->W, p->OC, p->K);
        char what[2][96];
        snprintf(what[0], sizeof what[0], "conv_pool_weight_grads dw C=%d H=%d W=%d OC=%d K=%d", p->C, p->H, p->W,
                 p->OC, p->K);
        snprintf(what[1], sizeof what[1], "conv_pool_weight_grads db C=%d H=%d W=%d OC=%d K=%d", p->C, p->H, p->W,
                 p->OC, p->K);
        assert_floats_close(what[0], dw_f, dw_r, nw, 1e-5);
        assert_floats_close(what[1], db_f, db_r, nb, 1e-5);
        fast += conv_pool_weight_grads_fast(p->C, p->H, p->W, p->OC, p->K);
        free(in);
        free(w);
        free(b);
        free(out);
        free(dout);
        free(pooled);
        free(dpool);
        free(dw_f);
        free(dw_r);
        free(db_f);
        free(db_r);
        free(arg);
    }
#if defined(__AVX512F__) && !defined(TRAINER_NO_VECTORS)
    assert_true(fast >= 30); /* all but the shapes with kernels over 7 or pooled rows over 16 */
#endif
}

/* No shape the network is meant for (inputs 28 and 32, kernels 3 to 7, any
 * filter count) takes the plain loops, and the shape list above reaches
 * every path this build has. */
static void conv_paths_cover_shapes(void **state)
{
    (void)state;
    char path[96];
#if defined(__GNUC__) && !defined(TRAINER_NO_VECTORS) /* the build without vectors has only loops */
    for (int in = 28; in <= 32; in += 4)
        for (int k1 = 3; k1 <= 7; k1++)
            for (int oc1 = 1; oc1 <= 40; oc1 += 3)
                for (int k2 = 3; k2 <= 7; k2++) {
                    int h2 = (in - k1 + 1) / 2; /* after a 2x2 pool */
                    if (k2 > h2)
                        continue;
                    conv_kernel_path(path, sizeof path, 0, 1, 1, in, in, oc1, k1);
                    if (strstr(path, "loops"))
                        fail_msg("conv 1x%dx%d, %d filters %dx%d: %s", in, in, oc1, k1, k1, path);
                    conv_kernel_path(path, sizeof path, 1, 1, oc1, h2, h2, 2 * oc1 + 1, k2);
                    if (strstr(path, "loops"))
                        fail_msg("conv %dx%dx%d, %d filters %dx%d: %s", oc1, h2, h2, 2 * oc1 + 1, k2, k2, path);
                }
#endif
    const char *names[] = {
#if defined(__GNUC__) && !defined(TRAINER_NO_VECTORS)
        "vec256",
#if defined(__AVX512F__)
        "vec512", "vec512-rowpairs", "vec512-flat", "vec512-oc", "vec512-rows",
#else
        "tiled-w24", "tiled-w8",
#endif
#endif
        "loops",
    };
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        int seen = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const shape *p = &shapes[s];
            for (int has_din = 0; has_din < 2; has_din++) { /* conv_backward_matches_ref runs both */
                conv_kernel_path(path, sizeof path, has_din, 1, p->C, p->H, p->W, p->OC, p->K);
                seen += strstr(path, names[n]) != NULL;
            }
        }
        if (!seen)
            fail_msg("no shape in the list takes the %s kernels", names[n]);
    }
}

/* dense_forward against a double-precision dot product, for input sizes
 * around the fast path's block of 32. */
static void dense_forward_matches_ref(void **state)
{
    (void)state;
    const int ins[] = { 1, 7, 13, 31, 32, 33, 64, 100, 256, 257 };
    for (size_t k = 0; k < sizeof ins / sizeof ins[0]; k++) {
        int IN = ins[k], OUT = 5;
        float *in = alloc_floats((size_t)IN), *w = alloc_floats((size_t)IN * OUT), *b = alloc_floats(OUT);
        float out[5], ref[5];
        fill_uniform(in, (size_t)IN, -1, 1, 1400 + k);
        fill_uniform(w, (size_t)IN * OUT, -1, 1, 1500 + k);
        fill_uniform(b, OUT, -1, 1, 1600 + k);
        dense_forward(out, in, w, b, IN, OUT);
        for (int o = 0; o < OUT; o++) {
            double sum = b[o];
            for (int i = 0; i < IN; i++)
                sum += (double)w[(size_t)o * IN + i] * in[i];
            ref[o] = (float)sum;
        }
        char what[48];
        snprintf(what, sizeof what, "dense_forward IN=%d", IN);
        assert_floats_close(what, out, ref, OUT, 1e-5);
        free(in);
        free(w);
        free(b);
    }
}

/* The first maximum of each window in row-major order, written here. */
static void maxpool_oracle(float *out, int32_t *argmax, const float *in, int C, int H, int W, int K, int S)
{
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int best = -1;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int i = (c * H + y * S + ky) * W + x * S + kx;
                        if (best < 0 || in[i] > in[best])
                            best = i;
                    }
                out[(c * OH + y) * OW + x] = in[best];
                argmax[(c * OH + y) * OW + x] = best;
            }
}

/* maxpool_forward (vectorised for 2x2 windows of stride 2, any sides)
 * against the oracle, on inputs with many ties (four levels only) and on
 * inputs without. */
static void maxpool_forward_matches_ref(void **state)
{
    (void)state;
    const int shapes_p[][5] = {
        { 8, 24, 24, 2, 2 }, { 16, 8, 8, 2, 2 }, /* the default network's pools */
        { 3, 6, 16, 2, 2 },  { 1, 2, 8, 2, 2 },   { 2, 7, 9, 2, 2 }, { 2, 9, 8, 3, 3 },
        { 1, 7, 11, 3, 2 },  { 2, 8, 8, 2, 1 },
        { 8, 26, 26, 2, 2 }, { 4, 28, 28, 2, 2 }, { 3, 11, 11, 2, 2 }, /* rows not a multiple of 8, odd sides */
        { 2, 22, 22, 2, 2 }, { 2, 10, 10, 2, 2 }, { 1, 5, 13, 2, 2 },
        { 2, 4, 32, 2, 2 },  { 3, 6, 2, 2, 2 },   { 5, 2, 12, 2, 2 }, /* 16 outputs a row, 1, rows of one window */
    };
    for (size_t k = 0; k < sizeof shapes_p / sizeof shapes_p[0]; k++) {
        const int *p = shapes_p[k];
        int C = p[0], H = p[1], W = p[2], K = p[3], S = p[4];
        size_t nin = (size_t)C * H * W, nout = (size_t)C * ((H - K) / S + 1) * ((W - K) / S + 1);
        float *in = alloc_floats(nin), *out = alloc_floats(nout), *want = alloc_floats(nout);
        int32_t *arg = calloc(nout, sizeof *arg), *warg = calloc(nout, sizeof *warg);
        assert_non_null(arg);
        assert_non_null(warg);
        for (int ties = 0; ties < 2; ties++) {
            fill_uniform(in, nin, -1, 1, 1700 + k * 2 + (size_t)ties);
            if (ties)
                for (size_t i = 0; i < nin; i++)
                    in[i] = floorf(in[i] * 2.0f); /* -2, -1, 0 or 1 */
            maxpool_forward(out, arg, in, C, H, W, K, S);
            maxpool_oracle(want, warg, in, C, H, W, K, S);
            for (size_t o = 0; o < nout; o++)
                if (arg[o] != warg[o] || out[o] != want[o])
                    fail_msg("maxpool C=%d H=%d W=%d K=%d S=%d%s: output %zu took input %d (%g), want %d (%g)",
                             C, H, W, K, S, ties ? " with ties" : "", o, arg[o], (double)out[o], warg[o],
                             (double)want[o]);
        }
        free(in);
        free(out);
        free(want);
        free(arg);
        free(warg);
    }
}

/* maxpool_relu_backward equals maxpool_backward then relu_backward on the
 * pool's input, bit for bit: on ReLU outputs (exact zeros, tied within a
 * window) and with overlapping windows, where one input collects twice. */
static void maxpool_relu_backward_matches_unfused(void **state)
{
    (void)state;
    const int shapes_p[][5] = {
        { 8, 24, 24, 2, 2 }, { 16, 8, 8, 2, 2 }, { 3, 7, 7, 3, 2 }, { 2, 9, 8, 3, 1 }, { 1, 5, 6, 2, 2 },
        { 8, 26, 26, 2, 2 }, { 3, 11, 11, 2, 2 }, { 2, 7, 19, 2, 2 }, { 4, 28, 28, 2, 2 },
        { 2, 4, 32, 2, 2 },  { 3, 6, 2, 2, 2 },   { 2, 6, 7, 2, 2 },
    };
    size_t masked = 0, passed = 0;
    for (size_t k = 0; k < sizeof shapes_p / sizeof shapes_p[0]; k++) {
        const int *p = shapes_p[k];
        int C = p[0], H = p[1], W = p[2], K = p[3], S = p[4];
        size_t nin = (size_t)C * H * W, nout = (size_t)C * ((H - K) / S + 1) * ((W - K) / S + 1);
        float *in = alloc_floats(nin), *out = alloc_floats(nout), *dout = alloc_floats(nout);
        float *fused = alloc_floats(nin), *plain = alloc_floats(nin);
        int32_t *arg = calloc(nout, sizeof *arg);
        assert_non_null(arg);
        fill_uniform(in, nin, -1, 1, 2000 + k);
        relu_forward(in, (int)nin); /* about half exact zeros */
        fill_away_from_zero(dout, nout, 0.1f, 1, 2100 + k);
        maxpool_forward(out, arg, in, C, H, W, K, S);
        for (size_t i = 0; i < nin; i++)
            fused[i] = plain[i] = 55.0f;
        maxpool_relu_backward(fused, dout, arg, in, (int)nin, (int)nout);
        maxpool_backward(plain, dout, arg, (int)nin, (int)nout);
        relu_backward(plain, in, (int)nin);
        assert_memory_equal(fused, plain, nin * sizeof(float));
        if (K == 2 && S == 2) { /* the one-pass version for 2x2 windows */
            for (size_t i = 0; i < nin; i++)
                fused[i] = 55.0f;
            maxpool2x2_relu_backward(fused, dout, arg, out, C, H, W);
            assert_memory_equal(fused, plain, nin * sizeof(float));
        }
        for (size_t o = 0; o < nout; o++) {
            masked += in[arg[o]] == 0.0f;
            passed += in[arg[o]] > 0.0f;
        }
        free(in);
        free(out);
        free(dout);
        free(fused);
        free(plain);
        free(arg);
    }
    assert_true(masked > 10 && passed > 10); /* both kinds of window were seen */
}

/* A window whose maximum appears more than once sends the whole gradient to
 * exactly one input: the first maximum in row-major order. */
static void maxpool_ties_first_wins(void **state)
{
    (void)state;
    /* One channel, 4x6, windows 2x2 stride 2 -> 2x3 outputs (the loop
     * kernel; the vector one is held to the same rule above). */
    const float in[24] = {
        0, 0, 1, 3, 5, 2, /* window (0,0): all zero; (0,1): 3 at (0,3) and (1,2) */
        0, 0, 3, 2, 5, 5, /* window (0,2): 5 three times */
        7, 1, 4, 4, 9, 0, /* window (1,0): 7 at (2,0) and (3,1) */
        2, 7, 4, 4, 0, 9, /* window (1,1): 4 four times; (1,2): 9 twice on a diagonal */
    };
    const int32_t want[6] = { 0, 3, 4, 12, 14, 16 };
    float out[6], dout[6] = { 1, 2, 3, 4, 5, 6 }, din[24];
    int32_t argmax[6];
    maxpool_forward(out, argmax, in, 1, 4, 6, 2, 2);
    const float want_out[6] = { 0, 3, 5, 7, 4, 9 };
    for (int o = 0; o < 6; o++) {
        assert_true(out[o] == want_out[o]);
        assert_int_equal(argmax[o], want[o]);
    }
    for (int i = 0; i < 24; i++)
        din[i] = 77.0f;
    maxpool_backward(din, dout, argmax, 24, 6);
    double total = 0.0;
    int nonzero = 0;
    for (int i = 0; i < 24; i++) {
        total += din[i];
        nonzero += din[i] != 0.0f;
    }
    assert_int_equal(nonzero, 6);
    assert_true(total == 21.0);
    for (int o = 0; o < 6; o++)
        assert_true(din[want[o]] == dout[o]);
}

/* A constant input (MNIST's background) and overlapping windows: each window
 * picks one input, and the gradient is conserved. */
static void maxpool_ties_conserve_gradient(void **state)
{
    (void)state;
    enum { C = 2, H = 7, W = 9, K = 3, S = 2, OH = (H - K) / S + 1, OW = (W - K) / S + 1 };
    float in[C * H * W], out[C * OH * OW], dout[C * OH * OW], din[C * H * W];
    int32_t argmax[C * OH * OW];
    for (int i = 0; i < C * H * W; i++)
        in[i] = 0.5f;
    fill_uniform(dout, C * OH * OW, 0.1f, 1, 900);
    maxpool_forward(out, argmax, in, C, H, W, K, S);
    double want = 0.0;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int o = (c * OH + y) * OW + x;
                assert_true(out[o] == 0.5f);
                assert_int_equal(argmax[o], (c * H + y * S) * W + x * S); /* top-left */
                want += dout[o];
            }
    maxpool_backward(din, dout, argmax, C * H * W, C * OH * OW);
    double total = 0.0;
    for (int i = 0; i < C * H * W; i++)
        total += din[i];
    assert_true(fabs(total - want) < 1e-5);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(conv_forward_matches_ref),
    cmocka_unit_test(conv_backward_matches_ref),
    cmocka_unit_test(conv_relu_forward_matches_ref),
    cmocka_unit_test(conv_paths_cover_shapes),
    cmocka_unit_test(dense_forward_matches_ref),
    cmocka_unit_test(conv_relu_pool_forward_matches_unfused),
    cmocka_unit_test(conv_relu_zero_and_nan_give_plus_zero),
    cmocka_unit_test(conv_pool_weight_grads_match_ref),
    cmocka_unit_test(maxpool_forward_matches_ref),
    cmocka_unit_test(maxpool_relu_backward_matches_unfused),
    cmocka_unit_test(maxpool_ties_first_wins),
    cmocka_unit_test(maxpool_ties_conserve_gradient),
};
TEST_GROUP(kernel_group, tests);
