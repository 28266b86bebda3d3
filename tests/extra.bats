#!/usr/bin/env bats
# data.extra: a directory of NAME-images-idx3-ubyte[.gz] / NAME-labels-idx1-
# ubyte[.gz] pairs appended to the training set in name order; the same
# weights as one file holding them all, the same bytes for any thread count;
# every extra file in the provenance and the fingerprint; a bad drop fails
# with one line naming the file, before anything is written.

load helpers

setup_file() {
    fixtures
}

setup() {
    D=$BATS_TEST_TMPDIR
}

jget() { # EXPR: a Python expression over `d`, the JSON on stdin
    "$PY" -c 'import json, sys; d = json.load(sys.stdin); v = eval(sys.argv[1]); print("null" if v is None else v)' "$1"
}

# Writes images [FROM, TO) of the fixtures' training set as an IDX pair
# PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte, gzipped unless
# MODE is plain; MODE small writes 14x14 images (the top-left corner).
cut_pair() { # FROM TO PREFIX [gz|plain|small]
    "$PY" - "$FIXTURES" "$@" <<'EOF2'
import gzip, struct, sys
src, a, b, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "gz"
with gzip.open(f"{src}/train-images.gz") as f:
    img = f.read()
with gzip.open(f"{src}/train-labels.gz") as f:
    lab = f.read()
n = b - a
side = 14 if mode == "small" else 28
px = b"".join(bytes(img[16 + (a + i) * 784 + r * 28: 16 + (a + i) * 784 + r * 28 + side])
              for i in range(n) for r in range(side))
images = struct.pack(">IIII", 0x803, n, side, side) + px
labels = struct.pack(">II", 0x801, n) + lab[8 + a: 8 + b]
op = open if mode == "plain" else lambda p, m: gzip.GzipFile(p, m, mtime=0)
ext = "" if mode == "plain" else ".gz"
with op(f"{prefix}-images-idx3-ubyte{ext}", "wb") as f:
    f.write(images)
with op(f"{prefix}-labels-idx1-ubyte{ext}", "wb") as f:
    f.write(labels)
EOF2
}

# Trains on the first 300 fixture images plus DIR's pairs, 1 epoch.
train_extra() { # OUT EXTRA_DIR [ARGS...]
    local out=$1 extra=$2
    shift 2
    train_small "$out" -q --set data.limit=300 --set data.test_limit=100 --set output.metrics= \
        --set "data.extra=$extra" "$@"
}

@test "extra pairs are appended in name order: the weights of one file holding them all, any thread count" {
    mkdir -p "$D/x" "$D/one" "$D/t1" "$D/t3" "$D/all"
    # made in reverse order: the directory's order is not the name order
    cut_pair 400 460 "$D/x/b"
    cut_pair 300 400 "$D/x/a" plain
    cut_pair 0 460 "$D/all/train"
    run --separate-stderr train_extra "$D/t1" "$D/x" --threads 1 --set train.batch_size=64
    assert_status 0
    run --separate-stderr train_extra "$D/t3" "$D/x" --threads 3 --set train.batch_size=64
    assert_status 0
    assert_same_model "$D/t1/m.model" "$D/t3/m.model"
    assert_same_model "$D/t1/m.model.ckpt" "$D/t3/m.model.ckpt"
    # the same images in one file, in the order a then b
    run --separate-stderr train_small "$D/one" -q --set data.limit=0 --set data.test_limit=100 --set output.metrics= \
        --set "data.train_images=$D/all/train-images-idx3-ubyte.gz" \
        --set "data.train_labels=$D/all/train-labels-idx1-ubyte.gz" --set train.batch_size=64 --threads 2
    assert_status 0
    local w
    w=$("$TRAINER" info "$D/one/m.model" --json | jget 'd["weights_sha256"]')
    [ "$("$TRAINER" info "$D/t1/m.model" --json | jget 'd["weights_sha256"]')" = "$w" ]
    # the other order would train another model: the test can fail
    mkdir "$D/swapped" "$D/s"
    cut_pair 300 400 "$D/swapped/b"
    cut_pair 400 460 "$D/swapped/a"
    run --separate-stderr train_extra "$D/s" "$D/swapped" --set train.batch_size=64
    assert_status 0
    [ "$("$TRAINER" info "$D/s/m.model" --json | jget 'd["weights_sha256"]')" != "$w" ]
}

