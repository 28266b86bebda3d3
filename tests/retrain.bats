#!/usr/bin/env bats
# scripts/retrain.sh and scripts/rollback.sh as an operator runs them: from
# an installed tree (make install PREFIX=...), from /, under cron's bare
# environment (env -i PATH=/usr/bin:/bin). Promotion only when better on the
# same test set, a true history, failures that leave production alone and say
# so, every exit recorded for monitoring.

load helpers

setup_file() {
    P=$BATS_FILE_TMPDIR/prefix
    make -s -C "$ROOT" install PREFIX="$P" BIN="$TRAINER" >/dev/null
    make_small_mnist "$BATS_FILE_TMPDIR/mnist" 1500 1000
}

setup() {
    P=$BATS_FILE_TMPDIR/prefix
    D=$BATS_FILE_TMPDIR/mnist
    W=$(mktemp -d)
    mkdir -p "$W/configs"
    cat > "$W/configs/small.ini" <<INI
[data]
train_images = $D/train-images.gz
train_labels = $D/train-labels.gz
test_images = $D/test-images.gz
test_labels = $D/test-labels.gz
test_limit = 300
[train]
epochs = 1
batch_size = 32
INI
    M=$W/models
}

teardown() {
    grep -qs " $W/models " /proc/mounts && umount "$W/models"
    rm -rf "$W"
}

# retrain [ARGS...]: the installed script, from /, in cron's environment.
retrain() {
    (cd / && env -i PATH=/usr/bin:/bin "$P/share/trainer/scripts/retrain.sh" "$W/configs/small.ini" "$@")
}
rollback() {
    (cd / && env -i PATH=/usr/bin:/bin "$P/share/trainer/scripts/rollback.sh" "$@")
}
status_of() { jq -r ".$1" "$M/status.json"; }
production() { basename "$(readlink "$M/current")"; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }
accuracy_on() { # MODEL TEST_LIMIT
    "$P/bin/trainer" eval "$1" -q --set "data.test_images=$D/test-images.gz" \
        --set "data.test_labels=$D/test-labels.gz" --set "data.test_limit=$2" |
        sed -n 's/^accuracy: [0-9.]* (\([0-9]*\)\/\([0-9]*\))$/\1 \2/p' | awk '{ print $1 / $2 }'
}

# start_long_run: a 1000-epoch retraining in the background; sets pid (the
# script) and tpid (its trainer), read from the lock's owner line.
start_long_run() {
    (cd / && exec env -i PATH=/usr/bin:/bin "$P/share/trainer/scripts/retrain.sh" "$W/configs/small.ini" \
        --force --set train.epochs=1000) 3>&- &
    pid=$!
    for _ in $(seq 200); do grep -qs "retrain pid $pid .*its trainer" "$M/.lock.owner" && break; sleep 0.1; done
    tpid=$(sed -n 's/.*its trainer: pid \([0-9]*\).*/\1/p' "$M/.lock.owner")
}

@test "retrain: a first run promotes quietly; status.json, the log and history say what happened" {
    run retrain
    assert_status 0
    [ -z "$output" ]
    id=$(production)
    [ -f "$M/history/$id/candidate.model" ]
    [ "$(readlink -f "$M/production.model")" = "$M/history/$id/candidate.model" ]
    # the ONNX export of the same model, moved by the same swap
    [ "$(readlink -f "$M/production.onnx")" = "$M/history/$id/candidate.onnx" ]
    [ -s "$M/production.onnx" ]
    [ "$(status_of outcome)" = promoted ]
    [ "$(status_of production_accuracy)" = null ]
    [ "$(status_of run_id)" = "$id" ]
    [ "$(jq -r '.id + " " + .reason' "$M/promotions.jsonl")" = "$id promoted" ]
    jq -e '.fingerprint and .data' "$M/history/$id/info.json" >/dev/null
    [ -z "$(ls "$M/history/$id" | grep -v -e '^candidate\.' -e '^info\.json$')" ]
    [ -z "$(ls "$M/history/$id" | grep -e '\.lock$' -e '\.ckpt$')" ]
    "$P/bin/trainer" eval "$M/production.model" -q | grep -q '^accuracy: '
    [ -z "$(ls -A "$M/staging")" ]
}

