#include "onnx_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "data.h"
#include "files.h"
#include "onnx/onnx.pb-c.h"
#include "version.h"

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7 /* ONNX 1.8: read by every runtime that reads opset 13 */

/* The graph is small and its size is known from the layer count, so every
 * message lives in fixed pools inside one heap block: nothing to free node
 * by node, and the message structs point into the pools (and, for weights,
 * straight into net->params: packing only reads them). */
#define MAX_NODES (4 * CONFIG_MAX_LAYERS + 16)
#define MAX_TENSORS (2 * CONFIG_MAX_LAYERS + 8)
#define MAX_ATTRS (3 * MAX_NODES)
#define MAX_NAMES (2 * MAX_NODES + MAX_TENSORS)
#define NAME_LEN (CONFIG_NAME_MAX + 24)

typedef struct {
    Onnx__NodeProto nodes[MAX_NODES];
    Onnx__NodeProto *node_ptrs[MAX_NODES];
    char *node_io[MAX_NODES][4]; /* each node's inputs, then its outputs */
    int nnodes;
    Onnx__AttributeProto attrs[MAX_ATTRS];
    Onnx__AttributeProto *attr_ptrs[MAX_ATTRS];
    int64_t attr_ints[MAX_ATTRS][4];
    int nattrs;
    Onnx__TensorProto tensors[MAX_TENSORS];
    Onnx__TensorProto *tensor_ptrs[MAX_TENSORS];
    int64_t tensor_dims[MAX_TENSORS][4];
    float tensor_scalar[MAX_TENSORS]; /* the data of one-value tensors */
    int ntensors;
    char names[MAX_NAMES][NAME_LEN];
    int nnames;
    int overflow; /* a pool ran out: a bug, reported rather than written */
} graph_builder;

static char *name_of(graph_builder *b, const char *prefix, const char *suffix)
{
    if (b->nnames == MAX_NAMES) {
        b->overflow = 1;
        return b->names[0];
    }
    char *s = b->names[b->nnames++];
    snprintf(s, NAME_LEN, "%s%s", prefix, suffix);
    return s;
}

/* Adds a node reading IN (NIN names) and writing one output, OUT. */
static Onnx__NodeProto *add_node(graph_builder *b, const char *op, char *const *in, int nin, char *out,
                                 const char *node_name)
{
    if (b->nnodes == MAX_NODES || nin > 3) {
        b->overflow = 1;
        return &b->nodes[0];
    }
    int i = b->nnodes++;
    Onnx__NodeProto *n = &b->nodes[i];
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    for (int k = 0; k < nin; k++)
        b->node_io[i][k] = in[k];
    b->node_io[i][nin] = out;
    n->n_input = (size_t)nin;
    n->input = b->node_io[i];
    n->n_output = 1;
    n->output = &b->node_io[i][nin];
    n->op_type = (char *)op;
    n->name = (char *)node_name; /* a literal, a layer name or a pool name: all outlive packing */
    b->node_ptrs[i] = n;
    return n;
}

/* Attributes of one node must be added right after it: they are a
 * contiguous run of attr_ptrs. */
static Onnx__AttributeProto *add_attr(graph_builder *b, Onnx__NodeProto *n, const char *name)
{
    if (b->nattrs == MAX_ATTRS) {
        b->overflow = 1;
        return &b->attrs[0];
    }
    int i = b->nattrs++;
    Onnx__AttributeProto *a = &b->attrs[i];
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    b->attr_ptrs[i] = a;
    if (!n->n_attribute)
        n->attribute = &b->attr_ptrs[i];
    n->n_attribute++;
    return a;
}

