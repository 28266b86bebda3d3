/* report.h - the HTML report of a trained model: one self-contained folder
 * (report.html, SVG curves, PNG kernels and feature maps) that opens offline
 * in any browser, on a phone, and prints. It shows the training curves from
 * the metrics CSV, every conv kernel on a diverging colour scale, feature
 * maps of a few test images, the confusion matrix with per-class precision
 * and recall, a grid of misclassified test images, and a summary of run,
 * architecture and config. Given several models it also overlays their
 * curves and tabulates where their configs differ.
 *
 * The report is built in two steps: gathering (load each model, measure it
 * on its test set, read its metrics and check that they belong to it), then
 * rendering (one function per section; charts through svg.h). */
#ifndef TRAINER_REPORT_H
#define TRAINER_REPORT_H

#include <stddef.h>

#include "error.h"

#define REPORT_MAX_RUNS 8
#define REPORT_MAX_WARNINGS 8

typedef struct {
    const char *model;   /* model or checkpoint file */
    const char *metrics; /* metrics CSV; NULL: MODEL's own (see report_find_metrics); "": none */
    const char *steps;   /* per-step loss CSV, or NULL: the one beside the metrics, if any */
    const char *out_dir; /* created if missing */
    const char *const *sets; /* data.* overrides, as for eval */
    int nsets;
    int nthreads;        /* > 0: threads_resolve's count */
    const char *const *others; /* more models to compare with MODEL (their metrics found beside them) */
    int nothers;
    const char *command;  /* the command line that made the report, for the summary; may be NULL */
    int live_epoch;       /* > 0: training is at this epoch and the page reloads itself */
    int train_threads;    /* threads the run trained on, when known (0: unknown) */
} report_options;

/* What the command line should tell the user besides the report's path. */
typedef struct {
    int nwarnings;
    char warnings[REPORT_MAX_WARNINGS][600];
} report_result;

int report_write(const report_options *opts, report_result *res, tr_error *err);

/* The metrics of MODEL when none is named: for DIR/NAME.model (or
 * DIR/NAME.model.ckpt), DIR/NAME.metrics.csv, else DIR/NAME.csv, the first
 * that exists; "" when neither does. */
void report_find_metrics(const char *model, char *out, size_t size);

#endif
