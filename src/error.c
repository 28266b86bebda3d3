#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tr_fail(tr_error *err, int code, const char *fmt, ...)
{
    if (err && err->code == TR_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return -1;
}

int tr_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

void *tr_calloc(size_t n, size_t size, tr_error *err)
{
    size_t bytes;
    if (tr_mul_size(n, size, &bytes) != 0) {
        tr_fail(err, TR_ERUNTIME, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        tr_fail(err, TR_ERUNTIME, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *tr_alloc_aligned(size_t bytes, tr_error *err)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) {
        tr_fail(err, TR_ERUNTIME, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        tr_fail(err, TR_ERUNTIME, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}
