/* onnx_export.h - writes a trained network as an ONNX model (opset 13,
 * IR version 7) so that any serving stack can run it: ONNX Runtime, OpenCV's
 * dnn module, and so on. The protobuf messages come from Debian's ONNX schema
 * (onnx/onnx.proto) through protobuf-c; the C code is generated at build time
 * into build/gen. docs/serving.md shows how to run the file. */
#ifndef TRAINER_ONNX_EXPORT_H
#define TRAINER_ONNX_EXPORT_H

#include "config.h"
#include "error.h"
#include "network.h"

/* Input "input": float [N,1,S,S] (S = input_size), N free.
 * Default graph: raw pixels 0..255 in, the config's normalisation (per-image
 * z-score by default) as the first nodes, output "probabilities" [N,classes]
 * after a softmax. BARE: the network alone, normalised input in, output
 * "logits" [N,classes]. The trainer version, the config and the input
 * convention travel in the model's metadata_props. PATH is written
 * atomically: a reader sees the old file or the whole new one. */
int onnx_export(const char *path, const config *cfg, const network *net, int bare, tr_error *err);

#endif
