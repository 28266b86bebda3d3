#!/usr/bin/env bats
# Training: byte-identical models for any thread count, resuming (after a
# finished epoch and after SIGINT/SIGTERM mid-epoch) gives the bytes of an
# uninterrupted run, the metrics CSV, no progress bar without a terminal, and
# a failed write never replaces a good model.

load helpers

setup_file() {
    fixtures
}

setup() {
    D=$BATS_TEST_TMPDIR
}

@test "the same config and seed give the same model bytes for 1, 2, 3 and 8 threads" {
    # Batch 50 is not a multiple of 3 or 8, and 1030 images leave a last
    # batch of 30.
    for t in 1 2 3 8; do
        mkdir "$D/t$t"
        # --threads: exactly t threads, on however few cores (threads.h)
        run --separate-stderr train_small "$D/t$t" --threads "$t" --set output.metrics=
        assert_status 0
        assert_contains "$output" " parameters; $t thread"
    done
    for t in 2 3 8; do
        assert_same_model "$D/t1/m.model" "$D/t$t/m.model"
        assert_same_model "$D/t1/m.model.ckpt" "$D/t$t/m.model.ckpt"
    done
}

@test "--threads N overrides OMP_NUM_THREADS and gives the same bytes" {
    mkdir "$D/a" "$D/b"
    OMP_NUM_THREADS=1 run --separate-stderr train_small "$D/a" --set output.metrics=
    assert_status 0
    OMP_NUM_THREADS=1 run --separate-stderr train_small "$D/b" --threads 3 --set output.metrics=
    assert_status 0
    assert_contains "$output" "3 threads"
    assert_same_model "$D/a/m.model" "$D/b/m.model"
}

@test "OMP_NUM_THREADS beyond the CPUs the process may run on gives one thread per CPU, and says so; --threads insists; the same bytes" {
    command -v taskset >/dev/null || skip "no taskset (util-linux)"
    # The first CPU this shell may run on: the test pins to it alone.
    local cpu
    cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')
    local -a ARGS
    mkdir "$D/a" "$D/b" "$D/c"
    small_argv "$D/a"
    OMP_NUM_THREADS=4 run --separate-stderr taskset -c "$cpu" "$TRAINER" train "${ARGS[@]}" --set output.metrics=
    assert_status 0
    assert_contains "$output" "model: 5994 parameters; 1 thread (OMP_NUM_THREADS=4, but the process may run on 1 CPU only; --threads 4 runs 4);"
    small_argv "$D/b"
    OMP_NUM_THREADS=4 run --separate-stderr taskset -c "$cpu" "$TRAINER" train "${ARGS[@]}" --threads 4 \
        --set output.metrics=
    assert_status 0
    assert_contains "$output" "model: 5994 parameters; 4 threads;"
    OMP_NUM_THREADS=1 run --separate-stderr train_small "$D/c" --set output.metrics=
    assert_contains "$output" "model: 5994 parameters; 1 thread;"
    assert_same_model "$D/a/m.model" "$D/b/m.model"
    assert_same_model "$D/a/m.model" "$D/c/m.model"
    OMP_NUM_THREADS=3 run --separate-stderr taskset -c "$cpu" "$TRAINER" eval "$D/a/m.model"
    assert_status 0
    assert_contains "$output" "1 thread (OMP_NUM_THREADS=3, but the process may run on 1 CPU only; --threads 3 runs 3), mean loss"
}

@test "bound threads (OMP_PROC_BIND, OMP_PLACES) are not cut to the one CPU libgomp pins the main thread to" {
    [ "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" -ge 2 ] || skip "needs 2 CPUs"
    local e k=0
    local -a ARGS
    for e in OMP_PROC_BIND=true OMP_PLACES=threads "OMP_PROC_BIND=close OMP_PLACES=cores"; do
        k=$((k + 1))
        mkdir "$D/b$k"
        small_argv "$D/b$k"
        # shellcheck disable=SC2086 # $e: one or two assignments
        run --separate-stderr env OMP_NUM_THREADS=2 $e "$TRAINER" train "${ARGS[@]}" --set output.metrics=
        assert_status 0
        assert_contains "$output" "model: 5994 parameters; 2 threads;"
    done
}