@test "retrain: both models are scored on the test set this run's config names (status.json records it)" {
    retrain
    first=$(production)
    # The production model was trained with test_limit = 300; this run's
    # config says 1000: production must be scored on the 1000 images too.
    run retrain --force --set data.test_limit=1000 --set train.lr=0.00001
    assert_status 3
    [ "$(status_of test.limit)" = 1000 ]
    [ "$(status_of test.count)" = 1000 ]
    [ "$(status_of test.images)" = "$D/test-images.gz" ]
    [ "$(status_of production_accuracy)" = "$(accuracy_on "$M/production.model" 1000)" ]
    [ "$(production)" = "$first" ]
}

@test "retrain: a worse candidate is kept out; a better one is promoted" {
    retrain
    first=$(production)
    run retrain --force --set train.lr=0.00001
    assert_status 3
    [ "$(status_of outcome)" = kept ]
    [ "$(production)" = "$first" ]
    run retrain --set train.epochs=3
    assert_status 0
    [ "$(status_of outcome)" = promoted ]
    [ "$(production)" != "$first" ]
}

@test "retrain: nothing changed -> exit 3 'unchanged' without training; --force trains, and equal weights are not promoted" {
    retrain
    first=$(production)
    run retrain --keep 2
    assert_status 3
    [ "$(status_of outcome)" = unchanged ]
    log=$(status_of log)
    refute_contains "$(cat "$log")" "training:"
    run retrain --keep 2 --force
    assert_status 3
    [ "$(status_of outcome)" = kept ]
    assert_contains "$(status_of message)" "weights equal production"
    [ "$(production)" = "$first" ]
    [ "$(ls "$M/history" | wc -l)" -eq 1 ]
}

@test "rollback: walks the promotion log, not file names; --to pins; --list shows it" {
    retrain
    a=$(production)
    retrain --tolerance 1 --set train.seed=2
    b=$(production)
    run rollback "$M"
    assert_status 0
    [ "$(production)" = "$a" ]
    [ "$(status_of outcome)" = "rolled back" ]
    retrain --tolerance 1 --set train.seed=3
    c=$(production)
    [ "$c" != "$a" ] && [ "$c" != "$b" ]
    run rollback "$M"
    assert_status 0
    [ "$(production)" = "$a" ]
    run rollback "$M"
    assert_status 1
    assert_contains "$output" "nothing before"
    run rollback --to "$b" "$M"
    assert_status 0
    [ "$(production)" = "$b" ]
    [ "$(status_of outcome)" = pinned ]
    [ "$(tail -n 1 "$M/promotions.jsonl" | jq -r .reason)" = pinned ]
    run rollback --to nosuchid "$M"
    assert_status 1
    run rollback --list "$M"
    assert_status 0
    assert_contains "$output" "*  "
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 6 ]
    # production.model and production.onnx follow `current`
    [ "$(readlink -f "$M/production.model")" = "$M/history/$b/candidate.model" ]
    [ "$(readlink -f "$M/production.onnx")" = "$M/history/$b/candidate.onnx" ]
}

@test "retention keeps exactly K promoted models, production among them" {
    for seed in 1 2 3 4; do
        retrain --keep 2 --tolerance 1 --set train.seed=$seed
    done
    [ "$(ls "$M/history" | wc -l)" -eq 2 ]
    [ -e "$(readlink -f "$M/production.model")" ]
}

@test "retrain: a failed training leaves production untouched, and stderr carries the trainer's own error" {
    retrain
    before=$(production)
    sum=$(sha "$M/production.model")
    run retrain --set data.train_images=/nonexistent/images.gz
    assert_status 1
    assert_contains "$output" "/nonexistent/images.gz"
    assert_contains "$output" "retrain: failed:"
    [ "$(status_of outcome)" = failed ]
    [ "$(production)" = "$before" ]
    [ "$(sha "$M/production.model")" = "$sum" ]
    run retrain --force --set train.lr=100 --set train.schedule=constant
    assert_status 1
    assert_contains "$output" "training failed (exit"
    assert_contains "$output" "diverge"
}

