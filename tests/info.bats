#!/usr/bin/env bats
# trainer info: the provenance of a model and the fingerprint of a config,
# as a listing and as JSON (each data file's SHA-256 as sha256sum gives it,
# image counts, the effective test set, a fingerprint that moves with the
# config, the data and nothing else).

load helpers

setup_file() {
    fixtures
}

setup() {
    D=$BATS_TEST_TMPDIR
}

# Prints one value of the JSON on stdin: a Python expression over `d`.
jget() { # EXPR
    "$PY" -c 'import json, sys; d = json.load(sys.stdin); v = eval(sys.argv[1]); print("null" if v is None else v)' "$1"
}

# SHA-256 of the hex bytes on stdin (as model_params prints them).
hexsha() {
    "$PY" -c 'import hashlib, sys; print(hashlib.sha256(bytes.fromhex(sys.stdin.read())).hexdigest())'
}

# The --set options that point a config at the fixtures.
fixture_sets() {
    small_data_sets "$FIXTURES"
}

@test "info --config --json: valid JSON, each file's sha256sum and count, the effective test set" {
    local -a S
    mapfile -t S < <(fixture_sets)
    run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}" --set data.test_limit=123 --json
    assert_status 0
    [ -z "$stderr" ]
    local j=$output
    [ "$(jget 'd["kind"]' <<<"$j")" = config ]
    [ "$(jget 'd["trainer_version"]' <<<"$j")" = "$("$TRAINER" --version | cut -d' ' -f2)" ]
    [[ $(jget 'd["fingerprint"]' <<<"$j") =~ ^[0-9a-f]{64}$ ]]
    [ "$(jget '",".join(f["role"] for f in d["data"])' <<<"$j")" = train_images,train_labels,test_images,test_labels ]
    local role file
    for role in train_images:train-images.gz train_labels:train-labels.gz test_images:test-images.gz \
        test_labels:test-labels.gz; do
        file=$FIXTURES/${role#*:}
        [ "$(jget "[f for f in d['data'] if f['role'] == '${role%%:*}'][0]['path']" <<<"$j")" = "$file" ]
        [ "$(jget "[f for f in d['data'] if f['role'] == '${role%%:*}'][0]['sha256']" <<<"$j")" = \
            "$(sha256sum < "$file" | cut -d' ' -f1)" ]
    done
    [ "$(jget '[f["count"] for f in d["data"]]' <<<"$j")" = "[3000, 3000, 1000, 1000]" ]
    [ "$(jget 'd["test"]["images"]' <<<"$j")" = "$FIXTURES/test-images.gz" ]
    [ "$(jget 'd["test"]["labels"]' <<<"$j")" = "$FIXTURES/test-labels.gz" ]
    [ "$(jget 'd["test"]["limit"]' <<<"$j")" = 123 ]
}