@test "batches above the block count (130: 15 blocks of 9 by default, 44 of 3 with train.blocks=64) are thread-independent too" {
    local k
    for k in 16 64; do
        mkdir "$D/a$k" "$D/b$k"
        run --separate-stderr train_small "$D/a$k" --threads 1 --set train.batch_size=130 --set train.blocks=$k \
            --set output.metrics=
        assert_status 0
        run --separate-stderr train_small "$D/b$k" --threads 3 --set train.batch_size=130 --set train.blocks=$k \
            --set output.metrics=
        assert_status 0
        assert_contains "$output" "3 threads; $([ $k = 16 ] && echo "15 gradient blocks of 9" || echo "44 gradient blocks of 3") samples per batch"
        assert_same_model "$D/a$k/m.model" "$D/b$k/m.model"
    done
    # The cut sets the order of the additions, so it shows in the weights.
    [ "$(model_params "$D/a16/m.model")" != "$(model_params "$D/a64/m.model")" ]
}

@test "a different seed gives different weights (the comparisons above can fail)" {
    mkdir "$D/a" "$D/b"
    train_small "$D/a" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics=
    train_small "$D/b" -q --set data.limit=200 --set data.test_limit=100 --set output.metrics= --set train.seed=2
    # the weights themselves, not just the seed in the stored config
    local a b
    a=$(model_params "$D/a/m.model")
    b=$(model_params "$D/b/m.model")
    [ "$(wc -w <<<"$a")" -gt 1000 ]
    [ "$a" != "$b" ]
}

@test "1 epoch, then --resume to 2 epochs, gives the bytes and metrics of 2 epochs straight" {
    # A schedule that does not depend on the number of epochs: cosine decays
    # over the whole run, so a 1-epoch run has other learning rates. 530
    # images: a last batch of 30.
    local -a sched=(--set train.schedule=constant --set data.limit=530)
    mkdir "$D/straight" "$D/resumed"
    run --separate-stderr train_small "$D/straight" "${sched[@]}" --set train.epochs=2
    assert_status 0
    run --separate-stderr train_small "$D/resumed" "${sched[@]}" --set train.epochs=1
    assert_status 0
    run ! cmp -s "$D/straight/m.model" "$D/resumed/m.model"
    run --separate-stderr train_small "$D/resumed" "${sched[@]}" --set train.epochs=2 \
        --resume "$D/resumed/m.model.ckpt"
    assert_status 0
    assert_contains "$output" "resuming from $D/resumed/m.model.ckpt: epoch 2, batch 1"
    assert_same_model "$D/straight/m.model" "$D/resumed/m.model"
    assert_same_model "$D/straight/m.model.ckpt" "$D/resumed/m.model.ckpt"
    # the per-step loss log continues where it stopped: same steps, same losses
    assert_same_file "$D/straight/m.steps.csv" "$D/resumed/m.steps.csv"
    # One row per epoch, no duplicate; everything but the timings agrees.
    [ "$(wc -l <"$D/resumed/m.csv")" -eq 3 ]
    [ "$(cut -d, -f1-6 "$D/straight/m.csv")" = "$(cut -d, -f1-6 "$D/resumed/m.csv")" ]
}

@test "--resume refuses a checkpoint that already has more epochs than the config asks for" {
    train_small "$D" -q --set train.epochs=2 --set data.limit=200 --set data.test_limit=100
    run --separate-stderr train_small "$D" --set train.epochs=1 --set data.limit=200 --set data.test_limit=100 \
        --resume "$D/m.model.ckpt"
    assert_status 2
    assert_one_error_line "$D/m.model.ckpt" "2 epochs"
}

