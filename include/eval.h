/* eval.h - accuracy, loss and the confusion matrix of a network on a
 * dataset, split across OpenMP threads. Per-sample results are combined in
 * sample order, so the figures do not depend on the thread count. */
#ifndef TRAINER_EVAL_H
#define TRAINER_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "idx.h"
#include "network.h"

typedef struct {
    size_t total, correct;
    double loss; /* mean cross-entropy */
    int classes;
    uint64_t *confusion; /* classes x classes, [true][predicted] */
} eval_result;

/* Evaluates samples [first, first+count) of DS. WS holds one workspace per
 * thread (nthreads of them). PREDICTED, if not NULL, gets each sample's
 * class and CONFIDENCE its probability. */
int eval_dataset(const network *net, const dataset *ds, size_t first, size_t count, int normalize,
                 net_workspace *ws, int nthreads, eval_result *res, uint8_t *predicted,
                 float *confidence, tr_error *err);
void eval_result_free(eval_result *res);

#endif
