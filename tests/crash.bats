#!/usr/bin/env bats
# Hard stops: SIGKILL at random moments never leaves a broken checkpoint and
# resuming still ends with the uninterrupted run's bytes; divergence stops
# with a clear message and keeps the last good checkpoint.

load helpers

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    TRAINER=${TRAINER:-$ROOT/trainer}
    W=$(mktemp -d)
    ARGS=(--set data.limit=2000 --set data.test_limit=200 --set train.epochs=3 --set train.batch_size=32
          --set output.progress=never)
}

teardown() {
    rm -rf "$W"
}

train() { # dir, extra args...
    local d=$1
    shift
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$d/m.model" \
        --set "output.metrics=$d/m.csv" -q "$@"
}


@test "20 SIGKILLs at random moments: the checkpoint always loads, resume matches an uninterrupted run" {
    mkdir -p "$W/ref" "$W/k"
    train "$W/ref"
    # Spread the kills over the run: its length under this build sets the range.
    start=$(date +%s%N)
    train "$W/probe" >/dev/null
    span_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    kills=0
    RANDOM=42
    while [ $kills -lt 20 ]; do
        resume=()
        [ -f "$W/k/m.model.ckpt" ] && resume=(--resume "$W/k/m.model.ckpt")
        ( exec "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/k/m.model" \
            --set "output.metrics=$W/k/m.csv" -q "${resume[@]}" > /dev/null 2>&1 ) &
        pid=$!
        delay_ms=$(( RANDOM % (span_ms / 3 + 1) + 5 ))
        sleep "$(printf '0.%03d' $((delay_ms % 1000)))"
        sleep $((delay_ms / 1000))
        kill -9 $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        kills=$((kills + 1))
        if [ -f "$W/k/m.model.ckpt" ]; then
            "$TRAINER" eval "$W/k/m.model.ckpt" -q --set data.test_limit=10 > /dev/null
        fi
        if [ -f "$W/k/m.model" ]; then
            "$TRAINER" eval "$W/k/m.model" -q --set data.test_limit=10 > /dev/null
        fi
    done
    resume=()
    [ -f "$W/k/m.model.ckpt" ] && resume=(--resume "$W/k/m.model.ckpt")
    train "$W/k" "${resume[@]}"
    assert_same_model "$W/ref/m.model" "$W/k/m.model"
    # a kill in the middle of a write may leave a temp file; the next run,
    # holding the lock, clears it
    [ -z "$(ls "$W/k" | grep '\.tmp\.')" ]
}

@test "divergence stops with exit 1, names the step, suggests a lower lr, names this run's checkpoint" {
    # lr 20 reached by a warm-up over 2 epochs: epoch 1 survives, epoch 2
    # explodes (a loss of 1e5 and more, still finite).
    mkdir -p "$W/d"
    run train "$W/d" --set train.lr=20 --set train.warmup_epochs=2 --set train.schedule=constant
    [ "$status" -eq 1 ]
    [[ "$output" == *"diverged in epoch 2"* ]]
    [[ "$output" == *"lower train.lr"* ]]
    [[ "$output" == *"last good checkpoint is $W/d/m.model.ckpt (end of epoch 1)"* ]]
    "$TRAINER" eval "$W/d/m.model.ckpt" -q --set data.test_limit=10
}

@test "a run that diverges at once names no checkpoint and leaves the earlier run's files alone" {
    mkdir -p "$W/d"
    train "$W/d" --set train.epochs=1
    mkdir "$W/good"
    cp "$W/d/m.model" "$W/d/m.model.ckpt" "$W/d/m.csv" "$W/d/m.steps.csv" "$W/good/"
    # lr 100: the loss explodes in the first batches (to 1e31, still finite)
    run train "$W/d" --set train.epochs=1 --set train.lr=100 --set train.schedule=constant
    [ "$status" -eq 1 ]
    [[ "$output" == *"diverged in epoch 1"* ]]
    [[ "$output" == *"no checkpoint was written"* ]]
    [[ "$output" != *"m.model.ckpt"* ]]
    # the model on disk is the earlier run's, and so are its metrics
    for f in m.model m.model.ckpt m.csv m.steps.csv; do
        cmp "$W/good/$f" "$W/d/$f"
    done
}

@test "a second trainer on the same output.model is refused while the first runs" {
    mkdir -p "$W/l"
    ( exec "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/l/m.model" \
        --set "output.metrics=$W/l/m.csv" -q --set train.epochs=50 > /dev/null 2>&1 ) &
    pid=$!
    for _ in $(seq 100); do
        [ -s "$W/l/m.model.lock" ] && break
        sleep 0.1
    done
    run train "$W/l" --set train.epochs=1
    kill -TERM $pid
    wait $pid || true
    [ "$status" -eq 1 ]
    [[ "$output" == *"m.model: another trainer (pid $pid) is writing this model"* ]]
    [ "${#lines[@]}" -eq 1 ]
    # once the first has gone, the lock is free again
    run train "$W/l" --set train.epochs=1
    [ "$status" -eq 0 ]
}

@test "temp files a killed writer left beside the model and checkpoint are cleared by the next run" {
    mkdir -p "$W/t"
    touch "$W/t/m.model.tmp.AbC123" "$W/t/m.model.ckpt.tmp.XyZ789" "$W/t/other.tmp.aaaaaa"
    train "$W/t" --set train.epochs=1
    [ ! -e "$W/t/m.model.tmp.AbC123" ]
    [ ! -e "$W/t/m.model.ckpt.tmp.XyZ789" ]
    [ -e "$W/t/other.tmp.aaaaaa" ] # not ours: left alone
}
