#!/usr/bin/env bats
# scripts/retrain.sh and scripts/rollback.sh: promotion only when better,
# failures leave production alone, one run at a time, retention, rollback,
# and cron's bare environment.

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    export TRAINER=${TRAINER:-$ROOT/trainer}
    W=$(mktemp -d)
    mkdir -p "$W/configs"
    cat > "$W/configs/small.ini" <<INI
[data]
train_images = $ROOT/data/mnist/train-images-idx3-ubyte.gz
train_labels = $ROOT/data/mnist/train-labels-idx1-ubyte.gz
test_images = $ROOT/data/mnist/t10k-images-idx3-ubyte.gz
test_labels = $ROOT/data/mnist/t10k-labels-idx1-ubyte.gz
limit = 1500
test_limit = 300
[train]
epochs = 1
batch_size = 32
INI
    M=$W/models
}

teardown() {
    rm -rf "$W"
}

retrain() {
    "$ROOT/scripts/retrain.sh" "$W/configs/small.ini" "$@"
}

json() { # key -> value from status.json
    sed -n "s/^  \"$1\": \(.*\),\{0,1\}$/\1/p" "$M/status.json" | sed 's/,$//; s/^"//; s/"$//'
}

@test "first run promotes, quietly, and writes status.json" {
    run retrain
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ -L "$M/production.model" ]
    [ "$(json outcome)" = promoted ]
    [ "$(json production_accuracy)" = null ]
    "$TRAINER" eval "$M/production.model" -q | grep -q '^accuracy: '
    ls "$M"/logs/retrain-*.log
}

@test "a worse candidate is kept out; a better one is promoted" {
    retrain
    first=$(readlink "$M/production.model")
    run retrain --set train.lr=0.00001
    [ "$status" -eq 3 ]
    [ "$(json outcome)" = kept ]
    [ "$(readlink "$M/production.model")" = "$first" ]
    run retrain --set train.epochs=3
    [ "$status" -eq 0 ]
    [ "$(json outcome)" = promoted ]
    [ "$(readlink "$M/production.model")" != "$first" ]
}

@test "a failed training leaves production untouched and says why" {
    retrain
    before=$(readlink "$M/production.model")
    sum=$(sha256sum < "$M/production.model")
    run retrain --set data.train_images=/nonexistent/images.gz
    [ "$status" -eq 1 ]
    [[ "$output" == *"failed"* ]]
    [ "$(json outcome)" = failed ]
    [ "$(readlink "$M/production.model")" = "$before" ]
    [ "$(sha256sum < "$M/production.model")" = "$sum" ]
    grep -q "/nonexistent/images.gz" "$M"/logs/retrain-*.log
}

@test "two concurrent runs: one runs, the other exits 4 (locked)" {
    mkdir -p "$M"
    flock "$M/.lock" sleep 3 &
    sleep 0.5
    run retrain
    [ "$status" -eq 4 ]
    [[ "$output" == *"locked"* ]]
    wait
    run retrain
    [ "$status" -eq 0 ]
}

@test "retention keeps exactly K promoted models, production among them" {
    for lr in 0.01 0.02 0.03 0.04; do
        retrain --keep 2 --tolerance 1 --set train.lr=$lr
    done
    [ "$(ls "$M"/history/*.model | wc -l)" -eq 2 ]
    [ -e "$(readlink -f "$M/production.model")" ]
}

@test "rollback restores the previous model" {
    retrain --tolerance 1
    first=$(readlink "$M/production.model")
    retrain --tolerance 1 --set train.seed=7
    second=$(readlink "$M/production.model")
    [ "$first" != "$second" ]
    run "$ROOT/scripts/rollback.sh" "$M"
    [ "$status" -eq 0 ]
    [ "$(readlink "$M/production.model")" = "$first" ]
    run "$ROOT/scripts/rollback.sh" "$M"
    [ "$status" -eq 1 ]
}

@test "works from another directory under cron's bare environment" {
    cd /
    run env -i PATH=/usr/bin:/bin TRAINER="$TRAINER" "$ROOT/scripts/retrain.sh" "$W/configs/small.ini"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ -L "$M/production.model" ]
}

@test "works installed: finds PREFIX/bin/trainer from PREFIX/share/trainer/scripts" {
    p=$W/prefix
    mkdir -p "$p/bin" "$p/share/trainer/scripts"
    cp "$TRAINER" "$p/bin/trainer"
    cp "$ROOT/scripts/retrain.sh" "$ROOT/scripts/rollback.sh" "$p/share/trainer/scripts/"
    cd /
    run env -i PATH=/usr/bin:/bin "$p/share/trainer/scripts/retrain.sh" "$W/configs/small.ini"
    [ "$status" -eq 0 ]
    grep -q "trainer $p/bin/trainer" "$M"/logs/retrain-*.log
}

@test "--warm-start trains the candidate from the production weights" {
    retrain
    before=$("$TRAINER" eval "$M/production.model" -q)
    run retrain --warm-start
    [ "$status" -eq 0 ]
    grep -q "warm start from $(readlink -f "$M/production.model" | xargs dirname)" "$M"/logs/retrain-*.log
    grep -q -- "--init" "$M"/logs/retrain-*.log
    # one more epoch on top of the first: better than the first alone
    [ "$("$TRAINER" eval "$M/production.model" -q)" != "$before" ]
}
