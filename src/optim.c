#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_create(optimizer *opt, const config *cfg, size_t nparams, tr_error *err)
{
    memset(opt, 0, sizeof *opt);
    opt->kind = cfg->optimizer;
    opt->n = nparams;
    opt->nstate = cfg->optimizer == OPT_SGD ? 1 : 2;
    opt->momentum = (float)cfg->momentum;
    opt->nesterov = cfg->nesterov;
    opt->beta1 = (float)cfg->beta1;
    opt->beta2 = (float)cfg->beta2;
    opt->eps = (float)cfg->eps;
    opt->weight_decay = (float)cfg->weight_decay;
    for (int i = 0; i < opt->nstate; i++) {
        opt->state[i] = tr_alloc_aligned(nparams * sizeof(float), err);
        if (!opt->state[i]) {
            optim_free(opt);
            return -1;
        }
    }
    return 0;
}

void optim_free(optimizer *opt)
{
    for (int i = 0; i < 2; i++) {
        free(opt->state[i]);
        opt->state[i] = NULL;
    }
}

void optim_begin_step(optimizer *opt)
{
    opt->t++;
}

/* The update rules follow PyTorch's torch.optim definitions, so its
 * hyper-parameters carry over. */
void optim_update(optimizer *opt, float *params, const float *grad, size_t off, size_t count, float lr)
{
    float *restrict w = params + off;
    const float *restrict g = grad + off;
    const float wd = opt->weight_decay;
    if (opt->kind == OPT_SGD) {
        float *restrict v = opt->state[0] + off;
        const float mu = opt->momentum;
        for (size_t i = 0; i < count; i++) {
            float gi = g[i] + wd * w[i];
            v[i] = mu * v[i] + gi;
            w[i] -= lr * (opt->nesterov ? gi + mu * v[i] : v[i]);
        }
        return;
    }
    float *restrict m = opt->state[0] + off, *restrict s = opt->state[1] + off;
    const float b1 = opt->beta1, b2 = opt->beta2;
    const float c1 = 1.0f / (1.0f - powf(b1, (float)opt->t));
    const float c2 = 1.0f / (1.0f - powf(b2, (float)opt->t));
    const int decoupled = opt->kind == OPT_ADAMW;
    for (size_t i = 0; i < count; i++) {
        float gi = decoupled ? g[i] : g[i] + wd * w[i];
        if (decoupled)
            w[i] -= lr * wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        s[i] = b2 * s[i] + (1.0f - b2) * gi * gi;
        w[i] -= lr * (m[i] * c1) / (sqrtf(s[i] * c2) + opt->eps);
    }
}

int optim_add_segment(optimizer *opt, size_t off, size_t count, float lr_scale, tr_error *err)
{
    if (opt->nseg >= CONFIG_MAX_LAYERS)
        return tr_fail(err, TR_ERUNTIME, "optimizer: more than %d parameter segments", CONFIG_MAX_LAYERS);
    if (off > opt->n || count > opt->n - off)
        return tr_fail(err, TR_ERUNTIME, "optimizer: segment [%zu, %zu) outside its %zu parameters", off,
                       off + count, opt->n);
    opt->seg[opt->nseg++] = (optim_segment){ off, count, lr_scale };
    return 0;
}

void optim_update_range(optimizer *opt, float *params, const float *grad, size_t c0, size_t c1, float lr)
{
    for (int i = 0; i < opt->nseg; i++) {
        const optim_segment *sg = &opt->seg[i];
        size_t lo = sg->off > c0 ? sg->off : c0, hi = sg->off + sg->count < c1 ? sg->off + sg->count : c1;
        if (lo < hi)
            optim_update(opt, params, grad, lo, hi - lo, lr * sg->lr_scale);
    }
}

double schedule_lr(const config *cfg, uint64_t step, uint64_t steps_per_epoch)
{
    double total = (double)steps_per_epoch * cfg->epochs;
    double warm = cfg->warmup_epochs * (double)steps_per_epoch;
    double s = (double)step;
    if (s < warm)
        return cfg->lr * (s + 1.0) / warm;
    switch (cfg->schedule) {
    case SCHED_STEP:
        return cfg->lr * pow(cfg->gamma, floor(s / ((double)steps_per_epoch * cfg->step_epochs)));
    case SCHED_COSINE: {
        double span = total - warm;
        double frac = span > 0 ? (s - warm) / span : 1.0;
        if (frac > 1.0)
            frac = 1.0;
        return cfg->min_lr + (cfg->lr - cfg->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
    }
    default:
        return cfg->lr;
    }
}