@test "a checkpoint from before train.blocks (no key: 64 blocks) is refused under 16 and resumes to its own run's bytes with 64; its fingerprint says 64" {
    # The trainer before ce030ad cut every batch into min(batch, 64) blocks and
    # wrote no train.blocks line; such a file is this run's checkpoint with
    # that line taken out of the stored config (length and CRC rewritten).
    local -a small=(--set data.limit=200 --set data.test_limit=100 --set train.schedule=constant
                    --set output.metrics=)
    mkdir "$D/straight" "$D/old" "$D/resumed"
    train_small "$D/straight" -q "${small[@]}" --set train.blocks=64 --set train.epochs=2
    train_small "$D/old" -q "${small[@]}" --set train.blocks=64 --set train.epochs=1
    "$PY" - "$D/old/m.model.ckpt" "$D/old.ckpt" <<'EOF'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", d, 16)[0]
text = d[20:20 + n].decode()
old = text.replace("blocks = 64\n", "")
assert len(text) - len(old) == len("blocks = 64\n"), text
body = d[:16] + struct.pack("<I", len(old)) + old.encode() + d[20 + n:-4]
open(sys.argv[2], "wb").write(body + struct.pack("<I", zlib.crc32(body)))
EOF
    # its fingerprint is that of the config with 64 blocks, not of today's default
    local -a ARGS
    small_argv "$D/x"
    fp() { "$TRAINER" info "$@" --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["fingerprint"])'; }
    local have
    have=$(fp "$D/old.ckpt")
    [ "$have" = "$(fp --config "${ARGS[@]}" "${small[@]}" --set train.blocks=64)" ]
    [ "$have" != "$(fp --config "${ARGS[@]}" "${small[@]}")" ]
    # today's default is 16: refused, naming the file, the key and the fix
    run --separate-stderr train_small "$D/resumed" "${small[@]}" --set train.epochs=2 --resume "$D/old.ckpt"
    assert_status 2
    assert_one_error_line "$D/old.ckpt" "train.blocks (64, now 16)" "--set train.blocks=64"
    [ ! -e "$D/resumed/m.model" ]
    run --separate-stderr train_small "$D/resumed" "${small[@]}" --set train.epochs=2 --set train.blocks=64 \
        --resume "$D/old.ckpt"
    assert_status 0
    assert_contains "$output" "resuming from $D/old.ckpt: epoch 2, batch 1"
    assert_same_model "$D/straight/m.model" "$D/resumed/m.model"
}

# Starts COMMAND... in the background (it must be the trainer itself, not a
# shell function: the signal has to reach it) with stdout in $D/NAME.out and
# stderr in $D/NAME.err, waits until it prints PATTERN, then sends SIGNAL and
# waits for it. Sets RC to its exit status.
interrupt_run() { # NAME PATTERN SIGNAL COMMAND...
    local name=$1 pattern=$2 sig=$3
    shift 3
    "$@" >"$D/$name.out" 2>"$D/$name.err" 3>&- &
    local pid=$!
    if ! wait_for "$pid" "$D/$name.out" "$pattern" 120; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" || true
        fail "the run never printed '$pattern'" "$(cat "$D/$name.out" "$D/$name.err")"
    fi
    kill "-$sig" "$pid"
    RC=0
    wait "$pid" || RC=$?
}

# Sets SUGGESTED to the command that a "continue with: trainer ..." line in
# FILE suggests, as an array starting with the binary under test.
suggested() { # STDERR_FILE
    local line
    line=$(sed -n 's/^trainer: continue with: trainer //p' "$1")
    [ -n "$line" ] || fail "no 'continue with:' line in" "$(cat "$1")"
    # It must repeat the run's options: without them it would train the
    # default config, for many minutes, into models/.
    assert_contains "$line" "'output.model=$I/m.model' "
    assert_contains "$line" " --set data.limit=$LIMIT "
    eval "SUGGESTED=(\"\$TRAINER\" $line)"
}

