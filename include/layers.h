/* layers.h - the kernels of one sample's forward and backward pass.
 *
 * Tensors are contiguous float arrays in (channels, height, width) order.
 * Backward functions ADD into parameter gradients (dw, db), so a block of
 * samples can accumulate into one buffer, and WRITE the input gradient din
 * (which may be NULL for the first layer). No function allocates or updates
 * weights: the optimizer changes weights only after the whole batch. */
#ifndef TRAINER_LAYERS_H
#define TRAINER_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* conv.c: valid (unpadded) convolution, stride 1.
 * in (C,H,W), w (OC,C,K,K), b (OC), out (OC,H-K+1,W-K+1). */
void conv_forward(float *out, const float *in, const float *w, const float *b,
                  int C, int H, int W, int OC, int K);
void conv_backward(float *din, float *dw, float *db, const float *dout,
                   const float *in, const float *w, int C, int H, int W, int OC, int K);
/* conv_forward followed by ReLU, in one pass over the output. */
void conv_relu_forward(float *out, const float *in, const float *w, const float *b,
                       int C, int H, int W, int OC, int K);
/* conv_relu_forward, then maxpool_forward with 2x2 windows of stride 2 on
 * its output (pooled and argmax as maxpool_forward's out and argmax), the
 * same bits. Where conv_relu_pool_fused says so, the pool is taken from the
 * kernel's registers, OUT may be NULL (the pool's input is not stored) and
 * so may ARGMAX (no backward pass to follow: the maxima only); elsewhere
 * both are needed. */
void conv_relu_pool_forward(float *out, float *pooled, int32_t *argmax, const float *in, const float *w,
                            const float *b, int C, int H, int W, int OC, int K);
int conv_relu_pool_fused(int C, int H, int W, int OC, int K);
/* conv_pool.c: the dw and db that conv_backward adds for a ReLU conv whose
 * output went into a 2x2 max pool of stride 2 only, from the pool's
 * gradient, argmax and output (dpool, argmax, pooled: (OC, OH/2, OW/2)).
 * The same sums as maxpool2x2_relu_backward then conv_backward up to
 * rounding, but of the windows' winners only: the other outputs'
 * gradients are zeros. Any shape; where conv_pool_weight_grads_fast says
 * so, with 512-bit vectors, else plain loops. conv_backward takes DW NULL
 * for din alone. */
void conv_pool_weight_grads(float *dw, float *db, const float *dpool, const int32_t *argmax, const float *pooled,
                            const float *in, int C, int H, int W, int OC, int K);
int conv_pool_weight_grads_fast(int C, int H, int W, int OC, int K);
/* "vec512-winners" where conv_pool_weight_grads_fast, else "loops". */
const char *conv_pool_weight_grads_path(int C, int H, int W, int OC, int K);
/* Names the kernels conv_forward and conv_backward take for a shape (HAS_DIN:
 * whether the backward pass computes din; HAS_DW: dw, or din alone), e.g.
 * "vec512" or "forward tiled-w24, backward vec256"; "loops" is the slow
 * plain path. */
void conv_kernel_path(char *buf, size_t size, int has_din, int has_dw, int C, int H, int W, int OC, int K);
/* The plain six-loop versions: the oracle that tests hold the fast ones to. */
void conv_forward_ref(float *out, const float *in, const float *w, const float *b,
                      int C, int H, int W, int OC, int K);
void conv_backward_ref(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int C, int H, int W, int OC, int K);

/* activation.c: in place; backward masks dout where the output was <= 0. */
void relu_forward(float *x, int n);
void relu_backward(float *dout, const float *out, int n);

/* maxpool.c: window K, stride S, no padding; out (C,OH,OW) with
 * OH = (H-K)/S+1. argmax records, per output, the input index that won: the
 * first maximum in row-major order, so exactly one input receives the
 * gradient even when maxima tie (as they do on MNIST's flat background). */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int C, int H, int W, int K, int S);
void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int in_size, int out_size);
/* maxpool_relu_backward for 2x2 windows of stride 2 on a C x H x W input,
 * the same bits in one pass that writes each din element once (no memset,
 * no scatter whose loads wait on it). It reads the ReLU mask from POOLED,
 * the pool's output (or its ReLU: the sign is the same), a quarter of the
 * input: an input that won its window has the window's value. */
void maxpool2x2_relu_backward(float *din, const float *dout, const int32_t *argmax, const float *pooled,
                              int C, int H, int W);
/* The kernel each pass of a pool on an H x W input takes (maxpool_forward,
 * maxpool2x2_relu_backward), e.g. "vec512", "vec256"; "loops" for windows
 * other than 2x2 of stride 2. */
const char *maxpool_forward_kernel_path(int K, int S);
const char *maxpool_backward_kernel_path(int K, int S, int H, int W);
/* maxpool_backward, then relu_backward(din, in, in_size) in the same pass:
 * for a pool whose input IN is a ReLU output. */
void maxpool_relu_backward(float *din, const float *dout, const int32_t *argmax, const float *in,
                           int in_size, int out_size);

/* dense.c: in (IN), w (OUT,IN), b (OUT), out (OUT). */
void dense_forward(float *out, const float *in, const float *w, const float *b, int IN, int OUT);
void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int IN, int OUT);
/* "vec256" where dense_forward's dot products use vectors, else "loops". */
const char *dense_kernel_path(void);

/* loss.c: softmax over n logits into probs (stable for any logits). */
void softmax_forward(float *probs, const float *logits, int n);
/* Softmax, then returns the cross-entropy of LABEL and writes
 * dlogits = probs - onehot(label). */
float softmax_xent(float *probs, float *dlogits, const float *logits, int label, int n);

#endif
