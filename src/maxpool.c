#include <string.h>

#include "layers.h"

/* The plain version for any window and stride. */
static void maxpool_forward_loops(float *out, int32_t *argmax, const float *in, int C, int H, int W,
                                  int K, int S)
{
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int best = (c * H + y * S) * W + x * S;
                float m = in[best];
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int i = (c * H + y * S + ky) * W + x * S + kx;
                        if (in[i] > m) { /* strict: the first maximum wins a tie */
                            m = in[i];
                            best = i;
                        }
                    }
                int o = (c * OH + y) * OW + x;
                out[o] = m;
                argmax[o] = best;
            }
}

#if defined(__GNUC__) && defined(__has_builtin) && !defined(TRAINER_NO_VECTORS)
#if __has_builtin(__builtin_shufflevector)
#define POOL_VECTORS 1
#endif
#endif

#ifdef POOL_VECTORS
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* 2x2 windows, stride 2, W a multiple of 8 and H even: 8 inputs of two rows
 * give 4 outputs. The four candidates of each window are compared in
 * row-major order with strict >, as the loop version does, so ties and
 * NaNs pick the same input. */
static void maxpool_forward_2x2(float *out, int32_t *argmax, const float *in, int C, int H, int W)
{
    const int OW = W / 2, rows = C * H / 2; /* window rows over all channels */
    for (int q = 0; q < rows; q++) {
        const float *r0 = in + (size_t)2 * q * W;
        for (int x = 0; x < W; x += 8) {
            v8f u, l;
            memcpy(&u, r0 + x, sizeof u);
            memcpy(&l, r0 + W + x, sizeof l);
            v4f a = __builtin_shufflevector(u, u, 0, 2, 4, 6);
            v4f b = __builtin_shufflevector(u, u, 1, 3, 5, 7);
            v4f c = __builtin_shufflevector(l, l, 0, 2, 4, 6);
            v4f d = __builtin_shufflevector(l, l, 1, 3, 5, 7);
            int32_t base = 2 * q * W + x;
            v4i ia = (v4i){ base, base + 2, base + 4, base + 6 };
            v4f m = a;
            v4i idx = ia, take;
            take = b > m;
            m = (v4f)(((v4i)b & take) | ((v4i)m & ~take));
            idx = ((ia + 1) & take) | (idx & ~take);
            take = c > m;
            m = (v4f)(((v4i)c & take) | ((v4i)m & ~take));
            idx = ((ia + W) & take) | (idx & ~take);
            take = d > m;
            m = (v4f)(((v4i)d & take) | ((v4i)m & ~take));
            idx = ((ia + W + 1) & take) | (idx & ~take);
            size_t o = (size_t)q * OW + x / 2;
            memcpy(out + o, &m, sizeof m);
            memcpy(argmax + o, &idx, sizeof idx);
        }
    }
}
#endif

void maxpool_forward(float *out, int32_t *argmax, const float *in, int C, int H, int W, int K, int S)
{
#ifdef POOL_VECTORS
    if (K == 2 && S == 2 && H % 2 == 0 && W % 8 == 0) {
        maxpool_forward_2x2(out, argmax, in, C, H, W);
        return;
    }
#endif
    maxpool_forward_loops(out, argmax, in, C, H, W, K, S);
}

void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int in_size, int out_size)
{
    memset(din, 0, sizeof(float) * (size_t)in_size);
    /* += because overlapping windows (stride < size) can pick one input twice. */
    for (int o = 0; o < out_size; o++)
        din[argmax[o]] += dout[o];
}

void maxpool_relu_backward(float *din, const float *dout, const int32_t *argmax, const float *in,
                           int in_size, int out_size)
{
    memset(din, 0, sizeof(float) * (size_t)in_size);
    /* Each input's mask is the same for every window that picked it, so
     * masking each term equals masking the sum, as relu_backward does. */
    for (int o = 0; o < out_size; o++) {
        int32_t a = argmax[o];
        din[a] += in[a] > 0.0f ? dout[o] : 0.0f;
    }
}
