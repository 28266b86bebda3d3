/* optim.h - parameter updates: SGD with momentum (optionally Nesterov),
 * Adam with L2 weight decay, and AdamW with decoupled decay; and the learning
 * rate schedule (constant, step, cosine, each with optional linear warm-up).
 * State arrays have the same flat layout as the parameters. */
#ifndef TRAINER_OPTIM_H
#define TRAINER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct {
    int kind; /* optimizer_kind */
    size_t n;
    int nstate;      /* state arrays in use: 1 for SGD (velocity), 2 for Adam */
    float *state[2]; /* SGD: velocity; Adam: first and second moments */
    uint64_t t;      /* steps taken, for Adam's bias correction */
    float momentum, beta1, beta2, eps, weight_decay;
    int nesterov;
} optimizer;

int optim_create(optimizer *opt, const config *cfg, size_t nparams, tr_error *err);
void optim_free(optimizer *opt);

/* Counts one step; call once per batch before the optim_update calls. */
void optim_begin_step(optimizer *opt);

/* Updates params[off .. off+count) from the batch-mean gradient with LR. */
void optim_update(optimizer *opt, float *params, const float *grad, size_t off, size_t count, float lr);

/* The learning rate at optimizer step STEP (0-based) of a run of
 * steps_per_epoch * cfg->epochs steps. */
double schedule_lr(const config *cfg, uint64_t step, uint64_t steps_per_epoch);

#endif
