#include "network.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

/* Upper bound on any one activation or parameter count (16M floats, far
 * beyond any MNIST-sized network): keeps the int arithmetic inside the
 * kernels safe and a hostile config or model file from allocating the
 * machine. */
#define NET_MAX_SIZE ((size_t)1 << 24)

/* Layer L's output shape and parameter counts from its config LC and its
 * input shape (already in L); FLAT says a dense layer came before. */
static int shape_layer(const config *cfg, const layer_config *lc, net_layer *l, int flat, tr_error *err)
{
    const int c = l->in_c, h = l->in_h, w = l->in_w;
    switch (lc->type) {
    case LAYER_CONV:
        if (flat)
            return config_layer_fail(cfg, lc, err, "a conv layer cannot follow a dense layer");
        if (lc->size > h || lc->size > w)
            return config_layer_fail(cfg, lc, err, "kernel %d is larger than its %dx%d input", lc->size, h, w);
        l->k = lc->size;
        l->out_c = lc->filters;
        l->out_h = h - lc->size + 1;
        l->out_w = w - lc->size + 1;
        l->nweights = (size_t)lc->filters * c * lc->size * lc->size;
        l->nbias = (size_t)lc->filters;
        return 0;
    case LAYER_MAXPOOL: {
        int s = lc->stride > 0 ? lc->stride : lc->size;
        if (flat)
            return config_layer_fail(cfg, lc, err, "a maxpool layer cannot follow a dense layer");
        if (lc->size > h || lc->size > w)
            return config_layer_fail(cfg, lc, err, "window %d is larger than its %dx%d input", lc->size, h, w);
        l->k = lc->size;
        l->s = s;
        l->out_c = c;
        l->out_h = (h - lc->size) / s + 1;
        l->out_w = (w - lc->size) / s + 1;
        return 0;
    }
    case LAYER_DENSE:
        l->out_c = lc->outputs;
        l->out_h = l->out_w = 1;
        l->nweights = (size_t)lc->outputs * c * h * w;
        l->nbias = (size_t)lc->outputs;
        return 0;
    }
    return 0;
}

/* Of the N layers L (net->layers or net->live): layer I is a ReLU conv
 * whose output goes into a 2x2 pool of stride 2, and its kernel pools in
 * its registers (conv_relu_pool_fused). */
static int pool_fused(const net_layer *L, int n, int i)
{
    if (i + 1 >= n)
        return 0;
    const net_layer *l = &L[i], *p = &L[i + 1];
    return l->kind == LAYER_CONV && l->act == ACT_RELU && p->kind == LAYER_MAXPOOL && p->k == 2 && p->s == 2 &&
           conv_relu_pool_fused(l->in_c, l->in_h, l->in_w, l->out_c, l->k);
}

/* Layer I is a 2x2 pool of stride 2 on a ReLU conv's output, and
 * conv_pool_weight_grads has a fast kernel for that conv. */
static int pool_sums_conv_grads(const net_layer *L, int i)
{
    if (i < 1)
        return 0;
    const net_layer *c = &L[i - 1], *p = &L[i];
    return c->kind == LAYER_CONV && c->act == ACT_RELU && p->kind == LAYER_MAXPOOL && p->k == 2 && p->s == 2 &&
           conv_pool_weight_grads_fast(c->in_c, c->in_h, c->in_w, c->out_c, c->k);
}

/* Layer I's dw and db are summed by the pool above it (training runs the
 * live layers). */
static int dw_by_pool(const network *net, int i)
{
    return i + 1 < net->nlayers && net->live[i + 1].conv_grads_in_pool;
}

static void set_kernel_flags(net_layer *L, int n)
{
    for (int i = 0; i < n; i++) {
        L[i].pools_in_kernel = pool_fused(L, n, i);
        L[i].conv_grads_in_pool = pool_sums_conv_grads(L, i);
    }
}

/* net->live from net->layers, from the top down: each layer's output cut
 * to the top-left part up to the last row and column the layer above
 * reads (a pool of stride > size still computes the rows between its
 * windows), its input to what that part reads. A dense layer reads all
 * of its input, and the last layer's output is whole. Conv and pool
 * windows read down and to the right of their output, so every cut is a
 * top-left part and keeps the layout's order: the live output of a layer
 * is exactly the live input of the next. */
