#!/usr/bin/env bash
# bench-mpi.sh - what the MPI exchange costs: training samples/s of 1 rank
# against 2 ranks (1 thread each), over Open MPI's TCP transport on the
# loopback device, without a limit and with lo capped at 1 Gbit/s, and the
# bytes each rank sends per step.
#
#   make bench-mpi     (installs Open MPI and iproute2, builds build/mpi/trainer)
#   scripts/bench-mpi.sh     about 2-4 minutes on 2 cores
#
# The cap is a tc token bucket on lo (tbf rate 1gbit burst 1mb latency 20ms),
# set up and removed by this script; it needs root and tc (iproute2). It
# slows every loopback user of the machine while it runs. Without root or tc,
# or when the kernel refuses the qdisc, or when lo already has a root qdisc
# that is not ours, the script says so and measures without the cap.
#
# samples/s is the trainer's own figure per epoch (loading and evaluation
# excluded), the median over BENCH_REPEATS runs of 2 epochs each. "sent/step"
# is the trainer's start-up line: what each rank hands to MPI per full batch.
# "lo bytes/step" is the loopback device's transmit counter over a 2-rank run,
# divided by steps and ranks: it includes TCP/IP and MPI headers, start-up
# and evaluation, and any other process's loopback traffic at the time.
#
# Environment:
#   BENCH_TRAINER=PATH   the MPI build to measure (default build/mpi/trainer)
#   BENCH_BASELINE=PATH  a second MPI build (say, an older one), measured in
#                        alternation with the first, its figures side by side
#   BENCH_BATCHES="64"   batch sizes (one table row per batch and link)
#   BENCH_LIMIT=20000    training images
#   BENCH_REPEATS=3      runs per cell
#   BENCH_RATE=1gbit     the cap
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
TRAINER=${BENCH_TRAINER:-build/mpi/trainer}
BASELINE=${BENCH_BASELINE:-}
BATCHES=${BENCH_BATCHES:-64}
LIMIT=${BENCH_LIMIT:-20000}
REPEATS=${BENCH_REPEATS:-3}
RATE=${BENCH_RATE:-1gbit}

for bin in "$TRAINER" ${BASELINE:+"$BASELINE"}; do
    if [ ! -x "$bin" ]; then
        echo "bench-mpi: $bin is not an executable; build it with 'make build/mpi/trainer'" >&2
        exit 2
    fi
done
if ! command -v mpirun >/dev/null; then
    echo "bench-mpi: mpirun is missing; run 'scripts/install-deps.sh --test'" >&2
    exit 2
fi
if [ ! -r data/mnist/train-images-idx3-ubyte.gz ]; then
    echo "bench-mpi: data/mnist is missing; run 'make data'" >&2
    exit 2
fi

TMP=$(mktemp -d)
CAPPED=0
cleanup() {
    if [ "$CAPPED" = 1 ]; then
        tc qdisc del dev lo root 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Rank placement: no binding (the cores are shared), TCP only, on lo. A
# rank waiting in MPI yields its core: with a qdisc on lo, the kernel moves
# the packets in softirq time, which two spinning ranks on two cores starve
# (measured: 2-4k samples/s spinning against 15k yielding, capped).
# shellcheck disable=SC2054 # tcp,self is one argument
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca pml ob1 --mca btl tcp,self
        --mca btl_tcp_if_include lo --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS=1)

# One run: prints each epoch's samples/s, one per line; the start-up lines
# go to $TMP/last.out.
run_once() { # binary, ranks, batch
    "${MPIRUN[@]}" -np "$2" "$1" train configs/default.ini --set "data.limit=$LIMIT" \
        --set data.test_limit=1000 --set train.epochs=2 --set "train.batch_size=$3" \
        --set "output.model=$TMP/m.model" --threads 1 >"$TMP/last.out" 2>&1 || {
        echo "bench-mpi: $1 failed with $2 ranks:" >&2
        tail -5 "$TMP/last.out" >&2
        exit 1
    }
    rm -f "$TMP"/m.model*
    sed -n 's/.*  \([0-9][0-9]*\) samples\/s .*/\1/p' "$TMP/last.out"
}

lo_tx() { cat /sys/class/net/lo/statistics/tx_bytes 2>/dev/null || echo 0; }

# One row: medians for 1 and 2 ranks of each binary, alternating.
measure() { # link, batch
    local link=$1 bs=$2 bins=("$TRAINER") b
    [ -n "$BASELINE" ] && bins+=("$BASELINE")
    for b in "${!bins[@]}"; do : >"$TMP/r1.$b"; : >"$TMP/r2.$b"; : >"$TMP/lo.$b"; done
    for _ in $(seq "$REPEATS"); do
        for b in "${!bins[@]}"; do
            run_once "${bins[$b]}" 1 "$bs" >>"$TMP/r1.$b"
            local before after
            before=$(lo_tx)
            run_once "${bins[$b]}" 2 "$bs" >>"$TMP/r2.$b"
            after=$(lo_tx)
            # 2 epochs of ceil(LIMIT / bs) steps, 2 ranks
            echo $(( (after - before) / (2 * ((LIMIT + bs - 1) / bs)) / 2 )) >>"$TMP/lo.$b"
            sed -n 's/^mpi: [0-9]* ranks; each sends \(.*\) per step$/\1/p' "$TMP/last.out" >"$TMP/sent.$b"
        done
    done
    for b in "${!bins[@]}"; do
        local one two
        one=$(median <"$TMP/r1.$b")
        two=$(median <"$TMP/r2.$b")
        printf '| %s | %s | %d | %s | %s | %.2fx | %s | %.1f KB |\n' "$([ "$b" = 0 ] && echo "this build" || echo baseline)" \
            "$link" "$bs" "$one" "$two" "$(echo "$two $one" | awk '{ print $1 / $2 }')" "$(cat "$TMP/sent.$b")" \
            "$(median <"$TMP/lo.$b" | awk '{ print $1 / 1e3 }')"
    done
}

echo "bench-mpi: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $LIMIT images, 2 epochs, $REPEATS runs per cell;"
echo "Open MPI over TCP on lo, 1 thread per rank; samples/s: median of the trainer's per-epoch figures"
echo
echo "| build | link | batch | 1 rank samples/s | 2 ranks samples/s | 2 ranks / 1 rank | sent/step/rank | lo bytes/step/rank |"
echo "|---|---|---|---|---|---|---|---|"
for bs in $BATCHES; do
    measure "loopback, no limit" "$bs"
done

why=""
if [ "$(id -u)" != 0 ]; then
    why="not root"
elif ! command -v tc >/dev/null; then
    why="tc is not installed (apt-get install iproute2)"
elif tc qdisc show dev lo | grep -q '^qdisc' && ! tc qdisc show dev lo | grep -q '^qdisc noqueue'; then
    why="lo already has a qdisc ($(tc qdisc show dev lo | head -1)); not touching it"
elif ! msg=$(tc qdisc add dev lo root tbf rate "$RATE" burst 1mb latency 20ms 2>&1); then
    why="tc qdisc add failed (the kernel or tc refused it): $msg"
else
    CAPPED=1
fi
if [ "$CAPPED" = 1 ]; then
    for bs in $BATCHES; do
        measure "lo capped at $RATE" "$bs"
    done
    tc qdisc del dev lo root
    CAPPED=0
else
    echo
    echo "bench-mpi: no $RATE cap: $why; the capped rows are left out"
fi
