/* test_grad.c - every backward pass against central finite differences.
 *
 * Each layer is checked through a scalar L = sum_j g_j * out_j with random
 * weights g (so every output's gradient is non-trivial), evaluated in double
 * from the float forward pass. The step is divided by the difference of the
 * two float values actually taken, not by 2*eps. Linear layers are exact under
 * central differences whatever the step, so their steps are large and the
 * tolerance tight; maxpool and relu are piecewise linear and their inputs are
 * kept away from the kinks; the whole network is checked with its ReLU masks
 * and pooling choices compared before and after each step, skipping (and
 * counting) the rare parameter whose step crosses a kink. */
#include "tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "data.h"
#include "layers.h"
#include "network.h"

typedef double (*loss_fn)(void *ctx);

/* Linear in every input, so any step is exact but for float rounding; a
 * large one keeps that rounding small against the change it measures. */
#define LINEAR_STEP 0.25

/* Central difference of F with respect to *X. */
static double central_diff(float *x, double eps, loss_fn f, void *ctx)
{
    float orig = *x;
    float hi = (float)(orig + eps), lo = (float)(orig - eps);
    *x = hi;
    double fp = f(ctx);
    *x = lo;
    double fm = f(ctx);
    *x = orig;
    return (fp - fm) / ((double)hi - (double)lo);
}

static double dot(const float *g, const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * x[i];
    return s;
}

/* Indices to check: all of 0..n-1 when n <= max, else max random ones
 * (always including the first and the last). Returns how many. */
static size_t pick_indices(size_t *idx, size_t n, size_t max, uint64_t seed)
{
    if (n <= max) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        return n;
    }
    rng_t r = rng_seed(seed, 77, n);
    idx[0] = 0;
    idx[1] = n - 1;
    for (size_t i = 2; i < max; i++)
        idx[i] = rng_below(&r, (uint32_t)n);
    return max;
}

/* Checks ANALYTIC (the full gradient array of X, n entries) against central
 * differences of F in X at up to MAX indices. */
static void check_array(const char *what, float *x, const float *analytic, size_t n, size_t max,
                        double eps, loss_fn f, void *ctx, double tol, double floor)
{
    size_t *idx = calloc(n < max ? n : max, sizeof *idx);
    assert_non_null(idx);
    size_t m = pick_indices(idx, n, max, n * 31 + max);
    float *a = alloc_floats(m);
    double *num = alloc_doubles(m);
    for (size_t k = 0; k < m; k++) {
        a[k] = analytic[idx[k]];
        num[k] = central_diff(&x[idx[k]], eps, f, ctx);
    }
    assert_grad_close(what, a, num, m, tol, floor);
    free(idx);
    free(a);
    free(num);
}

/* ---- conv ---- */

typedef struct {
    int C, H, W, OC, K;
    float *in, *w, *b, *g, *out;
} conv_case;

static double conv_loss(void *p)
{
    conv_case *c = p;
    conv_forward(c->out, c->in, c->w, c->b, c->C, c->H, c->W, c->OC, c->K);
    return dot(c->g, c->out, (size_t)c->OC * (c->H - c->K + 1) * (c->W - c->K + 1));
}

static void check_conv(int C, int H, int W, int OC, int K, size_t max, uint64_t seed)
{
    conv_case c = { C, H, W, OC, K, NULL, NULL, NULL, NULL, NULL };
    size_t nin = (size_t)C * H * W, nw = (size_t)OC * C * K * K, nout = (size_t)OC * (H - K + 1) * (W - K + 1);
    c.in = alloc_floats(nin);
    c.w = alloc_floats(nw);
    c.b = alloc_floats((size_t)OC);
    c.g = alloc_floats(nout);
    c.out = alloc_floats(nout);
    fill_uniform(c.in, nin, -1, 1, seed);
    fill_uniform(c.w, nw, -0.5f, 0.5f, seed + 1);
    fill_uniform(c.b, (size_t)OC, -0.5f, 0.5f, seed + 2);
    fill_uniform(c.g, nout, -1, 1, seed + 3);
    float *din = alloc_floats(nin), *dw = alloc_floats(nw), *db = alloc_floats((size_t)OC);
    /* dw and db are added to; din is overwritten. */
    for (size_t i = 0; i < nw; i++)
        dw[i] = 0.25f;
    for (int i = 0; i < OC; i++)
        db[i] = -0.5f;
    for (size_t i = 0; i < nin; i++)
        din[i] = 1e3f;
    conv_backward(din, dw, db, c.g, c.in, c.w, C, H, W, OC, K);
    for (size_t i = 0; i < nw; i++)
        dw[i] -= 0.25f;
    for (int i = 0; i < OC; i++)
        db[i] += 0.5f;
    check_array("conv dw", c.w, dw, nw, max, LINEAR_STEP, conv_loss, &c, 1e-3, 1e-2);
    check_array("conv db", c.b, db, (size_t)OC, max, LINEAR_STEP, conv_loss, &c, 1e-3, 1e-2);
    check_array("conv din", c.in, din, nin, max, LINEAR_STEP, conv_loss, &c, 1e-3, 1e-2);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.g);
    free(c.out);
    free(din);
    free(dw);
    free(db);
}

