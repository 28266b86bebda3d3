"""Checks ONNX files that `trainer export` wrote with Debian's python3-onnx
and python3-opencv, software nobody here wrote.

  check.py DEFAULT.onnx BARE.onnx IMAGES.idx[.gz] PREDICT.jsonl COUNT

The ONNX checker (full check, with shape inference) must accept both files;
both declare opset >= 13, a free batch dimension and the trainer's metadata.
OpenCV's dnn module loads the bare export and runs it on the first COUNT
images (normalised here as the config in its metadata says); its softmax is compared with
what `trainer predict --json` printed. Prints figures; exits 1 on failure.
"""
import gzip
import json
import re
import sys

import cv2
import numpy as np
import onnx


def fail(msg):
    print(f"check.py: {msg}", file=sys.stderr)
    sys.exit(1)


def check_file(path, want_output):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        fail(f"{path}: opset {opset} < 13")
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("trainer_version", "config"):
        if not meta.get(key):
            fail(f"{path}: no {key} in metadata_props")
    if "[layer." not in meta["config"]:
        fail(f"{path}: the config in the metadata has no layers")
    (inp,) = model.graph.input
    (out,) = model.graph.output
    if out.name != want_output:
        fail(f"{path}: output is {out.name}, want {want_output}")
    for v in (inp, out):
        batch = v.type.tensor_type.shape.dim[0]
        if not batch.dim_param or batch.HasField("dim_value"):
            fail(f"{path}: {v.name}'s batch dimension is fixed")
    print(f"checker ok: {path} opset {opset} ir {model.ir_version} version {meta['trainer_version']}")
    return meta


def main():
    default, bare, images, predictions, count = sys.argv[1:6]
    count = int(count)
    check_file(default, "probabilities")
    meta = check_file(bare, "logits")
    norm = re.search(r"^normalize = (\w+)$", meta["config"], re.M).group(1)

    opener = gzip.open if images.endswith(".gz") else open
    with opener(images, "rb") as f:
        raw = f.read()
    n, rows, cols = np.frombuffer(raw[4:16], dtype=">u4")
    x = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, rows, cols)[:count].astype(np.float64)
    if norm == "zscore":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        var = (x * x).mean(axis=(1, 2, 3), keepdims=True) - mean * mean
        inv = np.where(var > 1e-6, 1 / np.sqrt(np.maximum(var, 1e-12)), 0)
        blob = ((x - mean) * inv).astype(np.float32)
    elif norm == "scale":
        blob = (x / 255).astype(np.float32)
    else:  # dataset: MNIST's mean and deviation, as data.c
        blob = ((x / 255 - 0.1307) / 0.3081).astype(np.float32)

    net = cv2.dnn.readNetFromONNX(bare)
    net.setInput(blob)
    logits = net.forward().astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    with open(predictions) as f:
        want = [json.loads(line) for line in f][:count]
    want_p = np.array([w["probabilities"] for w in want])
    agree = int((p.argmax(axis=1) == np.array([w["class"] for w in want])).sum())
    diff = float(np.abs(p - want_p).max())
    print(f"opencv {cv2.__version__} bare ({norm}): images {count} argmax_agree {agree} max_abs_diff {diff:.3e}")

    # The default graph too, where this OpenCV can (its ONNX importer does
    # not know every operator): reported, not required.
    try:
        net = cv2.dnn.readNetFromONNX(default)
        net.setInput(x.astype(np.float32))
        q = net.forward().astype(np.float64)
        print(f"opencv default: max_abs_diff {float(np.abs(q - want_p).max()):.3e}")
    except cv2.error:
        print("opencv default: this OpenCV's importer refuses the normalisation nodes")


main()