@test "status.json and the Prometheus file are written on every exit: usage, locked, failed, unchanged, promoted" {
    prom=$W/prom/retrain.prom
    mkdir -p "$W/prom"
    check_prom() { # OUTCOME CODE
        "$PY" "$ROOT/tests/check_prom.py" "$prom" "$1" "$2"
        [ -z "$(ls "$W/prom" | grep -v '^retrain.prom$')" ]
    }
    run retrain --prom "$prom"
    assert_status 0
    check_prom promoted 0
    run retrain --prom "$prom" --keep 0
    assert_status 2
    [ "$(status_of outcome)" = usage ]
    check_prom usage 2
    run retrain --prom "$prom"
    assert_status 3
    check_prom unchanged 3
    run retrain --prom "$prom" --set data.train_images=/nonexistent
    assert_status 1
    check_prom failed 1
    flock "$M/.lock" sleep 2 &
    sleep 0.3
    run retrain --prom "$prom"
    assert_status 4
    [ "$(status_of outcome)" = locked ]
    check_prom locked 4
    wait
    grep -q '^trainer_retrain_last_success_timestamp_seconds ' "$prom"
    grep -q '^trainer_retrain_production_model_age_seconds ' "$prom"
}

@test "one line per run goes to syslog (logger -t trainer-retrain)" {
    mkdir -p "$W/bin"
    printf '#!/bin/sh\necho "$@" >> %s/syslog\n' "$W" > "$W/bin/logger"
    chmod +x "$W/bin/logger"
    (cd / && env -i PATH="$W/bin:/usr/bin:/bin" "$P/share/trainer/scripts/retrain.sh" "$W/configs/small.ini")
    [ "$(wc -l < "$W/syslog")" -eq 1 ]
    assert_contains "$(cat "$W/syslog")" "-t trainer-retrain -- promoted (exit 0)"
}

@test "a second run is locked out, and the message names the process that holds the lock; SIGTERM stops the run and its trainer" {
    retrain
    start_long_run
    [ -n "$tpid" ]
    run retrain
    assert_status 4
    assert_contains "$output" "retrain pid $pid"
    [ "$(status_of outcome)" = locked ] || fail "$(cat "$M/status.json"; cat "$M"/logs/*)"
    kill -TERM "$pid"
    wait "$pid" || true
    ! kill -0 "$tpid" 2>/dev/null
    [ "$(status_of outcome)" = failed ]
    assert_contains "$(status_of message)" "SIGTERM"
    # the lock is free: nobody else inherited it
    flock -n "$M/.lock" true
}

@test "a SIGKILLed run: status says running with its dead pid; its trainer stops; the next run clears what it left" {
    retrain
    start_long_run
    kill -KILL "$pid"
    wait "$pid" || true
    [ "$(status_of outcome)" = running ] || fail "$(cat "$M/status.json"; cat "$M"/logs/*)"
    [ "$(status_of pid)" = "$pid" ]
    for _ in $(seq 50); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$tpid" 2>/dev/null
    [ -n "$(ls -A "$M/staging")" ]
    touch "$M/history/stale.tmp"
    run retrain
    assert_status 3
    [ -z "$(ls -A "$M/staging")" ]
    [ ! -e "$M/history/stale.tmp" ]
}

@test "--timeout stops a training that runs too long: exit 1, the reason, production untouched" {
    retrain
    before=$(production)
    run retrain --force --timeout 1 --set train.epochs=1000
    assert_status 1
    assert_contains "$output" "timed out"
    [ "$(production)" = "$before" ]
    [ "$(status_of outcome)" = failed ]
}

