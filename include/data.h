/* data.h - turning stored bytes into a network input: normalisation (per
 * image z-score as the source post does, plain 0..1 scaling, or MNIST's
 * dataset mean and deviation) and the optional random shift used as
 * augmentation. Done per sample, on the fly, so the dataset stays bytes. */
#ifndef TRAINER_DATA_H
#define TRAINER_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "idx.h"

/* Writes image INDEX of DS, shifted by (dx, dy) pixels with zero fill, into
 * OUT (rows*cols floats), normalised as MODE (a normalize_kind). */
void data_sample(float *out, const dataset *ds, size_t index, int mode, int dx, int dy);

/* Asks the CPU to start fetching image INDEX of DS: the training order
 * is a shuffle, so each image's bytes are a cache miss that the work on
 * the sample before can hide. */
void data_prefetch(const dataset *ds, size_t index);

/* Normalises rows*cols bytes into OUT; for inputs that are not in a dataset. */
void data_normalize(float *out, const uint8_t *pixels, size_t n, int mode);

/* The shift for one augmented sample, a pure function of seed, epoch and the
 * sample's index in the dataset, so it does not depend on thread count. */
void data_augment_shift(uint64_t seed, uint64_t epoch, size_t index, int max_shift, int *dx, int *dy);

#endif