static void conv_grad_small(void **state)
{
    (void)state;
    check_conv(2, 6, 7, 3, 3, 100000, 11);
    check_conv(1, 4, 4, 2, 4, 100000, 12); /* kernel as large as the input: one output */
    check_conv(3, 5, 8, 2, 1, 100000, 13); /* 1x1 kernel */
}

static void conv_grad_real_shapes(void **state)
{
    (void)state;
    check_conv(1, 28, 28, 8, 5, 150, 21);  /* conv1 of the default network */
    check_conv(8, 12, 12, 16, 5, 150, 22); /* conv2 */
}

/* ---- dense ---- */

typedef struct {
    int IN, OUT;
    float *in, *w, *b, *g, *out;
} dense_case;

static double dense_loss(void *p)
{
    dense_case *c = p;
    dense_forward(c->out, c->in, c->w, c->b, c->IN, c->OUT);
    return dot(c->g, c->out, (size_t)c->OUT);
}

static void check_dense(int IN, int OUT, uint64_t seed)
{
    dense_case c = { IN, OUT, NULL, NULL, NULL, NULL, NULL };
    size_t nw = (size_t)IN * OUT;
    c.in = alloc_floats((size_t)IN);
    c.w = alloc_floats(nw);
    c.b = alloc_floats((size_t)OUT);
    c.g = alloc_floats((size_t)OUT);
    c.out = alloc_floats((size_t)OUT);
    fill_uniform(c.in, (size_t)IN, -1, 1, seed);
    fill_uniform(c.w, nw, -0.5f, 0.5f, seed + 1);
    fill_uniform(c.b, (size_t)OUT, -0.5f, 0.5f, seed + 2);
    fill_uniform(c.g, (size_t)OUT, -1, 1, seed + 3);
    float *din = alloc_floats((size_t)IN), *dw = alloc_floats(nw), *db = alloc_floats((size_t)OUT);
    for (size_t i = 0; i < nw; i++)
        dw[i] = 0.75f;
    for (int i = 0; i < OUT; i++)
        db[i] = 2.0f;
    for (int i = 0; i < IN; i++)
        din[i] = -7.0f;
    dense_backward(din, dw, db, c.g, c.in, c.w, IN, OUT);
    for (size_t i = 0; i < nw; i++)
        dw[i] -= 0.75f;
    for (int i = 0; i < OUT; i++)
        db[i] -= 2.0f;
    check_array("dense dw", c.w, dw, nw, 100000, LINEAR_STEP, dense_loss, &c, 1e-3, 1e-2);
    check_array("dense db", c.b, db, (size_t)OUT, 100000, LINEAR_STEP, dense_loss, &c, 1e-3, 1e-2);
    check_array("dense din", c.in, din, (size_t)IN, 100000, LINEAR_STEP, dense_loss, &c, 1e-3, 1e-2);
    /* din may be NULL (first layer): the parameter gradients are the same. */
    float *dw2 = alloc_floats(nw), *db2 = alloc_floats((size_t)OUT);
    dense_backward(NULL, dw2, db2, c.g, c.in, c.w, IN, OUT);
    assert_floats_close("dense dw (din NULL)", dw2, dw, nw, 1e-5);
    assert_floats_close("dense db (din NULL)", db2, db, (size_t)OUT, 1e-5);
    free(dw2);
    free(db2);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.g);
    free(c.out);
    free(din);
    free(dw);
    free(db);
}

static void dense_grad(void **state)
{
    (void)state;
    check_dense(13, 5, 31);
    check_dense(256, 10, 32); /* the default network's fc layer */
}

