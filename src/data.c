#include "data.h"

#include <math.h>
#include <string.h>

#include "config.h"
#include "rng.h"

/* MNIST training-set pixel mean and standard deviation, on the 0..1 scale. */
#define MNIST_MEAN 0.1307f
#define MNIST_STD 0.3081f

void data_normalize(float *out, const uint8_t *pixels, size_t n, int mode)
{
    if (mode == NORM_SCALE) {
        for (size_t i = 0; i < n; i++)
            out[i] = pixels[i] * (1.0f / 255.0f);
        return;
    }
    if (mode == NORM_DATASET) {
        for (size_t i = 0; i < n; i++)
            out[i] = (pixels[i] * (1.0f / 255.0f) - MNIST_MEAN) * (1.0f / MNIST_STD);
        return;
    }
    /* Integer sums are exact, so the statistics do not depend on order. */
    uint64_t sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += pixels[i];
        sq += (uint64_t)pixels[i] * pixels[i];
    }
    double mean = (double)sum / (double)n;
    double var = (double)sq / (double)n - mean * mean;
    /* A blank image has no spread; leave it at zero rather than divide by 0. */
    double inv = var > 1e-6 ? 1.0 / sqrt(var) : 0.0;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((pixels[i] - mean) * inv);
}

void data_sample(float *out, const dataset *ds, size_t index, int mode, int dx, int dy)
{
    size_t rows = ds->rows, cols = ds->cols, n = rows * cols;
    const uint8_t *src = ds->pixels + index * n;
    if (dx == 0 && dy == 0) {
        data_normalize(out, src, n, mode);
        return;
    }
    uint8_t shifted[4096];
    if (n > sizeof shifted) { /* unreachable: config_validate keeps augmented images small */
        data_normalize(out, src, n, mode);
        return;
    }
    memset(shifted, 0, n);
    for (size_t y = 0; y < rows; y++) {
        long sy = (long)y - dy;
        if (sy < 0 || sy >= (long)rows)
            continue;
        for (size_t x = 0; x < cols; x++) {
            long sx = (long)x - dx;
            if (sx >= 0 && sx < (long)cols)
                shifted[y * cols + x] = src[(size_t)sy * cols + (size_t)sx];
        }
    }
    data_normalize(out, shifted, n, mode);
}

void data_augment_shift(uint64_t seed, uint64_t epoch, size_t index, int max_shift, int *dx, int *dy)
{
    *dx = *dy = 0;
    if (max_shift <= 0)
        return;
    rng_t r = rng_seed(seed, RNG_STREAM_AUGMENT, epoch << 32 ^ (uint64_t)index);
    uint32_t span = 2u * (uint32_t)max_shift + 1u;
    *dx = (int)rng_below(&r, span) - max_shift;
    *dy = (int)rng_below(&r, span) - max_shift;
}
