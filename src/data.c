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
    /* Integer sums are exact, so the statistics do not depend on order.
     * 32-bit sums, where they cannot overflow (255^2 * 65536 < 2^32), let
     * the loop run on twice as many lanes. */
    uint64_t sum = 0, sq = 0;
    if (n <= 65536) {
        uint32_t s32 = 0, q32 = 0;
        for (size_t i = 0; i < n; i++) {
            s32 += pixels[i];
            q32 += (uint32_t)pixels[i] * pixels[i];
        }
        sum = s32;
        sq = q32;
    } else {
        for (size_t i = 0; i < n; i++) {
            sum += pixels[i];
            sq += (uint64_t)pixels[i] * pixels[i];
        }
    }
    const double mean = (double)sum / (double)n;
    const double var = (double)sq / (double)n - mean * mean;
    /* A blank image has no spread; leave it at zero rather than divide by 0. */
    const double inv = var > 1e-6 ? 1.0 / sqrt(var) : 0.0;
    /* Each output on its own, from constants: the loop vectorises. */
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(((double)pixels[i] - mean) * inv);
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
    /* Output column x reads source column x - dx: one span per row. */
    const long c = (long)cols;
    if (dx > -c && dx < c) {
        const size_t x0 = dx > 0 ? (size_t)dx : 0, span = (size_t)(c - (dx > 0 ? dx : -dx));
        for (size_t y = 0; y < rows; y++) {
            long sy = (long)y - dy;
            if (sy >= 0 && sy < (long)rows)
                memcpy(shifted + y * cols + x0, src + (size_t)sy * cols + (size_t)((long)x0 - dx), span);
        }
    }
    data_normalize(out, shifted, n, mode);
}

void data_prefetch(const dataset *ds, size_t index)
{
    const size_t n = ds->rows * ds->cols;
    const uint8_t *p = ds->pixels + index * n;
    for (size_t i = 0; i < n; i += 64)
        __builtin_prefetch(p + i);
    __builtin_prefetch(p + n - 1);
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
