/* rng.h - counter-based randomness. Every random choice (initial weights,
 * the shuffle of an epoch, the shift of one augmented sample) is a pure
 * function of (seed, stream, counter), so results do not depend on thread
 * count or on where a run was stopped and resumed: the whole RNG state of a
 * training run is its seed and its position. */
#ifndef TRAINER_RNG_H
#define TRAINER_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} rng_t;

/* Streams keep unrelated uses of one seed independent. */
enum { RNG_STREAM_INIT = 1, RNG_STREAM_SHUFFLE = 2, RNG_STREAM_AUGMENT = 3 };

uint64_t rng_mix(uint64_t x); /* splitmix64 finaliser */
rng_t rng_seed(uint64_t seed, uint64_t stream, uint64_t counter);
uint64_t rng_next(rng_t *r);
float rng_uniform(rng_t *r);              /* [0, 1) */
uint32_t rng_below(rng_t *r, uint32_t n); /* [0, n), unbiased */

#endif