static void attr_int(graph_builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = add_attr(b, n, name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
}

/* COUNT (up to 4) ints: V0, V1, then V0, V1 again (pads: begins, ends). */
static void attr_ints(graph_builder *b, Onnx__NodeProto *n, const char *name, int64_t v0, int64_t v1,
                      int count)
{
    Onnx__AttributeProto *a = add_attr(b, n, name);
    int64_t *v = b->attr_ints[a - b->attrs];
    v[0] = v0;
    v[1] = v1;
    v[2] = v0;
    v[3] = v1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = v;
}

/* axes = [1, 2, 3]: all of one image. */
static void attr_axes_chw(graph_builder *b, Onnx__NodeProto *n)
{
    attr_ints(b, n, "axes", 1, 2, 3);
    b->attr_ints[b->nattrs - 1][2] = 3;
}

/* A float initializer of NDIMS dims (up to 4) over DATA; a one-value
 * tensor (ndims 0, a scalar) copies VALUE instead. Returns its name. */
static char *add_tensor(graph_builder *b, const char *name, const int64_t *dims, int ndims, const float *data,
                        size_t count, float value)
{
    if (b->ntensors == MAX_TENSORS || ndims > 4) {
        b->overflow = 1;
        return b->names[0];
    }
    int i = b->ntensors++;
    Onnx__TensorProto *t = &b->tensors[i];
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    for (int k = 0; k < ndims; k++)
        b->tensor_dims[i][k] = dims[k];
    t->n_dims = (size_t)ndims;
    t->dims = b->tensor_dims[i];
    if (!data) {
        b->tensor_scalar[i] = value;
        data = &b->tensor_scalar[i];
        count = 1;
    }
    t->n_float_data = count;
    t->float_data = (float *)data; /* packing only reads it */
    b->tensor_ptrs[i] = t;
    return t->name;
}

/* The config's input normalisation as nodes, from "input" (raw 0..255) to
 * the returned tensor name. Mirrors data_normalize(). */
static char *add_normalization(graph_builder *b, const config *cfg)
{
    char *x = "input";
    if (cfg->normalize != NORM_ZSCORE) {
        /* scale and dataset are affine maps a*x + c; data_normalize itself
         * tells a and c, so the constants are not copied here. */
        const uint8_t probe[2] = { 0, 255 };
        float f[2];
        data_normalize(f, probe, 2, cfg->normalize);
        char *in_a[2] = { x, add_tensor(b, "norm_scale", NULL, 0, NULL, 0, (f[1] - f[0]) / 255.0f) };
        char *scaled = name_of(b, "norm_scaled", "");
        add_node(b, "Mul", in_a, 2, scaled, "norm_mul");
        char *in_c[2] = { scaled, add_tensor(b, "norm_offset", NULL, 0, NULL, 0, f[0]) };
        char *out = name_of(b, "normalized", "");
        add_node(b, "Add", in_c, 2, out, "norm_add");
        return out;
    }
    /* Per image: (x - mean) / std over C,H,W, as data_normalize does. The
     * variance is the mean square of the centred pixels, which float32
     * computes without cancellation. data_normalize leaves an image whose
     * variance is at most 1e-6 at 0; here 1e-12 is added to the variance
     * instead, which gives the same 0 for a blank image (its centred pixels
     * are 0) and needs neither Where nor Max, which OpenCV's importer lacks.
     * Whole-number pixels give any other image a variance of at least
     * 1/784 - 1/784^2, to which adding 1e-12 changes no float32 bit. */
    char *mean = name_of(b, "norm_mean", "");
    Onnx__NodeProto *n = add_node(b, "ReduceMean", &x, 1, mean, "norm_reduce_mean");
    attr_axes_chw(b, n);
    attr_int(b, n, "keepdims", 1);
    char *centred = name_of(b, "norm_centred", "");
    char *sub_in[2] = { x, mean };
    add_node(b, "Sub", sub_in, 2, centred, "norm_sub");
    char *sq = name_of(b, "norm_square", "");
    char *sq_in[2] = { centred, centred };
    add_node(b, "Mul", sq_in, 2, sq, "norm_square");
    char *var = name_of(b, "norm_var", "");
    n = add_node(b, "ReduceMean", &sq, 1, var, "norm_reduce_var");
    attr_axes_chw(b, n);
    attr_int(b, n, "keepdims", 1);
    char *floor_var = name_of(b, "norm_var_safe", "");
    char *add_in[2] = { var, add_tensor(b, "norm_var_epsilon", NULL, 0, NULL, 0, 1e-12f) };
    add_node(b, "Add", add_in, 2, floor_var, "norm_add_epsilon");
    char *sd = name_of(b, "norm_std", "");
    add_node(b, "Sqrt", &floor_var, 1, sd, "norm_sqrt");
    char *safe = name_of(b, "norm_inv_std", "");
    add_node(b, "Reciprocal", &sd, 1, safe, "norm_reciprocal");
    char *out = name_of(b, "normalized", "");
    char *mul_in[2] = { centred, safe };
    add_node(b, "Mul", mul_in, 2, out, "norm_mul");
    return out;
}

/* The layers, from X to the returned logits name. */
static char *add_layers(graph_builder *b, const network *net, char *x)
{
    int flat = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const net_layer *l = &net->layers[i];
        char *out = name_of(b, l->name, i + 1 == net->nlayers && l->act != ACT_RELU ? "_logits" : "_out");
        Onnx__NodeProto *n;
        switch (l->kind) {
        case LAYER_CONV: {
            int64_t wd[4] = { l->out_c, l->in_c, l->k, l->k }, bd[1] = { l->out_c };
            char *in[3] = { x, add_tensor(b, name_of(b, l->name, ".weight"), wd, 4, net->params + l->w_off, l->nweights, 0),
                            add_tensor(b, name_of(b, l->name, ".bias"), bd, 1, net->params + l->b_off, l->nbias, 0) };
            n = add_node(b, "Conv", in, 3, out, l->name);
            attr_ints(b, n, "kernel_shape", l->k, l->k, 2);
            attr_ints(b, n, "strides", 1, 1, 2);
            attr_ints(b, n, "pads", 0, 0, 4);
            break;
        }
        case LAYER_MAXPOOL:
            n = add_node(b, "MaxPool", &x, 1, out, l->name);
            attr_ints(b, n, "kernel_shape", l->k, l->k, 2);
            attr_ints(b, n, "strides", l->s, l->s, 2);
            break;
        case LAYER_DENSE: {
            if (!flat) { /* (C,H,W) in the order the weights were trained on */
                char *flattened = name_of(b, l->name, "_flat");
                n = add_node(b, "Flatten", &x, 1, flattened, name_of(b, l->name, "_flatten"));
                attr_int(b, n, "axis", 1);
                x = flattened;
                flat = 1;
            }
            int64_t wd[2] = { l->out_c, (int64_t)l->in_size }, bd[1] = { l->out_c };
            char *in[3] = { x, add_tensor(b, name_of(b, l->name, ".weight"), wd, 2, net->params + l->w_off, l->nweights, 0),
                            add_tensor(b, name_of(b, l->name, ".bias"), bd, 1, net->params + l->b_off, l->nbias, 0) };
            n = add_node(b, "Gemm", in, 3, out, l->name);
            attr_int(b, n, "transB", 1);
            break;
        }
        }
        x = out;
        if (l->act == ACT_RELU) {
            out = name_of(b, l->name, i + 1 == net->nlayers ? "_logits" : "_relu");
            add_node(b, "Relu", &x, 1, out, name_of(b, l->name, "_relu"));
            x = out;
        }
    }
    return x;
}

