/* network.h - the layer stack built from a config: shapes, the parameter
 * layout, and one sample's forward and backward pass.
 *
 * All parameters live in one flat float array (each layer's weights, then
 * its bias, in layer order), and so do gradients and optimizer state: zeroing,
 * reduction, the optimizer step and file I/O are each one loop over it. A
 * net_workspace holds one thread's activations; it is allocated once and
 * reused for every sample. */
#ifndef TRAINER_NETWORK_H
#define TRAINER_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct {
    char name[CONFIG_NAME_MAX];
    int kind, act;
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int k, s;           /* conv: kernel; maxpool: window and stride */
    size_t w_off, b_off; /* into net.params; both 0 for maxpool */
    size_t nweights, nbias;
    size_t in_size, out_size;
    float lr_scale;
    /* Set once by net_create, for the passes that run fused: a ReLU conv
     * whose 2x2 pool (the next layer) its kernel takes from its registers,
     * and a 2x2 pool whose backward pass also sums the conv below's dw and
     * db (conv_pool_weight_grads: the windows' winners only). */
    int pools_in_kernel, conv_grads_in_pool;
} net_layer;

typedef struct {
    int nlayers;
    net_layer layers[CONFIG_MAX_LAYERS];
    /* The same layers as training and prediction run them: each cut to the
     * top-left part of its output that the layers above read. A pool's
     * floor can leave rows and columns no later layer reads, and so can
     * leave the inputs that fed them: the 3x3 network's 11x11 conv2 output
     * is pooled to 5x5 from its first 10x10, which reads 12x12 of pool1's
     * 13x13, and so on down to 26x26 of the 28x28 image. Where the
     * nominal and live shapes are equal (the default network) the two
     * arrays are the same. The kernel flags are each array's own. */
    net_layer live[CONFIG_MAX_LAYERS];
    int crops_input; /* live[0] reads less than the whole image */
    int input_size, classes;
    size_t nparams;
    float *params; /* 64-byte aligned */
} network;

/* Cache-line aligned (and so a whole number of lines long): the threads'
 * workspaces sit side by side in one array, and every layer of every
 * sample swaps dcur and dnext, which, sharing a line with the next
 * thread's acts, made that thread wait for the line at each layer. */
typedef struct {
    _Alignas(64) float *acts[CONFIG_MAX_LAYERS + 1]; /* acts[0]: input; acts[i+1]: layer i's output */
    int32_t *argmax[CONFIG_MAX_LAYERS];
    float *cropped;      /* the image's top-left part, where crops_input */
    float *dcur, *dnext; /* input gradients, ping-ponged through the layers */
    float *probs;
    void *block; /* the single allocation behind the pointers above */
} net_workspace;

/* Builds the layer stack, checking every shape; an impossible stack is
 * refused with a message naming the layer. Parameters start at zero. */
int net_create(network *net, const config *cfg, tr_error *err);
void net_free(network *net);

/* Uniform initial weights (bound from fan-in/fan-out as INIT says) and zero
 * biases, drawn from the counter-based RNG: the same seed, the same bytes. */
void net_init_params(network *net, int init, uint64_t seed);

int net_workspace_create(net_workspace *ws, const network *net, tr_error *err);
void net_workspace_free(net_workspace *ws);

/* One workspace per thread, as an array of N. */
net_workspace *net_workspaces_create(const network *net, int n, tr_error *err);
void net_workspaces_free(net_workspace *ws, int n);

/* Forward pass of ws->acts[0] (already filled with the normalised input)
 * through the nominal shapes, every layer's whole output kept (the
 * report's feature maps). Returns the logits (ws->acts[nlayers]). */
const float *net_forward(const network *net, net_workspace *ws);
/* net_forward for predictions only, through the live shapes: the outputs
 * of a conv whose pool is fused into its kernel are not kept, nor that
 * pool's argmax (a backward pass needs it). The same logits up to
 * rounding: a cut shape may take another kernel, and not every kernel
 * gives the reference's bits (the general 8-lane forward's last odd
 * filter is not contracted to FMAs); training and evaluation both run
 * the live shapes, so they agree bit for bit. */
const float *net_predict(const network *net, net_workspace *ws);

/* Forward and backward for one labelled sample in ws->acts[0]: adds this
 * sample's parameter gradients into GRAD (nparams floats) and returns its
 * loss. *predicted gets the arg-max class. */
float net_train_sample(const network *net, const float *params, net_workspace *ws, int label,
                       float *grad, int *predicted);

/* One line naming each layer's kernels as training runs them (the live
 * shapes), e.g. "conv1 vec512, pool1 vec128, ...": "loops" marks a layer
 * that runs the slow plain code. */
void net_kernel_summary(const network *net, char *buf, size_t size);

/* Floating-point operations (2 per multiply-add) of one training sample's
 * forward and backward pass through the conv and dense layers: what the
 * benchmark divides by. 1,704,960 for the default network. */
double net_train_flops(const network *net);
/* The same through the live shapes: the work the passes do (the winners'
 * weight gradients aside, counted dense here too). */
double net_live_train_flops(const network *net);

/* The same layers with the same shapes, activations and parameter count:
 * the weights of one fit the other (a warm start, a resume). */
int net_same_architecture(const network *a, const network *b);

/* Arg-max over probs, first index on ties. */
int net_argmax(const float *x, int n);

#endif
