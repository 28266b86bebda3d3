#include "layers.h"

void relu_forward(float *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(float *dout, const float *out, int n)
{
    for (int i = 0; i < n; i++)
        dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}