/* ---- maxpool ---- */

typedef struct {
    int C, H, W, K, S, OH, OW;
    float *in, *g, *out;
    int32_t *argmax;
} pool_case;

static double pool_loss(void *p)
{
    pool_case *c = p;
    maxpool_forward(c->out, c->argmax, c->in, c->C, c->H, c->W, c->K, c->S);
    return dot(c->g, c->out, (size_t)c->C * c->OH * c->OW);
}

static void check_pool(int C, int H, int W, int K, int S, uint64_t seed)
{
    pool_case c = { C, H, W, K, S, (H - K) / S + 1, (W - K) / S + 1, NULL, NULL, NULL, NULL };
    size_t nin = (size_t)C * H * W, nout = (size_t)C * c.OH * c.OW;
    c.in = alloc_floats(nin);
    c.g = alloc_floats(nout);
    c.out = alloc_floats(nout);
    c.argmax = calloc(nout, sizeof *c.argmax);
    assert_non_null(c.argmax);
    /* Distinct values 0.01 apart in random order: no ties, and a step of
     * 0.002 never changes which input wins. */
    for (size_t i = 0; i < nin; i++)
        c.in[i] = ((float)i - (float)nin / 2) * 0.01f;
    rng_t r = rng_seed(seed, 5, 0);
    for (size_t i = nin - 1; i > 0; i--) {
        size_t j = rng_below(&r, (uint32_t)(i + 1));
        float t = c.in[i];
        c.in[i] = c.in[j];
        c.in[j] = t;
    }
    fill_away_from_zero(c.g, nout, 0.1f, 1.0f, seed + 1);
    float *din = alloc_floats(nin);
    for (size_t i = 0; i < nin; i++)
        din[i] = 42.0f;
    pool_loss(&c);
    maxpool_backward(din, c.g, c.argmax, (int)nin, (int)nout);
    check_array("maxpool din", c.in, din, nin, 100000, 0.002, pool_loss, &c, 1e-4, 1e-3);
    free(c.in);
    free(c.g);
    free(c.out);
    free(c.argmax);
    free(din);
}

static void maxpool_grad(void **state)
{
    (void)state;
    check_pool(2, 6, 6, 2, 2, 41);
    check_pool(3, 7, 7, 3, 2, 42); /* overlapping windows; one input can win twice */
    check_pool(1, 5, 9, 2, 1, 43); /* stride 1 */
    check_pool(2, 7, 5, 2, 2, 44); /* odd sides: the last row and column are dropped */
    check_pool(8, 24, 24, 2, 2, 45); /* pool1 of the default network */
    check_pool(16, 8, 8, 2, 2, 46);  /* pool2 */
}

/* ---- relu ---- */

typedef struct {
    int n;
    float *x, *y, *g;
} relu_case;

static double relu_loss(void *p)
{
    relu_case *c = p;
    memcpy(c->y, c->x, (size_t)c->n * sizeof(float));
    relu_forward(c->y, c->n);
    return dot(c->g, c->y, (size_t)c->n);
}

static void relu_grad(void **state)
{
    (void)state;
    relu_case c = { 64, alloc_floats(64), alloc_floats(64), alloc_floats(64) };
    fill_away_from_zero(c.x, 64, 0.05f, 1.0f, 51); /* steps of 0.01 never cross zero */
    fill_away_from_zero(c.g, 64, 0.1f, 1.0f, 52);
    relu_loss(&c);
    int negatives = 0, positives = 0;
    for (int i = 0; i < 64; i++) {
        negatives += c.x[i] < 0;
        positives += c.x[i] > 0;
        assert_true(c.y[i] == (c.x[i] > 0 ? c.x[i] : 0.0f));
    }
    assert_true(negatives > 0 && positives > 0);
    float *d = alloc_floats(64);
    memcpy(d, c.g, 64 * sizeof(float));
    relu_backward(d, c.y, 64); /* in place, masked by the forward output */
    check_array("relu dx", c.x, d, 64, 100000, 0.01, relu_loss, &c, 1e-4, 1e-3);
    free(c.x);
    free(c.y);
    free(c.g);
    free(d);
}

/* ---- softmax cross-entropy ---- */

typedef struct {
    int n, label;
    float *logits, *probs, *dl;
} xent_case;

static double xent_loss(void *p)
{
    xent_case *c = p;
    float scratch[64];
    return softmax_xent(c->probs, scratch, c->logits, c->label, c->n);
}

