#!/usr/bin/env bats
# Real learning, then eval and predict on the model it wrote.

load helpers

# One short training on the real MNIST files (not the fixtures): 3000
# images, 2 epochs, tested on the first 1000 test images. Measured: 0.924
# (default init lecun; 0.856 with he); either flavour gives the same figure.
MIN_ACCURACY=0.80

setup_file() {
    fixtures
    M=$BATS_FILE_TMPDIR/real
    mkdir -p "$M"
    "$TRAINER" train "$CONFIG" \
        --set "data.train_images=$MNIST/train-images-idx3-ubyte.gz" \
        --set "data.train_labels=$MNIST/train-labels-idx1-ubyte.gz" \
        --set "data.test_images=$MNIST/t10k-images-idx3-ubyte.gz" \
        --set "data.test_labels=$MNIST/t10k-labels-idx1-ubyte.gz" \
        --set data.limit=3000 --set data.test_limit=1000 --set train.epochs=2 --set train.batch_size=50 \
        --set "output.model=$M/m.model" --set "output.metrics=$M/m.csv" >"$M/train.out" 2>"$M/train.err" ||
        echo $? >"$M/train.rc"
}

setup() {
    M=$BATS_FILE_TMPDIR/real
    D=$BATS_TEST_TMPDIR
}

@test "a short training on 3000 real images beats 0.80 accuracy on 1000 test images" {
    [ ! -e "$M/train.rc" ] || fail "training failed with exit $(cat "$M/train.rc")" "$(cat "$M/train.err")"
    [ ! -s "$M/train.err" ] || fail "stderr is not empty" "$(cat "$M/train.err")"
    parse_accuracy "$(cat "$M/train.out")"
    [ "$TOTAL" -eq 1000 ]
    [ "$ACC" = "$(awk -v c="$CORRECT" -v t="$TOTAL" 'BEGIN { printf "%.4f", c / t }')" ]
    greater "$ACC" "$MIN_ACCURACY" || fail "accuracy $ACC is not above $MIN_ACCURACY" "$(cat "$M/train.out")"
}

