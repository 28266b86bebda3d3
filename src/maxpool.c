#include <string.h>

#include "layers.h"

void maxpool_forward(float *out, int32_t *argmax, const float *in, int C, int H, int W, int K, int S)
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

void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int in_size, int out_size)
{
    memset(din, 0, sizeof(float) * (size_t)in_size);
    /* += because overlapping windows (stride < size) can pick one input twice. */
    for (int o = 0; o < out_size; o++)
        din[argmax[o]] += dout[o];
}