static void softmax_xent_grad(void **state)
{
    (void)state;
    const int labels[] = { 0, 4, 9 };
    for (int t = 0; t < 3; t++) {
        xent_case c = { 10, labels[t], alloc_floats(10), alloc_floats(10), alloc_floats(10) };
        fill_uniform(c.logits, 10, -3, 3, 60 + (uint64_t)t);
        softmax_xent(c.probs, c.dl, c.logits, c.label, c.n);
        /* The loss is a float (noise ~3e-7) and smooth (third derivative
         * below 0.1): a step of 0.02 keeps both errors near 1e-5. */
        check_array("softmax_xent dlogits", c.logits, c.dl, 10, 100, 2e-2, xent_loss, &c, 5e-3, 2e-2);
        free(c.logits);
        free(c.probs);
        free(c.dl);
    }
}

/* The loss and probabilities against a double-precision computation, and
 * stability for logits whose exp() would overflow a float. */
static void softmax_xent_values(void **state)
{
    (void)state;
    float logits[10], probs[10], dl[10], probs2[10];
    fill_uniform(logits, 10, -4, 4, 70);
    double m = logits[0], sum = 0.0;
    for (int i = 1; i < 10; i++)
        m = fmax(m, logits[i]);
    for (int i = 0; i < 10; i++)
        sum += exp(logits[i] - m);
    float loss = softmax_xent(probs, dl, logits, 7, 10);
    double want = -(logits[7] - m - log(sum));
    assert_true(fabs(loss - want) <= 1e-5 * fabs(want) + 1e-6);
    softmax_forward(probs2, logits, 10);
    double psum = 0.0;
    for (int i = 0; i < 10; i++) {
        double p = exp(logits[i] - m) / sum;
        assert_true(fabs(probs[i] - p) <= 1e-6);
        assert_true(probs2[i] == probs[i]);
        assert_true(fabs(dl[i] - (p - (i == 7))) <= 1e-6);
        psum += probs[i];
    }
    assert_true(fabs(psum - 1.0) < 1e-5);

    const float big[5] = { 1000.0f, -1000.0f, 0.0f, 88.0f, 89.0f };
    loss = softmax_xent(probs, dl, big, 1, 5);
    assert_true(isfinite(loss));
    assert_true(fabs(loss - 2000.0f) < 1e-2f); /* -log softmax of the smallest logit */
    loss = softmax_xent(probs, dl, big, 0, 5);
    assert_true(isfinite(loss) && loss >= 0.0f && loss < 1e-6f);
    psum = 0.0;
    for (int i = 0; i < 5; i++) {
        assert_true(isfinite(probs[i]) && isfinite(dl[i]));
        psum += probs[i];
    }
    assert_true(fabs(psum - 1.0) < 1e-6);
}

/* ---- the whole network ----
 *
 * The numerical gradient comes from a double-precision forward pass written
 * here, independently of the kernels, over the network's own layer table:
 * a step of 1e-6 then measures the derivative to about 1e-9, where the float
 * network could not resolve it. A step that changes a ReLU mask or a pooling
 * choice measures a kink, not the derivative; those few are skipped. */

typedef struct {
    network net;
    net_workspace ws;
    int label;
    double *params;                      /* a double copy of net.params */
    double *acts[CONFIG_MAX_LAYERS + 1]; /* acts[0]: the input */
    int32_t *arg[CONFIG_MAX_LAYERS];
    int from;                            /* first layer the current step changes */
    uint8_t *pattern, *base_pattern;
    size_t pattern_len;
    int kinked;
} net_case;

static void dlayer_forward(const net_layer *l, const double *p, const double *in, double *out, int32_t *arg)
{
    const int C = l->in_c, H = l->in_h, W = l->in_w, OC = l->out_c, OH = l->out_h, OW = l->out_w;
    const int K = l->k;
    switch (l->kind) {
    case LAYER_CONV:
        for (int o = 0; o < OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double s = p[l->b_off + (size_t)o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++)
                                s += p[l->w_off + (((size_t)o * C + c) * K + ky) * K + kx] *
                                     in[((size_t)c * H + y + ky) * W + x + kx];
                    out[((size_t)o * OH + y) * OW + x] = s;
                }
        break;
    case LAYER_MAXPOOL:
        for (int c = 0; c < C; c++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    int best = -1;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int i = (c * H + y * l->s + ky) * W + x * l->s + kx;
                            if (best < 0 || in[i] > in[best])
                                best = i;
                        }
                    out[(c * OH + y) * OW + x] = in[best];
                    arg[(c * OH + y) * OW + x] = best;
                }
        break;
    case LAYER_DENSE:
        for (int o = 0; o < OC; o++) {
            double s = p[l->b_off + (size_t)o];
            for (size_t i = 0; i < l->in_size; i++)
                s += p[l->w_off + (size_t)o * l->in_size + i] * in[i];
            out[o] = s;
        }
        break;
    }
    if (l->act == ACT_RELU)
        for (size_t i = 0; i < l->out_size; i++)
            out[i] = out[i] > 0.0 ? out[i] : 0.0;
}

