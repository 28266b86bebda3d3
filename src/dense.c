#include <string.h>

#include "layers.h"

/* The forward dot products are reductions, which the compiler may not
 * reorder without -ffast-math: each output keeps 4 x 8 partial sums (lane
 * l of vector u takes inputs i with i % 32 == 8u + l), combined in a fixed
 * order, so the result depends only on the shapes. */
#if defined(__GNUC__) && !defined(TRAINER_NO_VECTORS)
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float vf __attribute__((vector_size(32)));

static float dot(const float *a, const float *b, int n)
{
    vf acc[4] = { { 0 }, { 0 }, { 0 }, { 0 } };
    int i = 0;
    for (; i + 32 <= n; i += 32)
        for (int u = 0; u < 4; u++) {
            vf x, y;
            memcpy(&x, a + i + 8 * u, sizeof x);
            memcpy(&y, b + i + 8 * u, sizeof y);
            acc[u] += x * y;
        }
    vf v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    float s = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}
#else
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}
#endif

const char *dense_kernel_path(void)
{
#if defined(__GNUC__) && !defined(TRAINER_NO_VECTORS)
    return "vec256";
#else
    return "loops";
#endif
}

void dense_forward(float *out, const float *in, const float *w, const float *b, int IN, int OUT)
{
    for (int o = 0; o < OUT; o++)
        out[o] = dot(w + (size_t)o * IN, in, IN) + b[o];
}

void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int IN, int OUT)
{
    if (din)
        for (int i = 0; i < IN; i++)
            din[i] = 0.0f;
    for (int o = 0; o < OUT; o++) {
        float g = dout[o];
        float *restrict dwr = dw + (size_t)o * IN;
        const float *wr = w + (size_t)o * IN;
        db[o] += g;
        for (int i = 0; i < IN; i++)
            dwr[i] += g * in[i];
        if (din)
            for (int i = 0; i < IN; i++)
                din[i] += g * wr[i];
    }
}
