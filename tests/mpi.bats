#!/usr/bin/env bats
# The MPI build (make MPI=1; here build/mpi/trainer): ranks split every batch
# and the model bytes equal a one-process run for 1 to 4 ranks; a failure on
# one rank ends the whole job quickly with that rank's message; resume works
# under mpirun. Ranks are oversubscribed on this machine: it tests behaviour,
# not speed.

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    MPI_TRAINER=${MPI_TRAINER:-$ROOT/build/mpi/trainer}
    TRAINER=${TRAINER:-$ROOT/trainer}
    [ -x "$MPI_TRAINER" ] || skip "no MPI build at $MPI_TRAINER (make build/mpi/trainer)"
    command -v mpirun >/dev/null || skip "mpirun is not installed (apt-get install openmpi-bin)"
    W=$(mktemp -d)
    ARGS=(--set data.limit=2000 --set data.test_limit=300 --set train.epochs=2 --set train.batch_size=50
          --set train.schedule=constant -q --set "output.metrics=$W/m.csv")
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

@test "1, 2, 3 and 4 ranks give the one-process model bytes" {
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/one.model"
    for n in 1 2 3 4; do
        run mpi "$n" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/np$n.model"
        [ "$status" -eq 0 ]
        # rank 0 alone prints: one accuracy line
        [ "$(grep -c '^accuracy: ' <<< "$output")" -eq 1 ]
        cmp "$W/one.model" "$W/np$n.model"
    done
}

@test "2 ranks x 2 threads with a batch the ranks cannot split evenly" {
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.batch_size=37 --set "output.model=$W/one.model"
    OMP_NUM_THREADS=2 mpi 2 train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.batch_size=37 \
        --set "output.model=$W/two.model"
    cmp "$W/one.model" "$W/two.model"
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

@test "resume under mpirun matches an uninterrupted one-process run" {
    "$TRAINER" train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/one.model"
    mpi 2 train "$ROOT/configs/default.ini" "${ARGS[@]}" --set train.epochs=1 --set "output.model=$W/r.model"
    mpi 3 train "$ROOT/configs/default.ini" "${ARGS[@]}" --set "output.model=$W/r.model" --resume "$W/r.model.ckpt"
    cmp "$W/one.model" "$W/r.model"
}