/* The ReLU masks and pooling choices of the last double forward pass. */
static size_t capture_pattern(const net_case *c, uint8_t *out)
{
    size_t n = 0;
    for (int i = 0; i < c->net.nlayers; i++) {
        const net_layer *l = &c->net.layers[i];
        if (l->act == ACT_RELU)
            for (size_t j = 0; j < l->out_size; j++) {
                if (out)
                    out[n] = c->acts[i + 1][j] > 0.0;
                n++;
            }
        if (l->kind == LAYER_MAXPOOL) {
            if (out)
                memcpy(out + n, c->arg[i], l->out_size * sizeof(int32_t));
            n += l->out_size * sizeof(int32_t);
        }
    }
    return n;
}

/* Cross-entropy of LOGITS for LABEL, in double. */
static double xent_double(const double *logits, int n, int label)
{
    double m = logits[0], s = 0.0;
    for (int i = 1; i < n; i++)
        m = fmax(m, logits[i]);
    for (int i = 0; i < n; i++)
        s += exp(logits[i] - m);
    return m + log(s) - logits[label];
}

/* The double network's loss, recomputing layers from c->from on. */
static double net_loss(net_case *c)
{
    for (int i = c->from; i < c->net.nlayers; i++)
        dlayer_forward(&c->net.layers[i], c->params, c->acts[i], c->acts[i + 1], c->arg[i]);
    capture_pattern(c, c->pattern);
    if (memcmp(c->pattern, c->base_pattern, c->pattern_len) != 0)
        c->kinked = 1;
    return xent_double(c->acts[c->net.nlayers], c->net.classes, c->label);
}

/* A network from the default config, or with LAYERS (INI text) over it. */
static void net_case_create(net_case *c, const char *layers, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    config cfg;
    config_defaults(&cfg);
    tr_error err = { 0 };
    if (layers)
        assert_ok(config_parse_string(&cfg, layers, "layers", &err), &err);
    assert_ok(net_create(&c->net, &cfg, &err), &err);
    assert_ok(net_workspace_create(&c->ws, &c->net, &err), &err);
    net_init_params(&c->net, cfg.init, seed);
    /* Biases start at zero; give them non-trivial values too. */
    for (int i = 0; i < c->net.nlayers; i++) {
        const net_layer *l = &c->net.layers[i];
        fill_uniform(c->net.params + l->b_off, l->nbias, -0.1f, 0.1f, seed + 100 + (uint64_t)i);
    }
    /* A random image, normalised as training does. */
    size_t npix = (size_t)c->net.input_size * c->net.input_size;
    uint8_t *pix = malloc(npix);
    assert_non_null(pix);
    rng_t r = rng_seed(seed, 9, 0);
    for (size_t i = 0; i < npix; i++)
        pix[i] = (uint8_t)rng_below(&r, 256);
    data_normalize(c->ws.acts[0], pix, npix, NORM_ZSCORE);
    free(pix);
    c->label = 3;
    c->params = alloc_doubles(c->net.nparams);
    for (size_t i = 0; i < c->net.nparams; i++)
        c->params[i] = c->net.params[i];
    c->acts[0] = alloc_doubles(npix);
    for (size_t i = 0; i < npix; i++)
        c->acts[0][i] = c->ws.acts[0][i];
    for (int i = 0; i < c->net.nlayers; i++) {
        c->acts[i + 1] = alloc_doubles(c->net.layers[i].out_size);
        c->arg[i] = calloc(c->net.layers[i].out_size, sizeof(int32_t));
        assert_non_null(c->arg[i]);
    }
    c->pattern_len = capture_pattern(c, NULL);
    c->pattern = malloc(c->pattern_len);
    c->base_pattern = malloc(c->pattern_len);
    assert_non_null(c->pattern);
    assert_non_null(c->base_pattern);
}