@test "SIGINT and SIGTERM mid-epoch stop with 130/143 and a resume hint; resuming gives the uninterrupted bytes" {
    # Slow batches, so that the signal, sent 10-30 ms after the line it
    # waits for, lands mid-epoch: 2000 images in batches of 2 through wider
    # convs (0.17 s an epoch on 2 quiet cores); under the sanitizers, which
    # run 10 times slower, 1600 in batches of 5. The interrupted run's
    # directory has a space in its name: the suggested command must quote it.
    I="$D/int dir"
    LIMIT=2000
    local -a more=(--set data.limit=$LIMIT --set train.batch_size=2 --set train.epochs=2
                   --set layer.conv1.filters=16 --set layer.conv2.filters=64) ARGS
    if [ "$FLAVOUR" = asan ]; then
        LIMIT=1600
        more=(--set data.limit=$LIMIT --set train.batch_size=5 --set train.epochs=2 --set layer.conv2.filters=32)
    fi
    small_argv "$I"
    local -a args=("${ARGS[@]}" "${more[@]}")
    mkdir "$D/straight" "$I"
    run --separate-stderr train_small "$D/straight" "${more[@]}"
    assert_status 0

    interrupt_run first '^model: ' INT "$TRAINER" train "${args[@]}"
    [ "$RC" -eq 130 ] || fail "SIGINT: exit $RC, want 130" "$(cat "$D/first.err")"
    assert_contains "$(cat "$D/first.err")" "checkpoint written to $I/m.model.ckpt"
    [ "$(grep -c . "$D/first.err")" -eq 2 ] || fail "want two lines on stderr" "$(cat "$D/first.err")"
    [ -s "$I/m.model.ckpt" ]
    [ ! -e "$I/m.model" ] # stopped in the first epoch

    # The suggested command, stopped again, this time by SIGTERM.
    suggested "$D/first.err"
    [ "${SUGGESTED[-2]}" = --resume ] && [ "${SUGGESTED[-1]}" = "$I/m.model.ckpt" ] ||
        fail "bad suggested command:" "${SUGGESTED[*]}"
    interrupt_run second '^resuming from ' TERM "${SUGGESTED[@]}"
    [ "$RC" -eq 143 ] || fail "SIGTERM: exit $RC, want 143" "$(cat "$D/second.out" "$D/second.err")"

    suggested "$D/second.err"
    run --separate-stderr "${SUGGESTED[@]}"
    assert_status 0
    assert_contains "$output" "resuming from $I/m.model.ckpt"
    assert_same_model "$D/straight/m.model" "$I/m.model"
    assert_same_model "$D/straight/m.model.ckpt" "$I/m.model.ckpt"
    [ "$(cut -d, -f1-6 "$D/straight/m.csv")" = "$(cut -d, -f1-6 "$I/m.csv")" ]
}

@test "the metrics CSV has a header and one line per epoch" {
    run --separate-stderr train_small "$D" --set train.epochs=2 --set data.limit=300 --set data.test_limit=100
    assert_status 0
    mapfile -t rows <"$D/m.csv"
    [ "${#rows[@]}" -eq 3 ] || fail "want 3 lines" "$(cat "$D/m.csv")"
    [ "${rows[0]}" = "epoch,train_loss,train_acc,val_acc,test_acc,lr,samples_per_s,seconds,test_loss,val_loss" ]
    [[ ${rows[1]} == 1,* ]]
    [[ ${rows[2]} == 2,* ]]
    local cols
    cols=$(printf '%s\n' "${rows[@]}" | awk -F, '{ print NF }' | sort -u)
    [ "$cols" = 10 ]
    # The last epoch's test accuracy is the final line's.
    parse_accuracy "$output"
    [ "$(cut -d, -f5 <<<"${rows[2]}")" = "$(awk -v a="$ACC" 'BEGIN { printf "%.6f", a }')" ]
}

