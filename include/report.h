/* report.h - the HTML report of a trained model: one self-contained folder
 * (report.html, SVG curves, PNG kernels and feature maps) that opens offline
 * in any browser. It shows the training curves from the metrics CSV, every
 * conv kernel on a diverging colour scale, feature maps of a few test
 * images, the confusion matrix with per-class precision and recall, a grid
 * of misclassified test images, and a summary of architecture and config. */
#ifndef TRAINER_REPORT_H
#define TRAINER_REPORT_H

#include "error.h"

typedef struct {
    const char *model;   /* model or checkpoint file */
    const char *metrics; /* metrics CSV, or NULL for no curves */
    const char *steps;   /* per-step loss CSV, or NULL */
    const char *out_dir; /* created if missing */
    const char *const *sets; /* data.* overrides, as for eval */
    int nsets;
    int nthreads;
} report_options;

int report_write(const report_options *opts, tr_error *err);

#endif