static void net_case_free(net_case *c)
{
    free(c->pattern);
    free(c->base_pattern);
    free(c->params);
    for (int i = 0; i <= c->net.nlayers; i++)
        free(c->acts[i]);
    for (int i = 0; i < c->net.nlayers; i++)
        free(c->arg[i]);
    net_workspace_free(&c->ws);
    net_free(&c->net);
}

static void check_network_grad(const char *layers, uint64_t seed, int nlayers, int ngroups)
{
    net_case c;
    net_case_create(&c, layers, seed);
    network *net = &c.net;
    assert_int_equal(net->nlayers, nlayers);
    float *grad = alloc_floats(net->nparams);
    int predicted = -1;
    float loss = net_train_sample(net, net->params, &c.ws, c.label, grad, &predicted);
    const float *logits = c.ws.acts[net->nlayers];
    assert_int_equal(predicted, net_argmax(logits, net->classes));

    /* The float forward pass agrees with the double one. */
    c.from = 0;
    double dloss = net_loss(&c);
    memcpy(c.base_pattern, c.pattern, c.pattern_len);
    for (int i = 0; i < net->classes; i++)
        assert_true(fabs(logits[i] - c.acts[net->nlayers][i]) < 1e-4 * (1.0 + fabs(logits[i])));
    assert_true(fabs(loss - dloss) < 1e-4 * (1.0 + dloss));

    /* Prediction runs the live shapes as training does: the same logits.
     * net_forward runs the whole shapes; in these stacks every layer's
     * kernels give the reference's bits, so its logits are the same bits
     * too (not so for every stack: network.h). */
    float *want = alloc_floats((size_t)net->classes);
    memcpy(want, logits, sizeof(float) * (size_t)net->classes);
    assert_memory_equal(net_predict(net, &c.ws), want, sizeof(float) * (size_t)net->classes);
    assert_memory_equal(net_forward(net, &c.ws), want, sizeof(float) * (size_t)net->classes);
    free(want);

    const double eps = 1e-6;
    int groups = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const net_layer *l = &net->layers[i];
        for (int part = 0; part < 2; part++) {
            size_t off = part ? l->b_off : l->w_off, n = part ? l->nbias : l->nweights;
            if (n == 0)
                continue;
            groups++;
            size_t max = 60, *idx = calloc(max, sizeof *idx);
            float *a = alloc_floats(max);
            double *num = alloc_doubles(max);
            assert_non_null(idx);
            size_t m = pick_indices(idx, n, max, (uint64_t)i * 2 + (uint64_t)part), kept = 0, skipped = 0;
            c.from = i;
            for (size_t k = 0; k < m; k++) {
                double *p = &c.params[off + idx[k]], orig = *p;
                c.kinked = 0;
                *p = orig + eps;
                double lp = net_loss(&c);
                *p = orig - eps;
                double lm = net_loss(&c);
                *p = orig;
                if (c.kinked) {
                    skipped++;
                    continue;
                }
                a[kept] = grad[off + idx[k]];
                num[kept++] = (lp - lm) / (2 * eps);
            }
            net_loss(&c); /* back to the unperturbed activations */
            char what[64];
            snprintf(what, sizeof what, "network %s.%s", l->name, part ? "bias" : "weights");
            if (getenv("UNIT_VERBOSE"))
                print_message("# %s: %zu of %zu steps skipped at a kink\n", what, skipped, m);
            if (skipped * 10 > m)
                fail_msg("%s: %zu of %zu steps crossed a kink; the check says too little", what,
                         skipped, m);
            assert_grad_close(what, a, num, kept, 1e-3, 1e-2);
            free(idx);
            free(a);
            free(num);
        }
    }
    assert_int_equal(groups, ngroups);
    free(grad);
    net_case_free(&c);
}

/* The default network: conv1, conv2 and fc, weights and bias each. */
static void network_grad(void **state)
{
    (void)state;
    check_network_grad(NULL, 5, 5, 6);
}

/* Another stack: ReLUs not followed by a pool, an overlapping pool, a
 * hidden dense layer with ReLU, a conv layer without activation. */
