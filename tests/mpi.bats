#!/usr/bin/env bats
# The MPI build (make MPI=1; here build/mpi/trainer): ranks split every batch
# and sum the gradient over one fixed tree (include/tree.h), so the model
# bytes equal a one-process run for 1 to 5 ranks (5: shares of uneven
# subtrees) and any threads per rank, in both ways of exchanging (whole
# subtree sums: 2 ranks at batch 64; split by parameters: 3 ranks and up, or
# 2 ranks when their shares fall into many subtrees); a failure on one rank
# ends the whole job quickly with that rank's message; a SIGINT to one rank
# stops them all after the same batch; resume works across rank counts.
# Ranks are oversubscribed on this machine: it tests behaviour, not speed.

load helpers

setup_file() {
    fixtures # 3000 training and 1000 test images: quicker to load than the real files
}

load helpers

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    MPI_TRAINER=${MPI_TRAINER:-$ROOT/build/mpi/trainer}
    TRAINER=${TRAINER:-$ROOT/trainer}
    [ -x "$MPI_TRAINER" ] || skip "no MPI build at $MPI_TRAINER (make build/mpi/trainer)"
    command -v mpirun >/dev/null || skip "mpirun is not installed (apt-get install openmpi-bin)"
    W=$(mktemp -d)
    mapfile -t ARGS < <(small_data_sets "$FIXTURES")
    ARGS+=(--set data.limit=2000 --set data.test_limit=300 --set train.epochs=2 --set train.batch_size=50
          --set train.schedule=constant --set "output.metrics=$W/m.csv" -q)
    export OMP_NUM_THREADS=1
}

teardown() {
    [ -n "${W:-}" ] && rm -rf "$W"
}

mpi() { # ranks, args...
    local n=$1
    shift
    timeout 120 mpirun --allow-run-as-root --oversubscribe -np "$n" "$MPI_TRAINER" "$@"
}

@test "1 to 5 ranks give the one-process model, checkpoint and step log bytes" {
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/one.model" \
        --set "output.metrics=$W/one.csv"
    for n in 1 2 3 4 5; do
        run mpi "$n" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/np$n.model" \
            --set "output.metrics=$W/np$n.csv"
        [ "$status" -eq 0 ] || fail "$n ranks: exit $status" "$output"
        # rank 0 alone prints: one accuracy line
        [ "$(grep -c '^accuracy: ' <<< "$output")" -eq 1 ]
        assert_same_model "$W/one.model" "$W/np$n.model"
        assert_same_model "$W/one.model.ckpt" "$W/np$n.model.ckpt"
        assert_same_file "$W/one.steps.csv" "$W/np$n.steps.csv"
    done
}

@test "threads x ranks: 2x2 at batch 64, 3x2 at batch 37 and 3 ranks for 2 blocks give the one-process bytes; rank 0 prints the bytes sent" {
    local -a a=("${ARGS[@]:0:${#ARGS[@]}-1}") # without -q
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.batch_size=64 --set "output.model=$W/b64.model"
    # Unbound: for 2 ranks mpirun binds each to one core, where the trainer
    # would run one thread (threads.h).
    run env OMP_NUM_THREADS=2 timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS -np 2 \
        "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" --set train.batch_size=64 \
        --set "output.model=$W/b64x2.model"
    [ "$status" -eq 0 ] || fail "exit $status" "$output"
    assert_same_model "$W/b64.model" "$W/b64x2.model"
    # Each rank sends its half-tree's sum (5,994 floats), 32 losses and hits, a flag.
    assert_contains "$output" "model: 5994 parameters; 2 threads"
    assert_contains "$output" "mpi: 2 ranks; each sends 24.1 KB per step"
    [ "$(grep -c '^mpi: ' <<< "$output")" -eq 1 ]

    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.batch_size=37 --set "output.model=$W/b37.model"
    # 3 ranks: mpirun binds to a socket, not a core, so each rank keeps 2
    # threads (ranks with different counts would print a range).
    OMP_NUM_THREADS=2 run mpi 3 train "$ROOT/configs/default.ini" "${a[@]}" --set train.batch_size=37 \
        --set "output.model=$W/b37x3.model"
    [ "$status" -eq 0 ] || fail "exit $status" "$output"
    assert_contains "$output" "model: 5994 parameters; 2 threads;"
    assert_same_model "$W/b37.model" "$W/b37x3.model"

    # Two blocks for three ranks: rank 2 computes nothing, and says so once.
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.blocks=2 --set "output.model=$W/k2.model"
    run mpi 3 train "$ROOT/configs/default.ini" "${a[@]}" --set train.blocks=2 --set "output.model=$W/k2x3.model"
    [ "$status" -eq 0 ] || fail "exit $status" "$output"
    assert_same_model "$W/k2.model" "$W/k2x3.model"
    # Rank 0's share of 2 blocks over 3 ranks is empty.
    assert_contains "$output" "note: 1 thread of 3 in all waits: a batch has 2 gradient blocks, each rank working its own share."
    [ "$(grep -c '^note: ' <<< "$output")" -eq 1 ]
}