@test "eval MODEL: per-class table, confusion matrix, and the training's final accuracy line" {
    run --separate-stderr "$TRAINER" eval "$M/m.model"
    assert_status 0
    [ -z "$stderr" ]
    [ "${lines[-1]}" = "$(tail -n 1 "$M/train.out")" ] ||
        fail "eval's last line differs from training's" "${lines[-1]}" "$(tail -n 1 "$M/train.out")"
    parse_accuracy "$output"
    [ "$TOTAL" -eq 1000 ]
    assert_contains "$output" "class  count  precision  recall"
    assert_contains "$output" "confusion matrix"
    # The table: classes 0..9, with the number of test images of each class.
    local counts want
    counts=$(printf '%s\n' "${lines[@]}" | awk '/^class  count/ { t = 1; next } t && NF == 4 { print $1, $2 } t && NF != 4 { exit }')
    want=$(idx_labels "$FIXTURES/test-labels.gz" | sort -n | uniq -c | awk '{ print $2, $1 }')
    [ "$counts" = "$want" ] || fail "per-class table:" "$counts" "want:" "$want"
    # The matrix: 10 rows (true classes) of 10 counts; the diagonal adds up
    # to the number correct, each row to its class's count.
    local sums
    sums=$(printf '%s\n' "${lines[@]}" | awk '/^confusion matrix/ { t = 1; next } t && /^ +0 +1 +2/ { next }
        t && NF == 11 { s = 0; for (i = 2; i <= 11; i++) { s += $i; if (i - 2 == $1) d += $i } print $1, s } END { print "diagonal", d }')
    [ "$sums" = "$want"$'\n'"diagonal $CORRECT" ] || fail "confusion matrix rows and diagonal:" "$sums" "$output"
}

@test "eval --quiet prints only the accuracy line" {
    run --separate-stderr "$TRAINER" eval "$M/m.model" -q
    assert_status 0
    [ "${#lines[@]}" -eq 1 ]
    parse_accuracy "$output"
}

@test "eval with --set data.test_images/test_labels evaluates another set" {
    # The first 700 training images (which the model has seen: it should do
    # better there than chance, and the total must follow the override).
    run --separate-stderr "$TRAINER" eval "$M/m.model" --set "data.test_images=$FIXTURES/train-images.gz" \
        --set "data.test_labels=$FIXTURES/train-labels.gz" --set data.test_limit=700
    assert_status 0
    assert_contains "$output" "on $FIXTURES/train-images.gz: 700 images"
    parse_accuracy "$output"
    [ "$TOTAL" -eq 700 ]
    greater "$ACC" "$MIN_ACCURACY"
    # data.test_limit=0: the whole fixture test file (1000 images) and the
    # same figure as the training's (same images as the first 1000 of t10k).
    run --separate-stderr "$TRAINER" eval "$M/m.model" -q --set "data.test_images=$FIXTURES/test-images.gz" \
        --set "data.test_labels=$FIXTURES/test-labels.gz" --set data.test_limit=0
    assert_status 0
    [ "$output" = "$(tail -n 1 "$M/train.out")" ]
}

@test "eval accepts only data.* overrides" {
    run --separate-stderr "$TRAINER" eval "$M/m.model" --set train.lr=0.1
    assert_status 2
    assert_one_error_line "train.lr" "data."
}

@test "predict: one label per PGM and per image of an IDX file, agreeing with eval" {
    local label
    label=$(write_pgm "$FIXTURES/test-images.gz" "$FIXTURES/test-labels.gz" 0 "$D/zero.pgm")
    write_pgm "$FIXTURES/test-images.gz" "$FIXTURES/test-labels.gz" 1 "$D/one.pgm" >/dev/null
    [ "$(head -c 2 "$D/zero.pgm")" = P5 ]
    [ "$(stat -c %s "$D/zero.pgm")" -eq $((13 + 784)) ]

    run --separate-stderr "$TRAINER" predict "$M/m.model" "$D/zero.pgm" "$D/one.pgm" "$FIXTURES/test-images.gz" --preprocess none
    assert_status 0
    [ -z "$stderr" ]
    # A comment line, two PGM lines, then one line per image of the IDX file.
    [[ ${lines[0]} == "#"* ]]
    [ "${#lines[@]}" -eq $((1 + 2 + 1000)) ] || fail "want 1003 lines, got ${#lines[@]}"
    [[ ${lines[1]} =~ ^$D/zero\.pgm:\ ([0-9])\ \(p=[01]\.[0-9]{4}\)( [01]\.[0-9]{4}){10}$ ]] ||
        fail "bad PGM line: ${lines[1]}"
    local pgm_label=${BASH_REMATCH[1]}
    [[ ${lines[3]} =~ ^$FIXTURES/test-images\.gz\[0\]:\ ([0-9])\ \(p= ]] || fail "bad IDX line: ${lines[3]}"
    [ "$pgm_label" = "${BASH_REMATCH[1]}" ] # the same pixels, the same answer
    [ "$pgm_label" = "$label" ] || fail "predicted $pgm_label for test image 0, a $label"
    [[ ${lines[-1]} == "$FIXTURES/test-images.gz[999]: "* ]]

    # Over the IDX file, the labels predicted are right exactly as often as
    # eval says.
    local right
    right=$(paste -d' ' <(printf '%s\n' "${lines[@]:3}" | awk '{ print $2 }') <(idx_labels "$FIXTURES/test-labels.gz") |
        awk '$1 == $2 { n++ } END { print n + 0 }')
    parse_accuracy "$(cat "$M/train.out")"
    [ "$right" -eq "$CORRECT" ] || fail "predict got $right right, eval $CORRECT"
}

@test "predict accepts a plain (not gzipped) IDX file and a text PGM (P2)" {
    gzip -dc "$FIXTURES/test-images.gz" >"$D/images.idx"
    write_pgm "$FIXTURES/test-images.gz" "$FIXTURES/test-labels.gz" 0 "$D/zero.pgm" >/dev/null
    # P5 -> P2 with the same pixels
    { printf 'P2\n28 28\n255\n'; tail -c 784 "$D/zero.pgm" | od -An -v -tu1; } >"$D/zero-text.pgm"
    run --separate-stderr "$TRAINER" predict "$M/m.model" "$D/zero.pgm" "$D/zero-text.pgm" "$D/images.idx" --preprocess none
    assert_status 0
    [ "${#lines[@]}" -eq 1003 ]
    # the same probabilities for the same image, whatever the container
    [ "${lines[1]#*: }" = "${lines[2]#*: }" ]
    [ "${lines[1]#*: }" = "${lines[3]#*: }" ]
}
