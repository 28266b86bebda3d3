#include "layers.h"

void dense_forward(float *out, const float *in, const float *w, const float *b, int IN, int OUT)
{
    for (int o = 0; o < OUT; o++) {
        const float *wr = w + (size_t)o * IN;
        float s = 0.0f;
        for (int i = 0; i < IN; i++)
            s += wr[i] * in[i];
        out[o] = s + b[o];
    }
}

void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int IN, int OUT)
{
    if (din)
        for (int i = 0; i < IN; i++)
            din[i] = 0.0f;
    for (int o = 0; o < OUT; o++) {
        float g = dout[o];
        float *dwr = dw + (size_t)o * IN;
        const float *wr = w + (size_t)o * IN;
        db[o] += g;
        for (int i = 0; i < IN; i++)
            dwr[i] += g * in[i];
        if (din)
            for (int i = 0; i < IN; i++)
                din[i] += g * wr[i];
    }
}