@test "the run counts the extra images; provenance and fingerprint list every extra file in name order" {
    mkdir -p "$D/x" "$D/m"
    cut_pair 300 350 "$D/x/2024-02"
    cut_pair 350 370 "$D/x/2024-01"
    touch "$D/x/.2024-03-images-idx3-ubyte.gz.partial" # a drop being copied in: ignored
    run --separate-stderr train_extra "$D/m" "$D/x" --set train.batch_size=10
    assert_status 0
    local j c
    j=$("$TRAINER" info "$D/m/m.model" --json)
    [ "$(jget '",".join(f["role"] for f in d["data"])' <<<"$j")" = \
        train_images,train_labels,extra_images,extra_labels,extra_images,extra_labels,test_images,test_labels ]
    [ "$(jget '[f["path"] for f in d["data"]][2:6]' <<<"$j")" = \
        "['$D/x/2024-01-images-idx3-ubyte.gz', '$D/x/2024-01-labels-idx1-ubyte.gz', '$D/x/2024-02-images-idx3-ubyte.gz', '$D/x/2024-02-labels-idx1-ubyte.gz']" ]
    [ "$(jget '[f["count"] for f in d["data"]][2:6]' <<<"$j")" = "[20, 20, 50, 50]" ]
    [ "$(jget 'd["data"][4]["sha256"]' <<<"$j")" = "$(sha256sum < "$D/x/2024-02-images-idx3-ubyte.gz" | cut -d' ' -f1)" ]
    local -a ARGS
    small_argv "$D/m"
    c=$("$TRAINER" info --config "${ARGS[@]}" --set data.limit=300 --set data.test_limit=100 \
        --set "data.extra=$D/x" --set train.batch_size=10 --json)
    [ "$(jget 'd["fingerprint"]' <<<"$c")" = "$(jget 'd["fingerprint"]' <<<"$j")" ]
    [ "$(jget 'd["data"]' <<<"$c")" = "$(jget 'd["data"]' <<<"$j")" ]
    # a new drop: a new fingerprint
    cut_pair 370 380 "$D/x/2024-03"
    [ "$("$TRAINER" info --config "${ARGS[@]}" --set data.limit=300 --set data.test_limit=100 \
        --set "data.extra=$D/x" --set train.batch_size=10 --json | jget 'd["fingerprint"]')" != \
        "$(jget 'd["fingerprint"]' <<<"$j")" ]
    # the training run says how many images it used: 300 + 20 + 50 + 10
    run --separate-stderr train_small "$D/m" --set data.limit=300 --set data.test_limit=100 --set output.metrics= \
        --set "data.extra=$D/x" --set train.batch_size=10
    assert_status 0
    assert_contains "$output" "data: 380 training"
    # empty = none
    run --separate-stderr train_small "$D/m" --set data.limit=300 --set data.test_limit=100 --set output.metrics= \
        --set data.extra= --set train.batch_size=10
    assert_status 0
    assert_contains "$output" "data: 300 training"
}

@test "a bad drop fails with one line naming the file, exit 2, and the model stays as it was" {
    mkdir -p "$D/m"
    train_small "$D/m" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics=
    cp "$D/m/m.model" "$D/good.model"
    cp "$D/m/m.model.ckpt" "$D/good.ckpt"
    bad() { # DIR NEEDLE...: training refuses it
        local dir=$1
        shift
        run --separate-stderr train_small "$D/m" --set data.limit=200 --set data.test_limit=100 \
            --set output.metrics= --set "data.extra=$dir"
        assert_status 2
        assert_one_error_line "$@"
        assert_same_file "$D/good.model" "$D/m/m.model"
        assert_same_file "$D/good.ckpt" "$D/m/m.model.ckpt"
    }
    # images without labels
    mkdir "$D/unpaired"
    cut_pair 0 10 "$D/unpaired/n"
    rm "$D/unpaired/n-labels-idx1-ubyte.gz"
    bad "$D/unpaired" "$D/unpaired/n-images-idx3-ubyte.gz" "n-labels-idx1-ubyte[.gz]"
    # labels without images
    mkdir "$D/labels-only"
    cut_pair 0 10 "$D/labels-only/n"
    rm "$D/labels-only/n-images-idx3-ubyte.gz"
    bad "$D/labels-only" "$D/labels-only/n-labels-idx1-ubyte.gz"
    # a file that is not a pair member
    mkdir "$D/stray"
    cut_pair 0 10 "$D/stray/n"
    echo hi > "$D/stray/notes.txt"
    bad "$D/stray" "$D/stray/notes.txt"
    # the same NAME twice, gzipped and plain
    mkdir "$D/twice"
    cut_pair 0 10 "$D/twice/n"
    cut_pair 0 10 "$D/twice/n" plain
    bad "$D/twice" "$D/twice/n-images-idx3-ubyte" "two images files"
    # a truncated gzip
    mkdir "$D/trunc"
    cut_pair 0 100 "$D/trunc/n"
    head -c 300 "$D/trunc/n-images-idx3-ubyte.gz" > "$D/t" && mv "$D/t" "$D/trunc/n-images-idx3-ubyte.gz"
    bad "$D/trunc" "$D/trunc/n-images-idx3-ubyte.gz"
    # images of another size
    mkdir "$D/small"
    cut_pair 0 10 "$D/small/n" small
    bad "$D/small" "$D/small/n-images-idx3-ubyte.gz" "14x14" "28x28"
    # a label file holding a label out of range
    mkdir "$D/label"
    cut_pair 0 10 "$D/label/n" plain
    printf '\x0b' | dd of="$D/label/n-labels-idx1-ubyte" bs=1 seek=12 conv=notrunc status=none
    bad "$D/label" "$D/label/n-labels-idx1-ubyte" "label 11"
    # no such directory
    bad "$D/nowhere" "$D/nowhere"
    # info --config lists the directory as training does: the same refusals
    local -a S
    mapfile -t S < <(small_data_sets "$FIXTURES")
    local e
    for e in unpaired/n-images-idx3-ubyte.gz stray/notes.txt twice/n-images-idx3-ubyte nowhere; do
        run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}" --set "data.extra=$D/${e%%/*}" --json
        assert_status 2
        assert_one_error_line "$D/$e"
    done
}