static void network_grad_other_stack(void **state)
{
    (void)state;
    check_network_grad("[model]\ninput_size = 12\n"
                       "[layer.ca]\ntype = conv\nfilters = 4\nsize = 3\n"
                       "[layer.cb]\ntype = conv\nfilters = 6\nsize = 3\nactivation = relu\n"
                       "[layer.cc]\ntype = conv\nfilters = 5\nsize = 2\nactivation = none\n"
                       "[layer.pool]\ntype = maxpool\nsize = 3\nstride = 2\n"
                       "[layer.hidden]\ntype = dense\noutputs = 16\nactivation = relu\n"
                       "[layer.out]\ntype = dense\noutputs = 10\n",
                       7, 6, 10);
}

/* Stacks whose pools drop a last row and column, so training and
 * prediction run cut shapes (network.live): 3x3 kernels (conv2's 11x11
 * output read as 10x10, down to 26x26 of the image) and 7x7 (5x5 read as
 * 4x4, 22x22 as 20x20). The double reference runs the whole shapes. */
#define CUT_STACK(K)                                                      \
    "[layer.conv1]\ntype = conv\nfilters = 8\nsize = " #K "\n"       \
    "[layer.pool1]\ntype = maxpool\nsize = 2\n"                        \
    "[layer.conv2]\ntype = conv\nfilters = 16\nsize = " #K "\n"      \
    "[layer.pool2]\ntype = maxpool\nsize = 2\n"                        \
    "[layer.fc]\ntype = dense\noutputs = 10\n"

static void network_grad_cut_stacks(void **state)
{
    (void)state;
    check_network_grad(CUT_STACK(3), 8, 5, 6);
    check_network_grad(CUT_STACK(7), 9, 5, 6);
}

/* The live shapes themselves: what each layer of those stacks computes,
 * and nothing cut where nothing is dropped (the default network). */
static void network_live_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *layers;
        int crops, in0, out[5];
    } cases[] = {
        { NULL, 0, 28, { 24, 12, 8, 4, 1 } },
        { CUT_STACK(3), 1, 26, { 24, 12, 10, 5, 1 } },
        { CUT_STACK(7), 1, 26, { 20, 10, 4, 2, 1 } },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        config cfg;
        config_defaults(&cfg);
        tr_error err = { 0 };
        if (cases[k].layers)
            assert_ok(config_parse_string(&cfg, cases[k].layers, "layers", &err), &err);
        network net;
        assert_ok(net_create(&net, &cfg, &err), &err);
        assert_int_equal(net.crops_input, cases[k].crops);
        assert_int_equal(net.live[0].in_h, cases[k].in0);
        assert_int_equal(net.live[0].in_w, cases[k].in0);
        for (int i = 0; i < net.nlayers; i++) {
            const net_layer *l = &net.live[i];
            assert_int_equal(l->out_h, cases[k].out[i]);
            assert_int_equal(l->out_w, cases[k].out[i]);
            assert_true(l->out_size == (size_t)l->out_c * l->out_h * l->out_w);
            if (i > 0)
                assert_true(l->in_size == net.live[i - 1].out_size);
        }
        net_free(&net);
    }
}

/* Odd stacks, each with a cut somewhere (checked): the gradients of the
 * live shapes are those of the whole shapes (the network with live set
 * to layers), up to the rounding of kernels that sum in other orders. */