@test "without a terminal there is no progress bar; progress=always draws one" {
    run --separate-stderr train_small "$D" --set data.limit=300 --set data.test_limit=100 --set train.batch_size=10
    assert_status 0
    [ -z "$stderr" ] || fail "stderr should be empty" "$stderr"
    refute_contains "$output" $'\r'
    # The opposite check, so that the one above is known to be able to fail.
    # (A bar is drawn every 0.2 s: give it a second of work.)
    local n=1000
    [ "$FLAVOUR" != asan ] || n=300
    run --separate-stderr train_small "$D" --set data.limit=$n --set data.test_limit=100 --set train.batch_size=10 \
        --set output.progress=always --threads 1
    assert_status 0
    assert_contains "$stderr" $'\r'
}

@test "a model that cannot be written leaves the previous one untouched (exit 1)" {
    run --separate-stderr train_small "$D" --set data.limit=200 --set data.test_limit=100
    assert_status 0
    cp "$D/m.model" "$D/good.model"
    cp "$D/m.model.ckpt" "$D/good.ckpt"
    cp "$D/m.csv" "$D/good.csv"
    cp "$D/m.steps.csv" "$D/good.steps.csv"
    # A 10 KiB file-size limit: the 25 KB model cannot be written. The trainer
    # ignores SIGXFSZ, so write() fails with EFBIG.
    local -a ARGS
    small_argv "$D"
    run --separate-stderr bash -c 'ulimit -f 10 && exec "$@"' limit "$TRAINER" train "${ARGS[@]}" \
        --set data.limit=200 --set data.test_limit=100 --set train.seed=7
    assert_status 1
    assert_one_error_line "$D/m.model" "File too large"
    assert_same_file "$D/good.model" "$D/m.model"
    assert_same_file "$D/good.ckpt" "$D/m.model.ckpt"
    # the metrics still describe the model on disk (not the failed run)
    assert_same_file "$D/good.csv" "$D/m.csv"
    assert_same_file "$D/good.steps.csv" "$D/m.steps.csv"
    # and no temporary file is left behind
    run ls -A "$D"
    refute_contains "$output" ".tmp."
    # the good model still loads
    run --separate-stderr "$TRAINER" eval "$D/m.model" -q
    assert_status 0
}

@test "with val_fraction the last images are held out and the model file keeps the best-validation epoch" {
    mkdir "$D/v"
    # lr 0.1 without decay makes validation accuracy peak at epoch 4 of 5
    run --separate-stderr train_small "$D/v" --set data.val_fraction=0.2 --set train.epochs=5 \
        --set train.lr=0.1 --set train.schedule=constant
    assert_status 0
    assert_contains "$output" "824 training, 206 validation, 500 test images"
    best=$(awk -F, 'NR > 1 && $4 > best { best = $4; row = $0 } END { print row }' "$D/v/m.csv")
    [ "${best%%,*}" -ne 5 ] # the test means something only if the best epoch is not the last
    [ "$(grep -c ' saved$' <<< "$output")" -lt 5 ]
    want=$(awk -F, '{ printf "%.0f", $5 * 500 }' <<< "$best")
    run "$TRAINER" eval "$D/v/m.model" -q
    assert_status 0
    [[ "$output" == "accuracy: "*" ($want/500)" ]]
    last=$(tail -n 1 "$D/v/m.csv" | awk -F, '{ printf "%.0f", $5 * 500 }')
    [ "$last" != "$want" ]
}