/* A float tensor type [N, d1, d2, d3] (ndims 4) or [N, d1] (ndims 2). */
typedef struct {
    Onnx__ValueInfoProto info;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dims[4];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[4];
} value_info;

static void value_info_init(value_info *v, char *name, char *doc, int ndims, const int64_t *dims)
{
    v->info = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->type = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    v->tensor = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    v->shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    for (int k = 0; k < ndims; k++) {
        v->dims[k] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (k == 0) {
            v->dims[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            v->dims[k].dim_param = "N";
        } else {
            v->dims[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            v->dims[k].dim_value = dims[k];
        }
        v->dim_ptrs[k] = &v->dims[k];
    }
    v->shape.n_dim = (size_t)ndims;
    v->shape.dim = v->dim_ptrs;
    v->tensor.has_elem_type = 1;
    v->tensor.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    v->tensor.shape = &v->shape;
    v->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type.tensor_type = &v->tensor;
    v->info.name = name;
    v->info.doc_string = doc;
    v->info.type = &v->type;
}

static const char *norm_description(int normalize)
{
    switch (normalize) {
    case NORM_SCALE:
        return "pixels / 255";
    case NORM_DATASET:
        return "(pixels / 255 - 0.1307) / 0.3081";
    default:
        return "per image: (pixels - mean) / standard deviation over the image, 0 for a blank image";
    }
}

/* The two texts the file carries: the model's config, and what the input
 * is (raw pixels, or already normalised for the bare graph). */
static int describe(const char *path, const config *cfg, const network *net, int bare, char **cfg_text,
                    char **input_doc, tr_error *err)
{
    size_t cfg_len = 0, doc_len = 0;
    FILE *mem = open_memstream(cfg_text, &cfg_len);
    if (!mem || config_write(cfg, mem, 0) != 0 || fclose(mem) != 0)
        return tr_fail(err, TR_ERUNTIME, "%s: cannot format the model's config", path);
    mem = open_memstream(input_doc, &doc_len);
    if (!mem)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    if (bare)
        fprintf(mem, "float [N,1,%d,%d], white digit on black, already normalised: %s", net->input_size,
                net->input_size, norm_description(cfg->normalize));
    else
        fprintf(mem, "float [N,1,%d,%d]: raw pixel values 0..255, white digit on black, MNIST-centred; "
                     "the graph normalises them (%s)",
                net->input_size, net->input_size, norm_description(cfg->normalize));
    if (fclose(mem) != 0)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    return 0;
}

/* The nodes: normalisation (unless bare), the layers, then softmax or the
 * logits as they are. Returns the output's name. */
static char *build_graph(graph_builder *b, const config *cfg, const network *net, int bare)
{
    char *x = bare ? "input" : add_normalization(b, cfg);
    x = add_layers(b, net, x);
    char *result = bare ? "logits" : "probabilities";
    if (bare) {
        add_node(b, "Identity", &x, 1, result, "output");
    } else {
        Onnx__NodeProto *n = add_node(b, "Softmax", &x, 1, result, "softmax");
        attr_int(b, n, "axis", 1);
    }
    return result;
}

static int pack_and_publish(const char *path, const Onnx__ModelProto *model, tr_error *err)
{
    size_t size = onnx__model_proto__get_packed_size(model);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory for %zu bytes", path, size);
    int rc = -1;
    if (onnx__model_proto__pack(model, buf) != size)
        tr_fail(err, TR_ERUNTIME, "%s: protobuf-c packed a different size than it measured", path);
    else
        rc = atomic_write_file(path, buf, size, err);
    free(buf);
    return rc;
}

/* The graph's inputs and outputs, opset, metadata and the model around
 * the built nodes, written to PATH. */
static int write_model(const char *path, graph_builder *b, const network *net, int bare, char *result,
                       const char *cfg_text, char *input_doc, tr_error *err)
{
    value_info in, outv;
    int64_t in_dims[4] = { 0, 1, net->input_size, net->input_size }, out_dims[2] = { 0, net->classes };
    value_info_init(&in, "input", input_doc, 4, in_dims);
    value_info_init(&outv, result,
                    bare ? "float [N,classes]: logits (apply softmax for probabilities)"
                         : "float [N,classes]: class probabilities",
                    2, out_dims);
    Onnx__ValueInfoProto *inputs[1] = { &in.info }, *outputs[1] = { &outv.info };

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = bare ? "trainer_cnn_bare" : "trainer_cnn";
    graph.n_node = (size_t)b->nnodes;
    graph.node = b->node_ptrs;
    graph.n_initializer = (size_t)b->ntensors;
    graph.initializer = b->tensor_ptrs;
    graph.n_input = 1;
    graph.input = inputs;
    graph.n_output = 1;
    graph.output = outputs;

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = { &opset };
    opset.domain = "";
    opset.has_version = 1;
    opset.version = ONNX_OPSET;

    Onnx__StringStringEntryProto meta[4], *meta_ptrs[4];
    const char *meta_kv[4][2] = {
        { "trainer_version", TRAINER_VERSION },
        { "config", cfg_text },
        { "input", input_doc },
        { "normalization", bare ? "not in the graph: normalise the input first" : "in the graph" },
    };
    for (int k = 0; k < 4; k++) {
        meta[k] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        meta[k].key = (char *)meta_kv[k][0];
        meta[k].value = (char *)meta_kv[k][1];
        meta_ptrs[k] = &meta[k];
    }

    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = ONNX_IR_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "trainer";
    model.producer_version = TRAINER_VERSION;
    model.doc_string = bare ? "MNIST CNN trained by trainer: normalised input -> logits"
                            : "MNIST CNN trained by trainer: raw pixels -> class probabilities";
    model.graph = &graph;
    model.n_metadata_props = 4;
    model.metadata_props = meta_ptrs;
    return pack_and_publish(path, &model, err);
}

int onnx_export(const char *path, const config *cfg, const network *net, int bare, tr_error *err)
{
    int rc = -1;
    char *cfg_text = NULL, *input_doc = NULL;
    graph_builder *b = calloc(1, sizeof *b);
    if (!b)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    if (describe(path, cfg, net, bare, &cfg_text, &input_doc, err) == 0) {
        char *result = build_graph(b, cfg, net, bare);
        if (b->overflow)
            tr_fail(err, TR_ERUNTIME, "%s: the graph outgrew the exporter's fixed pools", path);
        else
            rc = write_model(path, b, net, bare, result, cfg_text, input_doc, err);
    }
    free(cfg_text);
    free(input_doc);
    free(b);
    return rc;
}