static void network_live_matches_whole(void **state)
{
    (void)state;
    static const char *stacks[] = {
        /* pool stride 3 > size: rows between windows */
        "[layer.c1]\ntype = conv\nfilters = 8\nsize = 5\n[layer.p1]\ntype = maxpool\nsize = 2\nstride = 3\n"
        "[layer.c2]\ntype = conv\nfilters = 16\nsize = 3\n[layer.p2]\ntype = maxpool\nsize = 2\n"
        "[layer.fc]\ntype = dense\noutputs = 10\n",
        /* 3x3 windows of stride 2 and 3 */
        "[layer.c1]\ntype = conv\nfilters = 8\nsize = 5\n[layer.p1]\ntype = maxpool\nsize = 3\nstride = 2\n"
        "[layer.c2]\ntype = conv\nfilters = 16\nsize = 5\n[layer.p2]\ntype = maxpool\nsize = 3\nstride = 3\n"
        "[layer.fc]\ntype = dense\noutputs = 10\n",
        /* a pool first (the cropped image feeds it), an odd input */
        "[model]\ninput_size = 27\n[layer.p0]\ntype = maxpool\nsize = 2\n[layer.c1]\ntype = conv\nfilters = 8\n"
        "size = 4\n[layer.p1]\ntype = maxpool\nsize = 2\n[layer.fc]\ntype = dense\noutputs = 10\n",
        /* conv after conv, no activation, a hidden dense layer */
        "[layer.c1]\ntype = conv\nfilters = 6\nsize = 2\nactivation = none\n[layer.p1]\ntype = maxpool\nsize = 2\n"
        "[layer.c2]\ntype = conv\nfilters = 5\nsize = 6\n[layer.c3]\ntype = conv\nfilters = 7\nsize = 2\n"
        "[layer.p2]\ntype = maxpool\nsize = 2\n[layer.h]\ntype = dense\noutputs = 20\nactivation = relu\n"
        "[layer.fc]\ntype = dense\noutputs = 10\n",
        /* a 9x9 kernel (the loops), 4x4 windows of stride 3 */
        "[layer.c1]\ntype = conv\nfilters = 8\nsize = 9\n[layer.p1]\ntype = maxpool\nsize = 4\nstride = 3\n"
        "[layer.fc]\ntype = dense\noutputs = 10\n",
    };
    for (size_t k = 0; k < sizeof stacks / sizeof stacks[0]; k++) {
        net_case c;
        net_case_create(&c, stacks[k], 20 + k);
        network *net = &c.net, whole = c.net;
        int cut = net->crops_input;
        for (int i = 0; i < net->nlayers; i++)
            cut |= net->live[i].out_size != net->layers[i].out_size;
        if (!cut)
            fail_msg("stack %zu: nothing cut, the check says nothing", k);
        memcpy(whole.live, whole.layers, sizeof whole.live);
        whole.crops_input = 0;
        size_t n = net->nparams;
        float *gl = alloc_floats(n), *gw = alloc_floats(n);
        int pl, pw;
        float ll = net_train_sample(net, net->params, &c.ws, c.label, gl, &pl);
        float lw = net_train_sample(&whole, whole.params, &c.ws, c.label, gw, &pw);
        assert_int_equal(pl, pw);
        assert_true(fabsf(ll - lw) <= 1e-5f * (1.0f + fabsf(lw)));
        float big = max_abs(gw, n);
        assert_true(big > 0);
        for (size_t i = 0; i < n; i++)
            if (fabsf(gl[i] - gw[i]) > 1e-5f * big)
                fail_msg("stack %zu: gradient %zu is %g live, %g whole", k, i, (double)gl[i], (double)gw[i]);
        free(gl);
        free(gw);
        net_case_free(&c);
    }
}

/* net_train_sample adds into GRAD (a block of samples shares one buffer)
 * and leaves the parameters alone. */
static void network_grad_accumulates(void **state)
{
    (void)state;
    net_case c;
    net_case_create(&c, NULL, 6);
    size_t n = c.net.nparams;
    float *g1 = alloc_floats(n), *g2 = alloc_floats(n), *before = alloc_floats(n);
    memcpy(before, c.net.params, n * sizeof(float));
    int p1, p2;
    float l1 = net_train_sample(&c.net, c.net.params, &c.ws, 2, g1, &p1);
    memcpy(g2, g1, n * sizeof(float));
    float l2 = net_train_sample(&c.net, c.net.params, &c.ws, 2, g2, &p2);
    assert_true(l1 == l2);
    assert_int_equal(p1, p2);
    for (size_t i = 0; i < n; i++)
        assert_true(g2[i] == 2.0f * g1[i]);
    assert_memory_equal(before, c.net.params, n * sizeof(float));
    assert_true(max_abs(g1, n) > 0);
    free(g1);
    free(g2);
    free(before);
    net_case_free(&c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(conv_grad_small),
    cmocka_unit_test(conv_grad_real_shapes),
    cmocka_unit_test(dense_grad),
    cmocka_unit_test(maxpool_grad),
    cmocka_unit_test(relu_grad),
    cmocka_unit_test(softmax_xent_grad),
    cmocka_unit_test(softmax_xent_values),
    cmocka_unit_test(network_grad),
    cmocka_unit_test(network_grad_other_stack),
    cmocka_unit_test(network_grad_cut_stacks),
    cmocka_unit_test(network_live_shapes),
    cmocka_unit_test(network_live_matches_whole),
    cmocka_unit_test(network_grad_accumulates),
};
TEST_GROUP(grad_group, tests);
