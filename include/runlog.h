/* runlog.h - reading what a training run logged: the metrics CSV (one row
 * per epoch) and the step log (one row per optimizer step). Columns are
 * found by the header, so files from older versions, with fewer columns,
 * still read; a missing column reads as NaN (-1 for the validation and
 * loss columns, as the trainer writes for a set it does not have). */
#ifndef TRAINER_RUNLOG_H
#define TRAINER_RUNLOG_H

#include <stddef.h>

#include "error.h"

enum { M_EPOCH, M_TRAIN_LOSS, M_TRAIN_ACC, M_VAL_ACC, M_TEST_ACC, M_LR, M_RATE, M_SECS, M_TEST_LOSS, M_VAL_LOSS,
       M_NCOL };

typedef struct {
    int n, cap;
    int has[M_NCOL];     /* the file has this column */
    double *col[M_NCOL]; /* n values each */
} metrics;

typedef struct {
    size_t n, cap;
    int has_lr;
    double *step, *loss, *lr;
} step_log;

int read_metrics(const char *path, metrics *m, tr_error *err);
void metrics_free(metrics *m);

int read_steps(const char *path, step_log *s, tr_error *err);
void steps_free(step_log *s);

/* The row whose weights the model file holds: with a validation set the
 * run keeps its best epoch (the first with the highest val_acc), else its
 * last. M must have rows. */
int metrics_model_row(const metrics *m);

#endif