static void cut_to_live(network *net)
{
    int need_h = 0, need_w = 0; /* of this layer's output; 0: all of it */
    for (int i = net->nlayers - 1; i >= 0; i--) {
        net_layer *l = &net->live[i];
        *l = net->layers[i];
        if (need_h) {
            l->out_h = need_h;
            l->out_w = need_w;
        }
        if (l->kind == LAYER_CONV) {
            l->in_h = l->out_h + l->k - 1;
            l->in_w = l->out_w + l->k - 1;
        } else if (l->kind == LAYER_MAXPOOL) {
            l->in_h = (l->out_h - 1) * l->s + l->k;
            l->in_w = (l->out_w - 1) * l->s + l->k;
        }
        l->in_size = (size_t)l->in_c * l->in_h * l->in_w;
        l->out_size = (size_t)l->out_c * l->out_h * l->out_w;
        need_h = l->in_h;
        need_w = l->in_w;
    }
    net->crops_input = net->live[0].in_size != net->layers[0].in_size;
    set_kernel_flags(net->live, net->nlayers);
}

int net_create(network *net, const config *cfg, tr_error *err)
{
    memset(net, 0, sizeof *net);
    if (config_validate(cfg, err) != 0)
        return -1;
    net->input_size = cfg->input_size;
    net->classes = cfg->classes;
    int c = 1, h = cfg->input_size, w = cfg->input_size, flat = 0;
    size_t off = 0;
    for (int i = 0; i < cfg->nlayers; i++) {
        const layer_config *lc = &cfg->layers[i];
        net_layer *l = &net->layers[i];
        memcpy(l->name, lc->name, sizeof l->name);
        l->kind = lc->type;
        l->act = config_layer_activation(lc);
        l->lr_scale = (float)lc->lr_scale;
        l->in_c = c;
        l->in_h = h;
        l->in_w = w;
        if (shape_layer(cfg, lc, l, flat, err) != 0)
            return -1;
        flat |= lc->type == LAYER_DENSE;
        l->in_size = (size_t)l->in_c * l->in_h * l->in_w;
        l->out_size = (size_t)l->out_c * l->out_h * l->out_w;
        if (l->nweights > NET_MAX_SIZE)
            return config_layer_fail(cfg, lc, err, "has too many weights: %zu, more than %zu", l->nweights,
                                     NET_MAX_SIZE);
        if (l->out_size > NET_MAX_SIZE)
            return config_layer_fail(cfg, lc, err, "too large (%d x %d x %d outputs)", l->out_c, l->out_h, l->out_w);
        l->w_off = off;
        l->b_off = off + l->nweights;
        off += l->nweights + l->nbias;
        if (off > NET_MAX_SIZE)
            return config_layer_fail(cfg, lc, err, "the network has too many parameters");
        c = l->out_c;
        h = l->out_h;
        w = l->out_w;
    }
    net->nlayers = cfg->nlayers;
    set_kernel_flags(net->layers, net->nlayers);
    cut_to_live(net);
    net->nparams = off;
    net->params = tr_alloc_aligned(off * sizeof(float), err);
    return net->params ? 0 : -1;
}

/* One name when both passes of a pool take the same kernel, else both. */
static void pool_path(char *path, size_t size, const net_layer *l)
{
    const char *f = maxpool_forward_kernel_path(l->k, l->s), *b = maxpool_backward_kernel_path(l->k, l->s, l->in_h, l->in_w);
    if (!strcmp(f, b))
        snprintf(path, size, "%s", f);
    else
        snprintf(path, size, "forward %s, backward %s", f, b);
}