@test "ranks with different thread counts: the start-up line counts each rank's own, and the threads beyond a rank's share of the blocks" {
    local -a a=("${ARGS[@]:0:${#ARGS[@]}-1}") # without -q
    # 4 blocks: 2 for each rank. Rank 0 runs 1 thread, rank 1 runs 3, one
    # of which has no block; the totals alone (4 threads, 4 blocks) hide it.
    run timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" --set train.blocks=4 --threads 1 \
        --set "output.model=$W/m.model" : \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" --set train.blocks=4 --threads 3 \
        --set "output.model=$W/m.model"
    [ "$status" -eq 0 ] || fail "exit $status" "$output"
    assert_contains "$output" "model: 5994 parameters; 1-3 threads per rank (4 in all); 4 gradient blocks"
    assert_contains "$output" "note: 1 thread of 4 in all waits: a batch has 4 gradient blocks, each rank working its own share."
}

@test "a bad config on one rank alone ends the job at once, naming the rank and the key" {
    local -a a=("${ARGS[@]:0:${#ARGS[@]}-1}")
    start=$(date +%s)
    run timeout 60 mpirun --allow-run-as-root --oversubscribe \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" --set "output.model=$W/m.model" : \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" --set "output.model=$W/m.model" \
        --set train.epochs=abc
    [ "$status" -ne 0 ]
    [ "$status" -ne 124 ] # not the timeout
    [ $(( $(date +%s) - start )) -lt 30 ]
    [[ "$output" == *"rank 1: "*"train.epochs"* ]] || fail "no line naming rank 1 and the key" "$output"
    [ ! -e "$W/m.model" ]
}

@test "a bad data path on one rank ends the job within seconds, naming the rank and the file" {
    start=$(date +%s)
    run timeout 60 mpirun --allow-run-as-root --oversubscribe \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/m.model" : \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/m.model" \
        --set data.train_images=/nonexistent/train.gz
    [ "$status" -ne 0 ]
    [ "$status" -ne 124 ] # not the timeout
    [ $(( $(date +%s) - start )) -lt 30 ]
    [[ "$output" == *"rank 1: /nonexistent/train.gz: cannot open"* ]]
    [ "$(grep -c 'nonexistent' <<< "$output")" -eq 1 ]
}

@test "SIGINT to rank 1 alone stops both ranks after the same batch; rank 0 writes; resuming on 3 ranks gives the uninterrupted bytes" {
    # Batches of 5 from 20,000 real images: 4,000 short steps an epoch
    # (most of a second on a quiet machine), so a signal sent once training
    # starts lands mid-epoch.
    local -a a=(--set "data.train_images=$MNIST/train-images-idx3-ubyte.gz"
                --set "data.train_labels=$MNIST/train-labels-idx1-ubyte.gz" "${ARGS[@]:4:4}"
                --set "output.metrics=$W/m.csv" --set data.limit=20000 --set data.test_limit=300 --set train.epochs=2
                --set train.batch_size=5 --set train.lr=0.01 --set "output.model=$W/m.model")
    "$TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" -q --set "output.model=$W/one.model"

    # Rank 1 is a shell that notes its pid, then becomes the trainer.
    timeout 120 mpirun --allow-run-as-root --oversubscribe \
        -np 1 "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" : \
        -np 1 sh -c 'echo $$ >"$0"; exec "$@"' "$W/rank1.pid" "$MPI_TRAINER" train "$ROOT/configs/default.ini" "${a[@]}" \
        >"$W/out" 2>"$W/err" &
    local job=$!
    wait_for "$job" "$W/out" '^mpi: ' 60 || fail "training never started" "$(cat "$W/out" "$W/err")"
    kill -INT "$(cat "$W/rank1.pid")"
    local rc=0
    wait "$job" || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mpirun: exit $rc, want the ranks' 130/143" "$(cat "$W/out" "$W/err")"
    # One rank reports (rank 0, which did not see the signal itself).
    [ "$(grep -c 'checkpoint written to' "$W/err")" -eq 1 ] || fail "want one report" "$(cat "$W/err")"
    assert_contains "$(cat "$W/err")" "stopped by signal 15 (SIGTERM); checkpoint written to $W/m.model.ckpt"
    [ ! -e "$W/m.model" ] # stopped in the first epoch

    run mpi 3 train "$ROOT/configs/default.ini" "${a[@]}" -q --resume "$W/m.model.ckpt"
    [ "$status" -eq 0 ] || fail "resume: exit $status" "$output"
    assert_same_model "$W/one.model" "$W/m.model"
}

@test "4 ranks, then one process resuming, match an uninterrupted run" {
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/one.model"
    mpi 4 train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.epochs=1 --set "output.model=$W/s.model"
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/s.model" --resume "$W/s.model.ckpt"
    assert_same_model "$W/one.model" "$W/s.model"
}