@test "the fingerprint moves with the config and with any data file's bytes, and with nothing else" {
    mkdir "$D/data"
    cp "$FIXTURES"/*.gz "$D/data/"
    local -a S
    mapfile -t S < <(small_data_sets "$D/data")
    fp() { "$TRAINER" info --config "$CONFIG" "${S[@]}" --json "$@" | jget 'd["fingerprint"]'; }
    local base
    base=$(fp)
    [ "$(fp)" = "$base" ]
    # [output] does not change a model, so it does not change the fingerprint
    [ "$(fp --set output.model=elsewhere.model --set output.metrics=)" = "$base" ]
    [ "$(fp --set train.epochs=3)" != "$base" ]
    [ "$(fp --set data.test_limit=7)" != "$base" ]
    # the same bytes under another name: a different config text
    cp "$D/data/test-labels.gz" "$D/data/copy.gz"
    [ "$(fp --set data.test_labels="$D/data/copy.gz")" != "$base" ]
    # each data file's bytes, even where the images are equal (a recompressed file)
    local f
    for f in train-images train-labels test-images test-labels; do
        cp "$D/data/$f.gz" "$D/$f.keep"
        gzip -dc "$D/$f.keep" | gzip -9n > "$D/data/$f.gz"
        [ "$(fp)" != "$base" ] || fail "$f changed, the fingerprint did not"
        cp "$D/$f.keep" "$D/data/$f.gz"
        [ "$(fp)" = "$base" ]
    done
}

@test "info --config without --json: an aligned listing of the same facts" {
    local -a S
    mapfile -t S < <(fixture_sets)
    run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}"
    assert_status 0
    local fp
    fp=$("$TRAINER" info --config "$CONFIG" "${S[@]}" --json | jget 'd["fingerprint"]')
    assert_contains "$output" "fingerprint      $fp"
    assert_contains "$output" "$(sha256sum < "$FIXTURES/train-images.gz" | cut -d' ' -f1)  $FIXTURES/train-images.gz"
    assert_contains "$output" "3000"
}

@test "JSON strings are escaped: a path with a quote, a backslash and a tab" {
    local dir="$D/a\"b\\c	d"
    mkdir -p "$dir"
    cp "$FIXTURES/test-labels.gz" "$dir/l.gz"
    local -a S
    mapfile -t S < <(fixture_sets)
    run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}" --set "data.test_labels=$dir/l.gz" --json
    assert_status 0
    [ "$(jget 'd["test"]["labels"]' <<<"$output")" = "$dir/l.gz" ]
}

@test "info on bad input: one line naming the file, exit 2" {
    local -a S
    mapfile -t S < <(fixture_sets)
    run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}" --set "data.train_labels=$D/missing.gz" --json
    assert_status 2
    assert_one_error_line "$D/missing.gz"
    [ -z "$output" ]
    # an image file where labels belong
    run --separate-stderr "$TRAINER" info --config "$CONFIG" "${S[@]}" \
        --set "data.train_labels=$FIXTURES/train-images.gz" --json
    assert_status 2
    assert_one_error_line "$FIXTURES/train-images.gz" "magic"
    run --separate-stderr "$TRAINER" info --config "$D/nope.ini"
    assert_status 2
    assert_one_error_line "$D/nope.ini"
    printf 'not a model' > "$D/bad.model"
    run --separate-stderr "$TRAINER" info "$D/bad.model" --json
    assert_status 2
    assert_one_error_line "$D/bad.model"
    run --separate-stderr "$TRAINER" info
    assert_status 2
    assert_one_error_line "usage: trainer info"
    run --separate-stderr "$TRAINER" info "$D/bad.model" --config "$CONFIG"
    assert_status 2
    run --separate-stderr "$TRAINER" eval "$D/bad.model" --json
    assert_status 2
    assert_one_error_line "--json applies to 'trainer info' and 'trainer predict' only"
}

@test "info MODEL --json: weights_sha256 is the hash of the weights alone, and the model's test set" {
    mkdir "$D/a"
    train_small "$D/a" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics=
    run --separate-stderr "$TRAINER" info "$D/a/m.model" --json
    assert_status 0
    local j=$output
    [ "$(jget 'd["kind"]' <<<"$j")" = model ]
    [ "$(jget 'd["weights_sha256"]' <<<"$j")" = \
        "$(model_params "$D/a/m.model" | hexsha)" ]
    [ "$(jget 'd["test"]["images"]' <<<"$j")" = "$FIXTURES/test-images.gz" ]
    [ "$(jget 'd["test"]["limit"]' <<<"$j")" = 100 ]
    # a checkpoint holds the same weights as the model of its last epoch
    [ "$("$TRAINER" info "$D/a/m.model.ckpt" --json | jget 'd["weights_sha256"]')" = "$(jget 'd["weights_sha256"]' <<<"$j")" ]
    # a smaller test set changes the file (config, provenance) but not the weights
    mkdir "$D/b" "$D/c"
    train_small "$D/b" -q --set data.limit=200 --set data.test_limit=50 --set output.metrics=
    run ! cmp -s <(head -c -20 "$D/a/m.model") <(head -c -20 "$D/b/m.model")
    [ "$("$TRAINER" info "$D/b/m.model" --json | jget 'd["weights_sha256"]')" = "$(jget 'd["weights_sha256"]' <<<"$j")" ]
    # and other weights, another hash
    train_small "$D/c" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics= --set train.seed=3
    [ "$("$TRAINER" info "$D/c/m.model" --json | jget 'd["weights_sha256"]')" != "$(jget 'd["weights_sha256"]' <<<"$j")" ]
}

@test "a trained model records its provenance; its fingerprint equals its config's" {
    mkdir "$D/a"
    local -a ARGS
    small_argv "$D/a"
    local -a sets=(--set data.limit=300 --set data.test_limit=200 --set train.epochs=2 --set output.metrics=
        --set train.seed=9)
    local before after
    before=$(date -u +%s)
    run --separate-stderr "$TRAINER" train "${ARGS[@]}" "${sets[@]}"
    assert_status 0
    after=$(date -u +%s)
    parse_accuracy "$output"
    local m c
    m=$("$TRAINER" info "$D/a/m.model" --json)
    c=$("$TRAINER" info --config "${ARGS[@]}" "${sets[@]}" --json)
    [ "$(jget 'd["fingerprint"]' <<<"$m")" = "$(jget 'd["fingerprint"]' <<<"$c")" ]
    [ "$(jget 'd["data"]' <<<"$m")" = "$(jget 'd["data"]' <<<"$c")" ]
    [ "$(jget 'd["trainer_version"]' <<<"$m")" = "$("$TRAINER" --version | cut -d' ' -f2)" ]
    [ "$(jget 'd["seed"]' <<<"$m")" = 9 ]
    [ "$(jget 'd["epochs"]' <<<"$m")" = 2 ]
    [ "$(jget '"%.4f" % d["test_accuracy"]' <<<"$m")" = "$ACC" ]
    [ "$(jget 'd["test_correct"], d["test_total"]' <<<"$m")" = "($CORRECT, $TOTAL)" ]
    greater "$(jget 'd["train_seconds"]' <<<"$m")" 0
    local created
    created=$(date -u -d "$(jget 'd["created"]' <<<"$m")" +%s)
    [ "$created" -ge "$before" ] && [ "$created" -le "$after" ] || fail "created $created not in [$before, $after]"
    # the checkpoint records the same run
    [ "$("$TRAINER" info "$D/a/m.model.ckpt" --json | jget 'd["fingerprint"], d["epochs"]')" = \
        "$(jget 'd["fingerprint"], d["epochs"]' <<<"$m")" ]
    # the listing says the same
    run --separate-stderr "$TRAINER" info "$D/a/m.model"
    assert_status 0
    assert_contains "$output" "test accuracy    $ACC ($CORRECT/$TOTAL)"
    assert_contains "$output" "created          $(jget 'd["created"]' <<<"$m")"
    # another config, another fingerprint
    c=$("$TRAINER" info --config "${ARGS[@]}" "${sets[@]}" --set train.epochs=3 --json)
    [ "$(jget 'd["fingerprint"]' <<<"$m")" != "$(jget 'd["fingerprint"]' <<<"$c")" ]
}

@test "SOURCE_DATE_EPOCH fixes the created time; model identity leaves out only the run's times" {
    mkdir "$D/a" "$D/b"
    SOURCE_DATE_EPOCH=1234567890 train_small "$D/a" -q --set data.limit=200 --set data.test_limit=100 \
        --set output.metrics=
    [ "$("$TRAINER" info "$D/a/m.model" --json | jget 'd["created"]')" = 2009-02-13T23:31:30Z ]
    train_small "$D/b" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics= --threads 2
    assert_same_model "$D/a/m.model" "$D/b/m.model"
    # the times differ, and they are all that differs
    run ! cmp -s "$D/a/m.model" "$D/b/m.model"
    # the comparison can fail: one byte before the times
    local n
    n=$(stat -c %s "$D/b/m.model")
    cp "$D/b/m.model" "$D/c.model"
    printf '\x01' | dd of="$D/c.model" bs=1 seek=$((n - 21)) conv=notrunc status=none
    run ! assert_same_model "$D/a/m.model" "$D/c.model"
}

@test "with SOURCE_DATE_EPOCH set, two runs give the same bytes, whole, at 1 and 2 threads" {
    mkdir "$D/a" "$D/b"
    SOURCE_DATE_EPOCH=1234567890 train_small "$D/a" -q --set data.limit=200 --set data.test_limit=100 \
        --set output.metrics= --threads 1
    SOURCE_DATE_EPOCH=1234567890 train_small "$D/b" -q --set data.limit=200 --set data.test_limit=100 \
        --set output.metrics= --threads 2
    assert_same_file "$D/a/m.model" "$D/b/m.model"
    assert_same_file "$D/a/m.model.ckpt" "$D/b/m.model.ckpt"
    [ "$("$TRAINER" info "$D/a/m.model" --json | jget 'd["train_seconds"]')" = 0 ]
}

@test "a version-1 model and checkpoint (made by the trainer of 06edc21) still load, evaluate, predict and resume" {
    local v1=$ROOT/tests/data
    local -a T=(--set "data.test_images=$FIXTURES/test-images.gz" --set "data.test_labels=$FIXTURES/test-labels.gz")
    run --separate-stderr "$TRAINER" eval "$v1/v1.model" -q "${T[@]}" --set data.test_limit=500
    assert_status 0
    [ "$output" = "$(cat "$v1/v1.eval")" ]
    run --separate-stderr "$TRAINER" eval "$v1/v1.ckpt" -q "${T[@]}" --set data.test_limit=500
    assert_status 0
    [ "$output" = "$(cat "$v1/v1.eval")" ]
    run --separate-stderr "$TRAINER" predict "$v1/v1.model" "$FIXTURES/test-images.gz"
    assert_status 0
    [ "$(head -n 21 <<<"$output" | sed 's/^[^[]*\[/[/')" = "$(cat "$v1/v1.predict")" ]
    # info: the weights, no provenance
    run --separate-stderr "$TRAINER" info "$v1/v1.model" --json
    assert_status 0
    [ "$(jget 'd["trainer_version"], d["fingerprint"], d["created"], d["data"]' <<<"$output")" = "(None, None, None, [])" ]
    [ "$(jget 'd["weights_sha256"]' <<<"$output")" = "$(model_params "$v1/v1.model" | hexsha)" ]
    run --separate-stderr "$TRAINER" info "$v1/v1.model"
    assert_status 0
    assert_contains "$output" "not recorded"
    # resume the version-1 checkpoint (2 epochs done) to 3: a version-2 model with provenance;
    # it predates train.blocks, so it was cut into 64 blocks
    # A resume must name the data it was trained on: the same relative
    # paths, here linked to the real files.
    mkdir -p "$D/r/data"
    ln -s "$MNIST" "$D/r/data/mnist"
    run --separate-stderr bash -c 'cd "$1" && shift && "$@"' _ "$D/r" "$TRAINER" train "$v1/v1.ini" \
        --set train.epochs=3 --set train.blocks=64 --set "output.model=$D/r/m.model" --set "output.metrics=$D/r/m.csv" \
        --resume "$v1/v1.ckpt"
    assert_status 0
    assert_contains "$output" ": epoch 3, batch 1"
    [ "$("$TRAINER" info "$D/r/m.model" --json | jget 'd["epochs"]')" = 3 ]
}
