/* runlog.h - what a training run logs, written and read here alone: the
 * metrics CSV (one row per epoch) and the step log (one row per optimizer
 * step). Columns are
 * found by the header, so files from older versions, with fewer columns,
 * still read; a missing column reads as NaN (-1 for the validation and
 * loss columns, as the trainer writes for a set it does not have). */
#ifndef TRAINER_RUNLOG_H
#define TRAINER_RUNLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* ---- writing (the trainer) ---- */

/* A log kept in memory and published whole (atomic_write_file) beside the
 * model and checkpoint it describes, so a run that fails before its first
 * epoch ends leaves the previous run's log with the previous run's model.
 * On resume, rows after the checkpoint's KEEP (epochs or steps) belong to
 * the abandoned future and are dropped, so the file matches an
 * uninterrupted run. */
typedef struct {
    const char *path; /* NULL: no log */
    FILE *mem;
    char *text;
    size_t len;
} runlog_writer;

/* Start a log at PATH ("" for none: then every call below does nothing). */
int runlog_start_metrics(runlog_writer *w, const char *path, uint64_t keep_epochs, int resuming, tr_error *err);
int runlog_start_steps(runlog_writer *w, const char *path, uint64_t keep_steps, int resuming, tr_error *err);
/* One epoch's row, by column (M_EPOCH...). */
void runlog_add_epoch(runlog_writer *w, const double row[M_NCOL]);
void runlog_add_step(runlog_writer *w, uint64_t step, uint64_t epoch, double loss, double lr);
/* Writes the log so far to its file. */
int runlog_publish(runlog_writer *w, tr_error *err);
void runlog_free(runlog_writer *w);

/* The step log beside a metrics file: NAME.steps.csv for NAME.csv (or
 * for any other NAME); "" for no metrics file. */
void runlog_steps_path(const char *metrics_path, char *out, size_t size);

#endif
