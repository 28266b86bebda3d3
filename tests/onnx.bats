#!/usr/bin/env bats
# trainer export: the ONNX file, checked by runtimes nobody here wrote.
# ONNX Runtime (npm onnxruntime-node, installed by `make test` into
# tests/onnx/node_modules) runs it on all 10,000 real test images; Debian's
# python3-onnx checker and python3-opencv's dnn module read it too. Those
# checks run in the test flavour only: they measure the exported file, not
# the trainer's memory safety, and the export itself runs in both flavours.

load helpers

setup_file() {
    fixtures
    O=$BATS_FILE_TMPDIR/onnx
    mkdir -p "$O/default" "$O/deep"
    # The default network, and a wider and deeper one (more filters, a
    # hidden dense layer) that normalises with the dataset's mean and
    # deviation instead of each image's, each trained briefly on the fixtures.
    cat >"$O/deep.ini" <<'INI'
[layer.conv1]
type = conv
filters = 12
size = 3
[layer.conv2]
type = conv
filters = 16
size = 3
[layer.pool1]
type = maxpool
size = 2
[layer.conv3]
type = conv
filters = 24
size = 3
[layer.pool2]
type = maxpool
size = 3
stride = 2
[layer.hidden]
type = dense
outputs = 32
activation = relu
[layer.fc]
type = dense
outputs = 10
INI
    train_small "$O/default" -q >"$O/default/train.out" 2>&1 || echo "default: $?" >>"$O/train.rc"
    local -a ARGS
    small_argv "$O/deep"
    # ARGS[0] is the default config; the deep one is read over it.
    "$TRAINER" train "$O/deep.ini" "${ARGS[@]:1}" --set data.normalize=dataset -q >"$O/deep/train.out" 2>&1 ||
        echo "deep: $?" >>"$O/train.rc"
    [ "$FLAVOUR" = asan ] && return
    for net in default deep; do
        "$TRAINER" predict "$O/$net/m.model" "$MNIST/t10k-images-idx3-ubyte.gz" --json >"$O/$net/predict.jsonl" ||
            echo "predict $net: $?" >>"$O/train.rc"
    done
}

setup() {
    O=$BATS_FILE_TMPDIR/onnx
    D=$BATS_TEST_TMPDIR
    [ ! -e "$O/train.rc" ] || fail "setup failed: $(cat "$O/train.rc")"
}

needs_runtimes() {
    [ "$FLAVOUR" = asan ] && skip "outside runtimes run in the test flavour only"
    [ -d "$ROOT/tests/onnx/node_modules/onnxruntime-node" ] || fail "onnxruntime-node is missing: run make test-deps"
}

@test "export writes the ONNX file atomically, with the trainer version and config in its metadata" {
    run --separate-stderr "$TRAINER" export "$O/default/m.model" "$D/m.onnx"
    assert_status 0
    assert_contains "$output" "$D/m.onnx"
    assert_contains "$output" "probabilities"
    [ -s "$D/m.onnx" ]
    # protobuf strings are stored as they are: the metadata can be seen
    grep -qa "trainer_version" "$D/m.onnx"
    grep -qa "$(sed -n 's/^#define TRAINER_VERSION "\(.*\)"/\1/p' "$ROOT/include/version.h")" "$D/m.onnx"
    grep -qa "\[layer.conv1\]" "$D/m.onnx"
    run --separate-stderr "$TRAINER" export "$O/default/m.model" "$D/bare.onnx" --bare
    assert_status 0
    assert_contains "$output" "logits"
    # the same weights, a different graph
    ! cmp -s "$D/m.onnx" "$D/bare.onnx"
    [ -z "$(find "$D" -name '*.tmp.*')" ] || fail "temp files left: $(find "$D" -name '*.tmp.*')"
    # the same model, the same bytes
    "$TRAINER" export "$O/default/m.model" "$D/again.onnx" -q
    assert_same_file "$D/m.onnx" "$D/again.onnx"
}

@test "export: a bad model or an unwritable output is one line and leaves the old file alone" {
    "$TRAINER" export "$O/default/m.model" "$D/m.onnx" -q
    cp "$D/m.onnx" "$D/before.onnx"
    printf 'not a model' >"$D/bad.model"
    run --separate-stderr "$TRAINER" export "$D/bad.model" "$D/m.onnx"
    assert_status 2
    assert_one_error_line "$D/bad.model"
    assert_same_file "$D/m.onnx" "$D/before.onnx"
    run --separate-stderr "$TRAINER" export "$O/default/m.model" "$D/no/such/dir/m.onnx"
    [ "$status" -ne 0 ]
    assert_one_error_line "$D/no/such/dir/m.onnx"
    run --separate-stderr "$TRAINER" export "$O/default/m.model"
    assert_status 2
    assert_one_error_line "export MODEL OUT.onnx"
}

# runtime_agrees NET [--bare]: ONNX Runtime on all 10,000 test images against
# trainer predict --json; sets AGREE and DIFF.
runtime_agrees() {
    local net=$1 flag=${2:-} onnx=$D/$1${2:+-bare}.onnx
    "$TRAINER" export "$O/$net/m.model" "$onnx" $flag -q
    run node "$ROOT/tests/onnx/compare.js" "$onnx" "$MNIST/t10k-images-idx3-ubyte.gz" "$O/$net/predict.jsonl" $flag
    assert_status 0
    printf '# %s%s: %s\n' "$net" "${flag:+ $flag}" "$output" >&3
    [[ $output =~ ^images\ 10000\ argmax_agree\ ([0-9]+)\ max_abs_diff\ ([0-9.e+-]+)\ batches\ [0-9]+$ ]] ||
        fail "unexpected output: $output"
    AGREE=${BASH_REMATCH[1]}
    DIFF=${BASH_REMATCH[2]}
    [ "$AGREE" -eq 10000 ] || fail "ONNX Runtime and predict disagree on $((10000 - AGREE)) images"
    awk -v d="$DIFF" 'BEGIN { exit !(d < 1e-5) }' || fail "probabilities differ by up to $DIFF"
}

@test "ONNX Runtime: the default network gives predict's class on all 10,000 test images, probabilities within 1e-5" {
    needs_runtimes
    runtime_agrees default
    runtime_agrees default --bare
}

@test "ONNX Runtime: so does a wider, deeper network (3 convs, a hidden dense layer, dataset normalisation)" {
    needs_runtimes
    runtime_agrees deep
}

@test "the ONNX checker accepts both exports of both networks; OpenCV's dnn runs the bare ones" {
    needs_runtimes
    for net in default deep; do
        "$TRAINER" export "$O/$net/m.model" "$D/$net.onnx" -q
        "$TRAINER" export "$O/$net/m.model" "$D/$net-bare.onnx" --bare -q
        run --separate-stderr "$PY" "$ROOT/tests/onnx/check.py" "$D/$net.onnx" "$D/$net-bare.onnx" \
            "$MNIST/t10k-images-idx3-ubyte.gz" "$O/$net/predict.jsonl" 2000
        assert_status 0
        printf '# %s: %s\n' "$net" "${output//$'\n'/; }" >&3
        [[ $output =~ opencv\ [0-9.]+\ bare\ \([a-z]+\):\ images\ 2000\ argmax_agree\ 2000\ max_abs_diff\ ([0-9.e+-]+) ]] ||
            fail "OpenCV disagrees: $output"
        awk -v d="${BASH_REMATCH[1]}" 'BEGIN { exit !(d < 1e-5) }' || fail "OpenCV differs by ${BASH_REMATCH[1]}"
    done
}