@test "a full disk fails the run (exit 1), keeps production, leaves no temp file behind, and status tells the truth" {
    [ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
    mkdir -p "$M"
    mount -t tmpfs -o size=600k tmpfs "$M" 2>/dev/null || skip "cannot mount a tmpfs here"
    retrain --set train.seed=1
    good=$(production)
    sum=$(sha "$M/production.model")
    seed=2 outcomes=""
    for free in 0 8 40 96 120 160; do
        rm -f "$M/fill"
        avail=$(df -k --output=avail "$M" | tail -n 1)
        [ "$avail" -gt "$free" ] && dd if=/dev/zero of="$M/fill" bs=1k count=$((avail - free)) 2>/dev/null
        seed=$((seed + 1))
        prev=$(jq -r .pid "$M/status.json")
        run retrain --force --tolerance 1 --set train.seed=$seed
        [ "$status" -eq 0 ] || [ "$status" -eq 1 ] || fail "free ${free}k: exit $status: $output"
        outcomes+=" $status"
        [ "$status" -eq 0 ] || echo "# free ${free}k: $(jq -r .message "$M/status.json" 2>/dev/null | cut -c1-150)" >&3
        if [ "$status" -eq 1 ]; then
            [ "$(readlink -f "$M/production.model")" = "$M/history/$good/candidate.model" ]
            [ "$(sha "$M/production.model")" = "$sum" ] || fail "free ${free}k: production changed"
            # status.json records this run's failure, full disk or not
            [ "$(jq -r .outcome "$M/status.json")" = failed ] || fail "free ${free}k: $(cat "$M/status.json")"
            [ "$(jq -r .pid "$M/status.json")" != "$prev" ] || fail "free ${free}k: an earlier run's status"
        else
            [ "$(status_of outcome)" = promoted ]
            good=$(production)
            sum=$(sha "$M/production.model")
        fi
        "$P/bin/trainer" eval "$M/production.model" -q >/dev/null
        jq -e 'true' "$M/promotions.jsonl" >/dev/null || fail "free ${free}k: the log is torn"
    done
    # the levels must reach both ends: runs that fail, and a run with room
    [[ "$outcomes" == *1* ]] && [[ "$outcomes" == *0* ]] || fail "exits at the fill levels:$outcomes"
    echo "# exits at the fill levels:$outcomes" >&3
    rm -f "$M/fill"
    run retrain --force --tolerance 1 --set train.seed=99
    assert_status 0
    [ -z "$(find "$M" -name '*.tmp' -o -name '*.new')" ]
    [ -z "$(ls -A "$M/staging")" ]
    for d in "$M"/history/*/; do [ -s "$d/candidate.model" ] && [ -s "$d/info.json" ]; done
}

@test "data.extra: new image files are trained on without editing the config; a broken drop fails the run" {
    mkdir -p "$W/extra"
    sed -i "s|^\[data\]\$|[data]\nextra = $W/extra|" "$W/configs/small.ini"
    retrain
    first=$(production)
    run retrain
    assert_status 3
    make_small_mnist "$W/new" 200 10
    cp "$W/new/train-images.gz" "$W/extra/batch1-images-idx3-ubyte.gz"
    cp "$W/new/train-labels.gz" "$W/extra/batch1-labels-idx1-ubyte.gz"
    run retrain --tolerance 1
    assert_status 0
    [ "$(production)" != "$first" ]
    jq -e '[.data[] | select(.path | endswith("batch1-images-idx3-ubyte.gz"))] | length == 1' \
        "$M/history/$(production)/info.json" >/dev/null
    good=$(production)
    cp "$W/new/train-images.gz" "$W/extra/batch2-images-idx3-ubyte.gz"
    run retrain --tolerance 1
    assert_status 1
    assert_contains "$output" "batch2"
    [ "$(production)" = "$good" ]
}

@test "--warm-start trains the candidate from the production weights" {
    retrain
    run retrain --warm-start --force --tolerance 1
    assert_status 0
    grep -q -- "--init" "$(status_of log)"
    grep -q "warm start from $M/history/" "$(status_of log)"
}

@test "make install puts units with the prefix filled in, hardened, with a timeout; systemd-analyze verify accepts them" {
    u=$P/lib/systemd/system/trainer-retrain.service
    [ -f "$u" ] && [ -f "$P/lib/systemd/system/trainer-retrain.timer" ]
    grep -q "^ExecStart=$P/share/trainer/scripts/retrain.sh " "$u"
    grep -q '^SuccessExitStatus=3 4$' "$u"
    grep -q '^TimeoutStartSec=' "$u"
    grep -q '^NoNewPrivileges=yes$' "$u"
    grep -q '^ProtectSystem=strict$' "$u"
    grep -q '^ReadWritePaths=' "$u"
    grep -q '^PrivateTmp=yes$' "$u"
    ! grep -q 'network-online' "$u"
    command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
    run systemd-analyze verify "$u" "$P/lib/systemd/system/trainer-retrain.timer"
    [ "$status" -eq 0 ] || fail "$output"
}

@test "make install PREFIX=X after a plain make: the installed trainer reads X/share/trainer/default.ini" {
    printf '[train]\nepochs = 0\n' > "$P/share/trainer/default.ini.test"
    cp "$P/share/trainer/default.ini" "$W/default.ini.saved"
    cp "$P/share/trainer/default.ini.test" "$P/share/trainer/default.ini"
    run bash -c "cd / && env -i PATH=/usr/bin:/bin '$P/bin/trainer' -q"
    cp "$W/default.ini.saved" "$P/share/trainer/default.ini"
    rm -f "$P/share/trainer/default.ini.test"
    assert_status 2
    assert_contains "$output" "/share/trainer/default.ini:2: 'epochs' = 0"
    assert_contains "$output" "$P/"
}