@test "train.test_every: the test set after every N-th epoch, the last, and each epoch the model keeps; weights unchanged" {
    local -a small=(--set data.limit=200 --set data.test_limit=100 --set train.epochs=4 --set train.schedule=constant)
    mkdir "$D/every" "$D/third"
    train_small "$D/every" -q "${small[@]}"
    run --separate-stderr train_small "$D/third" "${small[@]}" --set train.test_every=3
    assert_status 0
    # Epochs 3 (the third) and 4 (the last) are tested; 1 and 2 print no test figure and record -1.
    [ "$(grep -c '^epoch .* test [0-9.]*%.*s eval)' <<<"$output")" -eq 2 ] || fail "$output"
    [ "$(grep -c '^epoch ' <<<"$output")" -eq 4 ]
    [ "$(cut -d, -f5,9 "$D/third/m.csv" | sed -n '2,3p' | sort -u)" = "-1.000000,-1.000000" ]
    [ "$(cut -d, -f1-3,5 "$D/every/m.csv" | sed -n '4,5p')" = "$(cut -d, -f1-3,5 "$D/third/m.csv" | sed -n '4,5p')" ]
    [ "$(model_params "$D/every/m.model")" = "$(model_params "$D/third/m.model")" ]
    parse_accuracy "$output"
    # A resume may change it (no weight depends on it): from epoch 2 of a run that tested every epoch.
    mkdir "$D/res"
    train_small "$D/res" -q "${small[@]}" --set train.epochs=2
    run --separate-stderr train_small "$D/res" "${small[@]}" --set train.test_every=0 --resume "$D/res/m.model.ckpt"
    assert_status 0
    [ "$(model_params "$D/every/m.model")" = "$(model_params "$D/res/m.model")" ]
    [ "$(cut -d, -f5 "$D/res/m.csv" | sed -n '4p')" = "-1.000000" ]
    # With a validation set and test_every 0, every epoch that improves validation accuracy (the ones the model
    # file takes) is tested, and only those and the last; the model records the test accuracy eval measures.
    mkdir "$D/v"
    train_small "$D/v" -q --set data.limit=500 --set data.test_limit=100 --set data.val_fraction=0.2 \
        --set train.epochs=5 --set train.lr=0.1 --set train.schedule=constant --set train.test_every=0
    awk -F, 'NR > 1 { kept = $4 > best; if (kept) best = $4
                      if ((kept || $1 == 5) != ($5 >= 0)) { print "epoch " $1 ": val " $4 ", test " $5; bad = 1 } }
             END { exit bad }' "$D/v/m.csv" || fail "$(cat "$D/v/m.csv")"
    [ "$(cut -d, -f5 "$D/v/m.csv" | grep -c '^-1')" -ge 1 ] || fail "every epoch was tested: $(cat "$D/v/m.csv")"
    run "$TRAINER" info "$D/v/m.model"
    acc=$(sed -n 's/^test accuracy *\([0-9.]*\) .*/\1/p' <<<"$output")
    run "$TRAINER" eval "$D/v/m.model" -q
    [[ "$output" == "accuracy: $acc "* ]] || fail "info says $acc, eval: $output"
}

@test "a network on the general kernels (3x3, 12 and 20 filters) gives the same bytes for 1 and 3 threads; the start-up line names each layer's kernels" {
    local net=(--set layer.conv1.size=3 --set layer.conv1.filters=12 --set layer.conv2.size=3
        --set layer.conv2.filters=20 --set output.metrics=)
    mkdir "$D/a" "$D/b"
    run --separate-stderr train_small "$D/a" --threads 1 "${net[@]}"
    assert_status 0
    assert_contains "$output" "kernels: conv1 "
    assert_contains "$output" ", conv2 "
    assert_contains "$output" " MFLOP per training sample"
    # pool2 reads 10x10 of conv2's 11x11 output: the passes skip the rest
    assert_contains "$output" " computed: the pools read only part of the layers below)"
    if [ "$FLAVOUR" = test ]; then # the suite's -march=native build has vectors
        [[ "$output" != *loops* ]] || { echo "$output"; false; }
    fi
    run --separate-stderr train_small "$D/b" --threads 3 "${net[@]}"
    assert_status 0
    assert_same_model "$D/a/m.model" "$D/b/m.model"
    # A 9x9 kernel has no vectorised path, and the line says so.
    run --separate-stderr train_small "$D/b" --set layer.conv1.size=9 --set layer.conv2.size=3 --set output.metrics=
    assert_status 0
    assert_contains "$output" "conv1 loops"
}
