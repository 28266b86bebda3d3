/* report_img.h - the report's pictures as PNG files: conv kernels on a
 * diverging colour scale (blue negative, white zero, red positive) separated
 * by grey gutters, so that a filter near zero still shows as a white square
 * and does not vanish into the page; activation maps; test digits. */
#ifndef TRAINER_REPORT_IMG_H
#define TRAINER_REPORT_IMG_H

#include <stddef.h>

#include "error.h"
#include "idx.h"
#include "network.h"

/* The grey between kernels: neither a weight colour nor the page. */
#define REPORT_GUTTER_GREY 128

/* Where the kernels of a sheet lie: kernel (row, col) starts at
 * (pad + col * cell, pad + row * cell) and is cell - gap pixels wide. */
typedef struct {
    int w, h, rows, cols, cell, gap, pad;
    float vmax; /* the largest |weight|, the end of the colour scale */
} kernel_sheet;

/* One row per filter and one column per input channel (one row of all
 * filters when the layer has a single input channel), one colour scale. */
int report_kernels_png(const network *net, const net_layer *l, const char *path, kernel_sheet *ks, tr_error *err);

/* All channels of one activation tensor, 8 to a row, each on its own scale,
 * between grey gutters (white is a zero activation). */
int report_maps_png(const float *a, int channels, int h, int w, int scale, const char *path, tr_error *err);

/* Test image INDEX of DS, scaled up. */
int report_digit_png(const dataset *ds, size_t index, int scale, const char *path, tr_error *err);

#endif
