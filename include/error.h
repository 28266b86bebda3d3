/* error.h - how failures travel: every fallible function returns 0 or -1 and
 * fills a tr_error with one line of text and the exit code the command line
 * should use. Only the command line layer prints it. */
#ifndef TRAINER_ERROR_H
#define TRAINER_ERROR_H

#include <stddef.h>

enum {
    TR_OK = 0,
    TR_ERUNTIME = 1, /* out of memory, write failure, divergence */
    TR_EINPUT = 2,   /* bad usage, config, data or model file */
    TR_EINTR_INT = 130,
    TR_EINTR_TERM = 143
};

typedef struct {
    int code;
    char msg[1024];
} tr_error;

/* Records the first failure only, so the innermost, most specific message
 * survives callers that add nothing. Always returns -1. */
int tr_fail(tr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Multiplies a*b (and a*b*c) into *out, failing on size_t overflow. */
int tr_mul_size(size_t a, size_t b, size_t *out);

void *tr_calloc(size_t n, size_t size, tr_error *err);

/* 64-byte aligned and zeroed, so per-thread buffers never share a cache line. */
void *tr_alloc_aligned(size_t bytes, tr_error *err);

#endif
