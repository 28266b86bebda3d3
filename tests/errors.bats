#!/usr/bin/env bats
# Bad data and model files: each is refused with exit 2 and one line on
# stderr that names the file and the problem, before any training.

load helpers

setup_file() {
    fixtures
}

setup() {
    D=$BATS_TEST_TMPDIR
}

# Trains on the fixtures with one data file replaced.
train_with() { # KEY PATH
    run --separate-stderr train_small "$D" --set data.limit=100 --set data.test_limit=100 --set "data.$1=$2"
}

@test "a truncated .gz is refused (exit 2)" {
    head -c 30000 "$MNIST/train-images-idx3-ubyte.gz" >"$D/cut.gz"
    train_with train_images "$D/cut.gz"
    assert_status 2
    assert_one_error_line "$D/cut.gz" "truncated"
    [ ! -e "$D/m.model" ]
}

@test "a .gz with a flipped byte is refused (exit 2)" {
    cp "$MNIST/t10k-labels-idx1-ubyte.gz" "$D/flip.gz"
    # flip a byte in the middle of the compressed data
    local size off byte
    size=$(stat -c %s "$D/flip.gz")
    off=$((size / 2))
    byte=$(od -An -tu1 -j "$off" -N1 "$D/flip.gz")
    printf "\\$(printf %03o $((byte ^ 0xff)))" | dd of="$D/flip.gz" bs=1 seek="$off" conv=notrunc status=none
    run ! cmp -s "$D/flip.gz" "$MNIST/t10k-labels-idx1-ubyte.gz"
    train_with test_labels "$D/flip.gz"
    assert_status 2
    assert_one_error_line "$D/flip.gz" "gzip"
}

@test "a gzip stream followed by garbage is refused (exit 2)" {
    { cat "$FIXTURES/test-labels.gz"; printf 'garbage'; } >"$D/tail.gz"
    train_with test_labels "$D/tail.gz"
    assert_status 2
    assert_one_error_line "$D/tail.gz"
}

@test "a label file given as images is refused for its magic (exit 2)" {
    train_with train_images "$FIXTURES/train-labels.gz"
    assert_status 2
    assert_one_error_line "$FIXTURES/train-labels.gz" "magic"
}

@test "an image file given as labels is refused for its magic (exit 2)" {
    train_with test_labels "$FIXTURES/test-images.gz"
    assert_status 2
    assert_one_error_line "$FIXTURES/test-images.gz" "magic"
}

@test "image and label files with different counts are refused (exit 2)" {
    train_with test_labels "$FIXTURES/train-labels.gz" # 3000 labels for 1000 images
    assert_status 2
    assert_one_error_line "1000" "3000"
}

@test "a label above the class count is refused (exit 2)" {
    "$PY" - "$D/labels.idx" <<'EOF'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack(">II", 0x801, 1000) + bytes([3] * 500 + [12] + [3] * 499))
EOF
    train_with test_labels "$D/labels.idx"
    assert_status 2
    assert_one_error_line "$D/labels.idx" "12"
}

@test "a missing data file is refused (exit 2)" {
    train_with train_images "$D/nowhere.gz"
    assert_status 2
    assert_one_error_line "$D/nowhere.gz" "No such file"
}

@test "a directory given as a data file is refused (exit 2)" {
    train_with test_images "$D"
    assert_status 2
    assert_one_error_line "$D" "directory"
}

@test "an empty data file is refused (exit 2)" {
    : >"$D/empty.idx"
    train_with test_images "$D/empty.idx"
    assert_status 2
    assert_one_error_line "$D/empty.idx"
}

@test "an IDX header that claims more images than the file holds is refused (exit 2)" {
    "$PY" - "$D/short.idx" <<'EOF'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack(">IIII", 0x803, 1000000, 28, 28) + bytes(784 * 3))
EOF
    train_with test_images "$D/short.idx"
    assert_status 2
    assert_one_error_line "$D/short.idx"
}

@test "fewer training images than one batch is refused (exit 2)" {
    run --separate-stderr train_small "$D" --set data.limit=40 --set train.batch_size=50
    assert_status 2
    assert_one_error_line "40" "50"
}

# ---- model files ----

# A small trained model in $D/m.model.
small_model() {
    train_small "$D" -q --set data.limit=100 --set data.test_limit=100 --set train.batch_size=20 >/dev/null
}

@test "a model file with a flipped byte: eval and predict exit 2 with a CRC message" {
    small_model
    run --separate-stderr "$TRAINER" eval "$D/m.model" -q
    assert_status 0
    for off in 100 2000 24000; do
        cp "$D/m.model" "$D/bad.model"
        printf '\x55' | dd of="$D/bad.model" bs=1 seek="$off" conv=notrunc status=none
        run ! cmp -s "$D/m.model" "$D/bad.model"
        run --separate-stderr "$TRAINER" eval "$D/bad.model"
        assert_status 2
        assert_one_error_line "$D/bad.model" "CRC"
        [ -z "$output" ]
    done
    run --separate-stderr "$TRAINER" predict "$D/bad.model" "$FIXTURES/test-images.gz"
    assert_status 2
    assert_one_error_line "$D/bad.model" "CRC"
}

@test "a truncated model file is refused (exit 2)" {
    small_model
    head -c 20000 "$D/m.model" >"$D/cut.model"
    run --separate-stderr "$TRAINER" eval "$D/cut.model"
    assert_status 2
    assert_one_error_line "$D/cut.model"
}

@test "a file that is not a model is refused (exit 2)" {
    run --separate-stderr "$TRAINER" eval "$CONFIG"
    assert_status 2
    assert_one_error_line "$CONFIG" "model"
    run --separate-stderr "$TRAINER" eval "$D/none.model"
    assert_status 2
    assert_one_error_line "$D/none.model" "No such file"
}

@test "--resume with a missing or corrupt checkpoint is refused (exit 2)" {
    run --separate-stderr train_small "$D" --resume "$D/none.ckpt"
    assert_status 2
    assert_one_error_line "$D/none.ckpt"
    small_model
    cp "$D/m.model.ckpt" "$D/bad.ckpt"
    printf '\x55' | dd of="$D/bad.ckpt" bs=1 seek=3000 conv=notrunc status=none
    run --separate-stderr train_small "$D" --resume "$D/bad.ckpt"
    assert_status 2
    assert_one_error_line "$D/bad.ckpt" "CRC"
}

@test "--resume with a plain model file (no training state) is refused (exit 2)" {
    small_model
    run --separate-stderr train_small "$D" --set train.epochs=2 --resume "$D/m.model"
    assert_status 2
    assert_one_error_line "$D/m.model"
}

@test "--resume with a checkpoint of another network is refused (exit 2)" {
    small_model
    run --separate-stderr train_small "$D" --set train.epochs=2 --set layer.conv1.filters=4 --resume "$D/m.model.ckpt"
    assert_status 2
    assert_one_error_line "$D/m.model.ckpt" "network"
}

@test "predict refuses an image of the wrong size and a file that is neither PGM nor IDX (exit 2)" {
    small_model
    printf 'P5\n3 2\n255\nabcdef' >"$D/small.pgm"
    run --separate-stderr "$TRAINER" predict "$D/m.model" "$D/small.pgm" --preprocess none
    assert_status 2
    assert_one_error_line "$D/small.pgm" "28"
    printf 'hello, world\n' >"$D/text.txt"
    run --separate-stderr "$TRAINER" predict "$D/m.model" "$D/text.txt"
    assert_status 2
    assert_one_error_line "$D/text.txt"
}
