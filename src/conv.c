#include <string.h>

#include "layers.h"

void conv_forward_ref(float *out, const float *in, const float *w, const float *b,
                      int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float s = b[o];
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++)
                            s += w[((o * C + c) * K + ky) * K + kx] * in[(c * H + y + ky) * W + x + kx];
                out[(o * OH + y) * OW + x] = s;
            }
}

void conv_backward_ref(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    if (din)
        memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float g = dout[(o * OH + y) * OW + x];
                db[o] += g;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int wi = ((o * C + c) * K + ky) * K + kx;
                            int ii = (c * H + y + ky) * W + x + kx;
                            dw[wi] += g * in[ii];
                            if (din)
                                din[ii] += g * w[wi];
                        }
            }
}

/* The fast versions keep the output row (x) innermost so the compiler
 * vectorises it, and hoist one weight per (ky, kx) into a register. */
void conv_forward(float *out, const float *in, const float *w, const float *b,
                  int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    for (int o = 0; o < OC; o++) {
        float *restrict op = out + (size_t)o * OH * OW;
        for (int i = 0; i < OH * OW; i++)
            op[i] = b[o];
        for (int c = 0; c < C; c++) {
            const float *ip = in + (size_t)c * H * W;
            const float *wp = w + ((size_t)o * C + c) * K * K;
            for (int y = 0; y < OH; y++) {
                float *restrict orow = op + y * OW;
                for (int ky = 0; ky < K; ky++) {
                    const float *irow = ip + (y + ky) * W;
                    for (int kx = 0; kx < K; kx++) {
                        float wv = wp[ky * K + kx];
                        for (int x = 0; x < OW; x++)
                            orow[x] += wv * irow[x + kx];
                    }
                }
            }
        }
    }
}

void conv_backward(float *din, float *dw, float *db, const float *dout,
                   const float *in, const float *w, int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1;
    if (din)
        memset(din, 0, sizeof(float) * (size_t)C * H * W);
    for (int o = 0; o < OC; o++) {
        const float *gp = dout + (size_t)o * OH * OW;
        float s = 0.0f;
        for (int i = 0; i < OH * OW; i++)
            s += gp[i];
        db[o] += s;
        for (int c = 0; c < C; c++) {
            const float *ip = in + (size_t)c * H * W;
            float *dwp = dw + ((size_t)o * C + c) * K * K;
            const float *wp = w + ((size_t)o * C + c) * K * K;
            float *dip = din ? din + (size_t)c * H * W : NULL;
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    float acc = 0.0f;
                    for (int y = 0; y < OH; y++) {
                        const float *grow = gp + y * OW;
                        const float *irow = ip + (y + ky) * W + kx;
                        for (int x = 0; x < OW; x++)
                            acc += grow[x] * irow[x];
                    }
                    dwp[ky * K + kx] += acc;
                }
            if (dip)
                for (int y = 0; y < OH; y++) {
                    const float *grow = gp + y * OW;
                    for (int ky = 0; ky < K; ky++) {
                        float *restrict drow = dip + (y + ky) * W;
                        for (int kx = 0; kx < K; kx++) {
                            float wv = wp[ky * K + kx];
                            for (int x = 0; x < OW; x++)
                                drow[x + kx] += wv * grow[x];
                        }
                    }
                }
        }
    }
}
