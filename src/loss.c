#include <math.h>

#include "layers.h"

/* Subtracting the maximum keeps exp() finite for any logits. */
static float softmax_with_max(float *probs, const float *logits, int n, float *max_out)
{
    float m = logits[0];
    for (int i = 1; i < n; i++)
        m = logits[i] > m ? logits[i] : m;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        probs[i] = expf(logits[i] - m);
        sum += probs[i];
    }
    for (int i = 0; i < n; i++)
        probs[i] /= sum;
    *max_out = m;
    return sum;
}

void softmax_forward(float *probs, const float *logits, int n)
{
    float m;
    softmax_with_max(probs, logits, n, &m);
}

float softmax_xent(float *probs, float *dlogits, const float *logits, int label, int n)
{
    float m;
    float sum = softmax_with_max(probs, logits, n, &m);
    for (int i = 0; i < n; i++)
        dlogits[i] = probs[i] - (i == label ? 1.0f : 0.0f);
    /* log(softmax) computed from the logits, not from a probability that
     * may have rounded to zero. */
    return (m - logits[label]) + logf(sum);
}
