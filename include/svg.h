/* svg.h - line charts as standalone SVG files, for the HTML report: one
 * chart per metric, series overlaid in colour, the legend in a band of its
 * own above the plot (so no curve runs under it), round 1-2-5 ticks on both
 * axes, and an optional log-scaled y axis for losses that fall over orders
 * of magnitude. The files carry their own light and dark colours
 * (prefers-color-scheme), since an <img> does not see the page's CSS. */
#ifndef TRAINER_SVG_H
#define TRAINER_SVG_H

#include <stdio.h>

#include "error.h"

typedef struct {
    const char *name, *color;
    const double *x, *y; /* n points; each series has its own x (runs of different lengths) */
    int n;
    int markers; /* a dot per point: for a few epochs, not for thousands of steps */
    int faint;   /* thin and pale: raw values under their smoothed curve */
    int dashed;
} svg_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const svg_series *series;
    int nseries;
    int logy;          /* log10 y axis; values <= 0 are left out */
    int fix_ymin, fix_ymax;
    double ymin, ymax; /* used where fix_* is set */
} svg_chart;

/* Writes the chart to PATH. */
int svg_chart_write(const char *path, const svg_chart *c, tr_error *err);

/* Round tick positions: a 1-2-5 step giving about WANT ticks over [lo, hi].
 * *first is the first multiple of *step at or above lo; returns the count. */
int svg_nice_ticks(double lo, double hi, int want, double *first, double *step);

/* Text with <, >, & and " escaped, for SVG and HTML alike. */
void svg_escape(FILE *f, const char *s);

#endif
