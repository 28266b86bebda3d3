/* optim.h - parameter updates: SGD with momentum (optionally Nesterov),
 * Adam with L2 weight decay, and AdamW with decoupled decay; and the learning
 * rate schedule (constant, step, cosine, each with optional linear warm-up).
 * State arrays have the same flat layout as the parameters, which the
 * optimizer sees as segments (one per layer with parameters), each with its
 * own learning-rate scale. */
#ifndef TRAINER_OPTIM_H
#define TRAINER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct {
    size_t off, count;
    float lr_scale; /* the step's learning rate times this */
} optim_segment;

typedef struct {
    int kind; /* optimizer_kind */
    size_t n;
    int nstate;      /* state arrays in use: 1 for SGD (velocity), 2 for Adam */
    float *state[2]; /* SGD: velocity; Adam: first and second moments */
    uint64_t t;      /* steps taken, for Adam's bias correction */
    float momentum, beta1, beta2, eps, weight_decay;
    int nesterov;
    optim_segment seg[CONFIG_MAX_LAYERS];
    int nseg;
} optimizer;

int optim_create(optimizer *opt, const config *cfg, size_t nparams, tr_error *err);
void optim_free(optimizer *opt);

/* Counts one step; call once per batch before the optim_update calls. */
void optim_begin_step(optimizer *opt);

/* Updates params[off .. off+count) from the batch-mean gradient with LR. */
void optim_update(optimizer *opt, float *params, const float *grad, size_t off, size_t count, float lr);

/* Declares parameters [OFF, OFF+COUNT) a segment learning at LR_SCALE times
 * the step's rate (a layer's lr_scale). Once per segment, after
 * optim_create; segments must not overlap. */
int optim_add_segment(optimizer *opt, size_t off, size_t count, float lr_scale, tr_error *err);

/* optim_update on the parameters in [C0, C1) that lie in a segment, each at
 * LR times its segment's scale. Elementwise, so any cut of a step into
 * ranges gives the same bytes. */
void optim_update_range(optimizer *opt, float *params, const float *grad, size_t c0, size_t c1, float lr);

/* The learning rate at optimizer step STEP (0-based) of a run of
 * steps_per_epoch * cfg->epochs steps. */
double schedule_lr(const config *cfg, uint64_t step, uint64_t steps_per_epoch);

#endif