void net_kernel_summary(const network *net, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    const net_layer *L = net->live;
    for (int i = 0; i < net->nlayers && n < size; i++) {
        const net_layer *l = &L[i];
        char path[96];
        if (l->kind == LAYER_CONV && dw_by_pool(net, i)) {
            char fd[64];
            conv_kernel_path(fd, sizeof fd, i > 0, 0, l->in_c, l->in_h, l->in_w, l->out_c, l->k);
            snprintf(path, sizeof path, "%s, dw %s", fd,
                     conv_pool_weight_grads_path(l->in_c, l->in_h, l->in_w, l->out_c, l->k));
        } else if (l->kind == LAYER_CONV)
            conv_kernel_path(path, sizeof path, i > 0, 1, l->in_c, l->in_h, l->in_w, l->out_c, l->k);
        else if (l->conv_grads_in_pool && i == 1 && L[0].pools_in_kernel) /* no din to spread */
            snprintf(path, sizeof path, "in %s's kernels", net->layers[0].name);
        else if (l->conv_grads_in_pool && i == 1) /* conv1's dw reads the pool's gradient as it is */
            snprintf(path, sizeof path, "forward %s, backward in %s's dw", maxpool_forward_kernel_path(l->k, l->s),
                     net->layers[0].name);
        else if (i > 0 && L[i - 1].pools_in_kernel)
            snprintf(path, sizeof path, "forward in %s's kernel, backward %s", net->layers[i - 1].name,
                     maxpool_backward_kernel_path(l->k, l->s, l->in_h, l->in_w));
        else if (l->kind == LAYER_MAXPOOL)
            pool_path(path, sizeof path, l);
        else
            snprintf(path, sizeof path, "%s", dense_kernel_path());
        int w = snprintf(buf + n, size - n, "%s%s %s", i ? ", " : "", l->name, path);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static double train_flops(const net_layer *L, int n)
{
    double macs = 0.0;
    for (int i = 0; i < n; i++) {
        const net_layer *l = &L[i];
        double per_pass = l->kind == LAYER_CONV    ? (double)l->out_size * l->in_c * l->k * l->k
                          : l->kind == LAYER_DENSE ? (double)l->out_size * l->in_size
                                                   : 0.0;
        macs += per_pass * (i > 0 ? 3 : 2); /* forward, dw, and din unless first */
    }
    return 2.0 * macs;
}

double net_train_flops(const network *net)
{
    return train_flops(net->layers, net->nlayers);
}

double net_live_train_flops(const network *net)
{
    return train_flops(net->live, net->nlayers);
}

void net_free(network *net)
{
    free(net->params);
    net->params = NULL;
}

void net_init_params(network *net, int init, uint64_t seed)
{
    for (int i = 0; i < net->nlayers; i++) {
        net_layer *l = &net->layers[i];
        if (!l->nweights)
            continue;
        double fan_in = (double)l->nweights / l->out_c;
        double fan_out = l->kind == LAYER_CONV ? (double)l->out_c * l->k * l->k : (double)l->out_c;
        double bound = init == INIT_HE       ? sqrt(6.0 / fan_in)
                       : init == INIT_XAVIER ? sqrt(6.0 / (fan_in + fan_out))
                                             : sqrt(3.0 / fan_in);
        rng_t r = rng_seed(seed, RNG_STREAM_INIT, (uint64_t)i);
        float *wp = net->params + l->w_off;
        for (size_t j = 0; j < l->nweights; j++)
            wp[j] = (float)((2.0 * rng_uniform(&r) - 1.0) * bound);
        memset(net->params + l->b_off, 0, l->nbias * sizeof(float));
    }
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15; /* whole cache lines per buffer */
}

int net_workspace_create(net_workspace *ws, const network *net, tr_error *err)
{
    memset(ws, 0, sizeof *ws);
    size_t floats = round16((size_t)net->input_size * net->input_size), biggest = floats;
    size_t ints = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const net_layer *l = &net->layers[i];
        floats += round16(l->out_size);
        if (l->kind == LAYER_MAXPOOL)
            ints += round16(l->out_size);
        if (l->in_size > biggest)
            biggest = round16(l->in_size);
        if (l->out_size > biggest)
            biggest = round16(l->out_size);
    }
    floats += round16(net->live[0].in_size) + 2 * biggest + round16((size_t)net->classes);
    char *p = tr_alloc_aligned(floats * sizeof(float) + ints * sizeof(int32_t), err);
    if (!p)
        return -1;
    ws->block = p;
    float *f = (float *)p;
    ws->acts[0] = f;
    f += round16((size_t)net->input_size * net->input_size);
    for (int i = 0; i < net->nlayers; i++) {
        ws->acts[i + 1] = f;
        f += round16(net->layers[i].out_size);
    }
    ws->cropped = f;
    f += round16(net->live[0].in_size);
    ws->dcur = f;
    f += biggest;
    ws->dnext = f;
    f += biggest;
    ws->probs = f;
    f += round16((size_t)net->classes);
    int32_t *ip = (int32_t *)f;
    for (int i = 0; i < net->nlayers; i++) {
        if (net->layers[i].kind != LAYER_MAXPOOL)
            continue;
        ws->argmax[i] = ip;
        ip += round16(net->layers[i].out_size);
    }
    return 0;
}

void net_workspace_free(net_workspace *ws)
{
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

net_workspace *net_workspaces_create(const network *net, int n, tr_error *err)
{
    size_t bytes;
    if (n < 0 || tr_mul_size((size_t)n, sizeof(net_workspace), &bytes) != 0) {
        tr_fail(err, TR_ERUNTIME, "%d workspaces: too many", n);
        return NULL;
    }
    net_workspace *ws = tr_alloc_aligned(bytes, err); /* zeroed */
    if (!ws)
        return NULL;
    for (int t = 0; t < n; t++)
        if (net_workspace_create(&ws[t], net, err) != 0) {
            net_workspaces_free(ws, t);
            return NULL;
        }
    return ws;
}

void net_workspaces_free(net_workspace *ws, int n)
{
    if (!ws)
        return;
    for (int t = 0; t < n; t++)
        net_workspace_free(&ws[t]);
    free(ws);
}

static void layer_forward(const net_layer *l, const float *params, const float *in, float *out,
                          int32_t *argmax)
{
    switch (l->kind) {
    case LAYER_CONV:
        if (l->act == ACT_RELU) { /* fused: no second pass over the output */
            conv_relu_forward(out, in, params + l->w_off, params + l->b_off, l->in_c, l->in_h,
                              l->in_w, l->out_c, l->k);
            return;
        }
        conv_forward(out, in, params + l->w_off, params + l->b_off, l->in_c, l->in_h, l->in_w,
                     l->out_c, l->k);
        break;
    case LAYER_MAXPOOL:
        maxpool_forward(out, argmax, in, l->in_c, l->in_h, l->in_w, l->k, l->s);
        break;
    case LAYER_DENSE:
        dense_forward(out, in, params + l->w_off, params + l->b_off, (int)l->in_size, l->out_c);
        break;
    }
    if (l->act == ACT_RELU)
        relu_forward(out, (int)l->out_size);
}

/* Layer I's input as the layers L run it: the cropped image where the
 * live layers read less than the whole. */
static const float *input_of(const network *net, const net_layer *L, const net_workspace *ws, int i)
{
    return i == 0 && L == net->live && net->crops_input ? ws->cropped : ws->acts[i];
}

/* The image's top-left live part, row by row (the input has one channel). */
static void crop_input(const network *net, net_workspace *ws)
{
    const net_layer *l = &net->live[0];
    for (int y = 0; y < l->in_h; y++)
        memcpy(ws->cropped + (size_t)y * l->in_w, ws->acts[0] + (size_t)y * net->layers[0].in_w,
               sizeof(float) * (size_t)l->in_w);
}

/* Through the layers L (net->layers or net->live). Of a conv whose pool is
 * fused: KEEP, store its outputs (only the report's feature maps read
 * them; the backward pass reads the pool's output); ARGMAX, the pool's
 * argmax (only the backward pass reads it). */
static const float *forward_with(const network *net, const net_layer *L, const float *params, net_workspace *ws,
                                 int keep, int argmax)
{
    if (L == net->live && net->crops_input)
        crop_input(net, ws);
    for (int i = 0; i < net->nlayers; i++) {
        const net_layer *l = &L[i];
        const float *in = input_of(net, L, ws, i);
        if (l->pools_in_kernel) {
            const net_layer *p = &L[i + 1];
            conv_relu_pool_forward(keep ? ws->acts[i + 1] : NULL, ws->acts[i + 2], argmax ? ws->argmax[i + 1] : NULL,
                                   in, params + l->w_off, params + l->b_off, l->in_c, l->in_h, l->in_w, l->out_c,
                                   l->k);
            if (p->act == ACT_RELU)
                relu_forward(ws->acts[i + 2], (int)p->out_size);
            i++;
            continue;
        }
        layer_forward(l, params, in, ws->acts[i + 1], ws->argmax[i]);
    }
    return ws->acts[net->nlayers];
}

const float *net_forward(const network *net, net_workspace *ws)
{
    return forward_with(net, net->layers, net->params, ws, 1, 1);
}

const float *net_predict(const network *net, net_workspace *ws)
{
    return forward_with(net, net->live, net->params, ws, 0, 0);
}

int net_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

float net_train_sample(const network *net, const float *params, net_workspace *ws, int label,
                       float *grad, int *predicted)
{
    const net_layer *L = net->live;
    const float *logits = forward_with(net, L, params, ws, 0, 1);
    float loss = softmax_xent(ws->probs, ws->dcur, logits, label, net->classes);
    *predicted = net_argmax(logits, net->classes);
    int masked = 0; /* the ReLU mask of layer i was applied by the layer above */
    for (int i = net->nlayers - 1; i >= 0; i--) {
        const net_layer *l = &L[i];
        const float *in = input_of(net, L, ws, i);
        float *din = i > 0 ? ws->dnext : NULL;
        if (l->act == ACT_RELU && !masked)
            relu_backward(ws->dcur, ws->acts[i + 1], (int)l->out_size);
        masked = 0;
        switch (l->kind) {
        case LAYER_CONV:
            conv_backward(din, dw_by_pool(net, i) ? NULL : grad + l->w_off, grad + l->b_off, ws->dcur, in,
                          params + l->w_off, l->in_c, l->in_h, l->in_w, l->out_c, l->k);
            break;
        case LAYER_MAXPOOL:
            if (!din)
                break;
            if (l->conv_grads_in_pool) { /* the conv below's dw and db, from the windows' winners */
                const net_layer *c = &L[i - 1];
                conv_pool_weight_grads(grad + c->w_off, grad + c->b_off, ws->dcur, ws->argmax[i], ws->acts[i + 1],
                                       input_of(net, L, ws, i - 1), c->in_c, c->in_h, c->in_w, c->out_c, c->k);
                if (i == 1) /* the first layer has no din: nothing left to do */
                    return loss;
            }
            if (L[i - 1].act == ACT_RELU && l->k == 2 && l->s == 2) {
                maxpool2x2_relu_backward(din, ws->dcur, ws->argmax[i], ws->acts[i + 1], l->in_c, l->in_h,
                                         l->in_w);
                masked = 1;
            } else if (L[i - 1].act == ACT_RELU) { /* the ReLU below, fused */
                maxpool_relu_backward(din, ws->dcur, ws->argmax[i], ws->acts[i], (int)l->in_size,
                                      (int)l->out_size);
                masked = 1;
            } else {
                maxpool_backward(din, ws->dcur, ws->argmax[i], (int)l->in_size, (int)l->out_size);
            }
            break;
        case LAYER_DENSE:
            dense_backward(din, grad + l->w_off, grad + l->b_off, ws->dcur, in,
                           params + l->w_off, (int)l->in_size, l->out_c);
            break;
        }
        float *t = ws->dcur;
        ws->dcur = ws->dnext;
        ws->dnext = t;
    }
    return loss;
}

int net_same_architecture(const network *a, const network *b)
{
    if (a->nlayers != b->nlayers || a->nparams != b->nparams)
        return 0;
    for (int i = 0; i < a->nlayers; i++) {
        const net_layer *x = &a->layers[i], *y = &b->layers[i];
        if (x->kind != y->kind || x->act != y->act || x->k != y->k || x->s != y->s ||
            x->out_c != y->out_c || x->out_h != y->out_h || x->out_w != y->out_w)
            return 0;
    }
    return 1;
}
