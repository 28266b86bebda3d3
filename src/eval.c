#include "eval.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "data.h"
#include "layers.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int eval_dataset(const network *net, const dataset *ds, size_t first, size_t count, int normalize,
                 net_workspace *ws, int nthreads, eval_result *res, uint8_t *predicted,
                 float *confidence, tr_error *err)
{
    memset(res, 0, sizeof *res);
    res->classes = net->classes;
    res->total = count;
    res->confusion = tr_calloc((size_t)net->classes * net->classes, sizeof(uint64_t), err);
    float *losses = tr_calloc(count, sizeof(float), err);
    uint8_t *pred = predicted ? predicted : tr_calloc(count, 1, err);
    if (!res->confusion || !losses || !pred) {
        free(losses);
        if (!predicted)
            free(pred);
        eval_result_free(res);
        return -1;
    }
    const int classes = net->classes;
    /* Dynamic: on shared cores a thread that is descheduled holds up only
     * the 128 samples it claimed, not half the set. Each sample's results
     * go to its own index, so the split changes nothing. */
#ifndef _OPENMP
    (void)nthreads;
#endif
#pragma omp parallel for schedule(dynamic, 128) num_threads(nthreads)
    for (size_t i = 0; i < count; i++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        net_workspace *w = &ws[tid];
        /* The test set (7.8 MB) lives past the L2: the next image's lines
         * arrive while this one runs (its first loads stalled otherwise). */
        if (i + 1 < count)
            data_prefetch(ds, first + i + 1);
        data_sample(w->acts[0], ds, first + i, normalize, 0, 0);
        const float *logits = net_predict(net, w);
        int label = ds->labels[first + i];
        /* dcur is free scratch outside backward; the gradient is unused. */
        losses[i] = softmax_xent(w->probs, w->dcur, logits, label, classes);
        int p = net_argmax(logits, classes);
        pred[i] = (uint8_t)p;
        if (confidence)
            confidence[i] = w->probs[p];
    }
    double loss = 0.0;
    for (size_t i = 0; i < count; i++) {
        int label = ds->labels[first + i];
        loss += losses[i];
        res->correct += pred[i] == label;
        res->confusion[(size_t)label * classes + pred[i]]++;
    }
    res->loss = count ? loss / (double)count : 0.0;
    free(losses);
    if (!predicted)
        free(pred);
    return 0;
}

void eval_result_free(eval_result *res)
{
    free(res->confusion);
    res->confusion = NULL;
}
