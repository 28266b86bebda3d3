#!/usr/bin/env bash
# bench.sh - how fast ./trainer trains and evaluates on this machine.
#
#   scripts/bench.sh              (make bench) about 2-3 minutes on 2 cores
#   BENCH_QUICK=1 scripts/bench.sh      a quarter of the data, about 40 s
#
# Prints: training throughput for threads x batch (median of BENCH_REPEATS
# one-epoch runs over the real MNIST training set, data loading and
# evaluation excluded: the trainer's own samples_per_s), GFLOP/s from the
# FLOP count the trainer computes from the network and prints at start-up
# (1.705 MFLOP per training sample for the default network: 852,480
# multiply-adds, forward 322,560, backward 529,920: the dense computation's
# count; a layer whose dw sums its pool windows' winners only, "dw
# vec512-winners", does a quarter of its dw's, so GFLOP/s are dense-
# equivalent where the kernels line says so), the share of the FMA
# peaks measured by a small loop (512-bit where the CPU has it, and 256-bit),
# thread scaling, OMP_NUM_THREADS at four per CPU against one per CPU,
# PyTorch side by side where it is installed
# (scripts/bench_torch.py), a sweep over network shapes with each layer's
# kernel path, the time to evaluate the 10,000 test images, the time to load
# the four gz files, the maximum RSS of a full run, and the time to 99% test
# accuracy with configs/fast.ini.
#
# Environment:
#   BENCH_TRAINER=PATH    binary to measure (default ./trainer)
#   BENCH_BASELINE=PATH   a second binary (say, an older build): every run is
#                         repeated with it, alternating, and the ratio printed
#   BENCH_THREADS="1 2"   thread counts (default: 1, 2 and nproc if larger)
#   BENCH_BATCHES="16 64 512"
#   BENCH_REPEATS=3       runs per cell; the median is reported
#   BENCH_LIMIT=N         training images per epoch (default all; quick 15000)
#   BENCH_CONFIG=PATH     base config of the throughput runs (default
#                         configs/default.ini; give an older one to a baseline
#                         that does not know newer keys)
#   BENCH_SKIP_FAST=1     skip the time-to-99% runs
#   BENCH_FAST_SEEDS="1 2 3 4 5"  seeds of the time-to-99% runs (one row each)
#   BENCH_BASELINE_FAST_CONFIG=PATH  the baseline's fast.ini (default
#                         configs/fast.ini; an older one for a baseline that
#                         does not know newer keys)
#   BENCH_SKIP_SWEEP=1    skip the shape sweep
#   BENCH_SWEEP_LIMIT=N   training images per sweep run (default 15000)
#   BENCH_TORCH=0         skip PyTorch even where it is installed
#   CC                    compiler for the peak loop (default cc)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
TRAINER=${BENCH_TRAINER:-./trainer}
CONFIG=${BENCH_CONFIG:-configs/default.ini}
BASELINE=${BENCH_BASELINE:-}
# GNU nproc obeys OMP_NUM_THREADS and OMP_THREAD_LIMIT: the CPUs, not those.
NPROC=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1)
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    LIMIT=${BENCH_LIMIT:-15000}
    REPEATS=${BENCH_REPEATS:-3}
else
    LIMIT=${BENCH_LIMIT:-0}
    REPEATS=${BENCH_REPEATS:-3}
fi
THREADS=${BENCH_THREADS:-"1 2$([ "$NPROC" -gt 2 ] && echo " $NPROC" || true)"}
BATCHES=${BENCH_BATCHES:-"16 64 512"}
MFLOP_PER_SAMPLE= # from the trainer's start-up line

for bin in "$TRAINER" ${BASELINE:+"$BASELINE"}; do
    if [ ! -x "$bin" ]; then
        echo "bench: $bin is not an executable; build it with 'make'" >&2
        exit 2
    fi
done
for f in data/mnist/train-images-idx3-ubyte.gz data/mnist/t10k-images-idx3-ubyte.gz; do
    if [ ! -r "$f" ]; then
        echo "bench: $f is missing; run 'make data'" >&2
        exit 2
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/trainer-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f..%.0f", lo, hi }'; }

# One training run: BIN THREADS BATCH TAG [--set ...]. Leaves the stdout in
# $TMP/TAG.out and the metrics CSV in $TMP/TAG.csv. THREADS is N (--threads
# N) or omp:N (OMP_NUM_THREADS=N alone, which the trainer cuts to the CPUs).
train_once() {
    local bin=$1 t=$2 bs=$3 tag=$4
    shift 4
    local -a tflag=(--threads "$t")
    case $t in omp:*) t=${t#omp:} && tflag=() ;; esac
    OMP_NUM_THREADS=$t "$bin" "$CONFIG" "${tflag[@]}" \
        --set train.epochs=1 --set train.batch_size="$bs" --set data.limit="$LIMIT" \
        --set data.test_limit=1000 --set output.progress=never \
        --set output.model="$TMP/$tag.model" --set output.metrics="$TMP/$tag.csv" "$@" \
        >"$TMP/$tag.out" 2>&1 || { echo "bench: $bin failed:" >&2; cat "$TMP/$tag.out" >&2; exit 1; }
}
# samples_per_s of the epoch (column 7 of the metrics CSV).
rate_of() { awk -F, 'NR == 2 { print $7 }' "$TMP/$1.csv"; }
load_of() { sed -n 's/.*loaded in \([0-9.]*\) s.*/\1/p' "$TMP/$1.out" | head -1; }
eval_of() { sed -n 's/.*(+\([0-9.]*\) s eval).*/\1/p' "$TMP/$1.out" | head -1; }

# ---- the FMA peak of one core, measured ----
peak_loop() { # VECTOR_BYTES -> GFLOP/s of one core, or nothing
    cat >"$TMP/peak.c" <<'EOF'
#include <stdio.h>
#include <time.h>
typedef float vf __attribute__((vector_size(VB)));
enum { N = VB / 4 };
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv)
{
    (void)argv;
    vf m, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
    for (int l = 0; l < N; l++) { m[l] = 0.999999f; c[l] = 1e-7f * (float)argc; }
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = c;
    /* Many short tries, the best kept: on shared cores some run alone. */
    long iters = 500000;
    double best = 0;
    for (int rep = 0; rep < 300; rep++) {
        double t0 = now();
        for (long k = 0; k < iters; k++) {
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; a4 = a4 * m + c;
            a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c; a8 = a8 * m + c; a9 = a9 * m + c;
            a10 = a10 * m + c; a11 = a11 * m + c;
            __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                             "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
        }
        double g = 2.0 * N * 12 * iters / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    vf s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    printf("%.1f\n", best + 0 * (double)s[0]);
    return 0;
}
EOF
    # 512-bit only where the CPU has AVX-512 (elsewhere GCC would split it).
    [ "$1" = 64 ] && ! grep -qw avx512f /proc/cpuinfo 2>/dev/null && return 0
    if ${CC:-cc} -O2 -march=native -ffp-contract=fast -DVB="$1" "$TMP/peak.c" -o "$TMP/peak$1" 2>/dev/null &&
        "$TMP/peak$1" 2>/dev/null; then :; fi
}

echo "== trainer benchmark: $TRAINER${BASELINE:+ (baseline $BASELINE)}"
echo "machine: $NPROC cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo 2>/dev/null | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
awk -v l="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)" -v n="$NPROC" \
    'BEGIN { if (l + 0 > n * 0.25) print "note: the machine is busy; other processes share the cores and the figures below" }'
PEAK256=$(peak_loop 32)
PEAK512=$(peak_loop 64)
if [ -n "$PEAK256" ]; then
    PEAK=${PEAK512:-$PEAK256}
    echo "FMA peak, one core (measured, 12 independent FMA chains): ${PEAK512:+${PEAK512} GFLOP/s with 512-bit vectors, }${PEAK256} GFLOP/s with 256-bit"
else
    PEAK=78 PEAK256=78
    echo "FMA peak, one core: assumed 78 GFLOP/s (could not compile the peak loop)"
fi
PEAKNAME=$([ -n "$PEAK512" ] && echo 512-bit || echo 256-bit)
# The FLOP count of the network, as the trainer computes it.
flops_of() { sed -n 's/.*; \([0-9.]*\) MFLOP per training sample.*/\1/p' "$TMP/$1.out" | head -1; }
kernels_of() { sed -n 's/^kernels: \(.*\); [0-9.]* MFLOP.*/\1/p' "$TMP/$1.out" | head -1; }
# What the passes compute where the pools read only part of a layer (the
# start-up line says so), else the whole count.
computed_of() {
    local c
    c=$(sed -n 's/.* MFLOP per training sample (\([0-9.]*\) computed.*/\1/p' "$TMP/$1.out" | head -1)
    echo "${c:-$(flops_of "$1")}"
}
train_once "$TRAINER" 1 64 probe --set data.limit=64 --set data.test_limit=10
MFLOP_PER_SAMPLE=$(flops_of probe)
[ -n "$MFLOP_PER_SAMPLE" ] || MFLOP_PER_SAMPLE=1.70496 # an older trainer: the default network's count
echo "network ($CONFIG): $MFLOP_PER_SAMPLE MFLOP per training sample; kernels: $(kernels_of probe)"
case "$(kernels_of probe)" in *winners*)
    echo "  (GFLOP/s below are dense-equivalent: the layers whose dw is 'winners' multiply only their pool windows' winners, a quarter of that dw's FLOPs)" ;;
esac
echo "(samples/s is the median; min..max shows the spread: on a shared machine the max is the closest to an idle one)"
echo "training: $REPEATS one-epoch runs per cell over $([ "$LIMIT" = 0 ] && echo "all 60,000" || echo "$LIMIT") training images; samples/s from the trainer (loading and evaluation excluded)"
echo

# ---- throughput table ----
declare -A MED BMED
printf '%7s %6s %12s %20s %9s %9s %9s' threads batch samples/s "(min..max)" GFLOP/s "% $PEAKNAME" "% 256-bit"
[ -n "$BASELINE" ] && printf ' %12s %8s' "baseline/s" speedup
echo
LOADS=()
# Round by round over all the cells, so that the cells' runs interleave: a
# ratio of two cells (the scaling below) compares runs seconds apart, not
# the host's speed of one minute against the next.
for r in $(seq "$REPEATS"); do
    for t in $THREADS; do
        for bs in $BATCHES; do
            train_once "$TRAINER" "$t" "$bs" run
            rate_of run >>"$TMP/rates.$t.$bs"
            [ "$bs" = 64 ] && LOADS+=("$(load_of run)")
            if [ -n "$BASELINE" ]; then
                train_once "$BASELINE" "$t" "$bs" base
                rate_of base >>"$TMP/brates.$t.$bs"
            fi
        done
    done
done
for t in $THREADS; do
    for bs in $BATCHES; do
        m=$(median <"$TMP/rates.$t.$bs")
        MED[$t,$bs]=$m
        awk -v m="$m" -v t="$t" -v bs="$bs" -v mm="$(minmax <"$TMP/rates.$t.$bs")" -v f="$MFLOP_PER_SAMPLE" -v p="$PEAK" \
            -v q="$PEAK256" 'BEGIN { g = m * f / 1000; printf "%7d %6d %12.0f %20s %9.1f %8.1f%% %8.1f%%", t, bs, m, "(" mm ")", g, 100 * g / (p * t), 100 * g / (q * t) }'
        if [ -n "$BASELINE" ]; then
            b=$(median <"$TMP/brates.$t.$bs")
            BMED[$t,$bs]=$b
            awk -v m="$m" -v b="$b" 'BEGIN { printf " %12.0f %7.2fx", b, m / b }'
        fi
        echo
    done
done
echo
for bs in $BATCHES; do
    if [ -n "${MED[1,$bs]:-}" ] && [ -n "${MED[2,$bs]:-}" ]; then
        awk -v a="${MED[1,$bs]}" -v b="${MED[2,$bs]}" -v bs="$bs" \
            'BEGIN { printf "scaling 1 -> 2 threads at batch %d: %.2fx\n", bs, b / a }'
    fi
done

# ---- oversubscribed: OMP_NUM_THREADS at 4 per CPU, against one per CPU ----
# The trainer runs at most one thread per CPU it may run on (threads.h);
# this row shows what a user's OMP_NUM_THREADS=8 on a small machine costs.
OVER=$((4 * NPROC))
: >"$TMP/orates1" && : >"$TMP/orates4"
for r in $(seq "$REPEATS"); do
    train_once "$TRAINER" "$NPROC" 64 one
    rate_of one >>"$TMP/orates1"
    train_once "$TRAINER" "omp:$OVER" 64 over
    rate_of over >>"$TMP/orates4"
done
awk -v a="$(median <"$TMP/orates1")" -v b="$(median <"$TMP/orates4")" -v n="$NPROC" -v o="$OVER" \
    -v line="$(sed -n 's/^model: [0-9]* parameters; \(.*\); [0-9]* gradient block.*/\1/p' "$TMP/over.out")" 'BEGIN {
    printf "OMP_NUM_THREADS=%d on %d CPUs, batch 64 (alternating with %d threads, median of the runs): %.0f samples/s against %.0f: %.3f (the start-up line: %s)\n", o, n, n, b, a, b / a, line }'

# ---- PyTorch, same network, same machine, same time ----
TT=$([ "$NPROC" -ge 2 ] && echo 2 || echo 1)
# Debian's python3-torch belongs to the system python, not to a pyenv one.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if [ "${BENCH_TORCH:-1}" != 0 ] && "$PY" -c 'import torch' 2>/dev/null; then
    : >"$TMP/trates" && : >"$TMP/orates"
    for r in $(seq "$REPEATS"); do # alternating, one epoch each
        train_once "$TRAINER" "$TT" 64 trun
        rate_of trun >>"$TMP/orates"
        "$PY" scripts/bench_torch.py --threads "$TT" --batch 64 --repeats 1 --limit "$LIMIT" >"$TMP/torch.out" 2>&1 ||
            { cat "$TMP/torch.out" >&2; break; }
        sed -n 's/^median training throughput: \([0-9.]*\) samples.*/\1/p' "$TMP/torch.out" >>"$TMP/trates"
    done
    if [ -s "$TMP/trates" ]; then
        awk -v a="$(median <"$TMP/orates")" -v b="$(median <"$TMP/trates")" -v t="$TT" -v f="$MFLOP_PER_SAMPLE" \
            -v v="$(sed -n 's/^torch \([^:]*\):.*/\1/p' "$TMP/torch.out")" 'BEGIN {
            printf "PyTorch %s, %d threads, batch 64 (alternating with the trainer, median of the runs): %.0f samples/s (%.1f GFLOP/s); trainer %.0f samples/s: %.2fx\n", v, t, b, b * f / 1000, a, a / b }'
    fi
else
    echo "PyTorch: not installed ($PY -c 'import torch' fails; make bench installs python3-torch), or BENCH_TORCH=0"
fi

# ---- shape sweep: other networks, each layer's kernels named ----
# One-epoch runs over BENCH_SWEEP_LIMIT images with all cores, batch 64;
# GFLOP/s from each network's own FLOP count. The 32x32 input pads MNIST
# with 2 zero pixels per side (LeNet-5's input), written by python3.
if [ "${BENCH_SKIP_SWEEP:-0}" != 1 ]; then
    SL=${BENCH_SWEEP_LIMIT:-15000}
    [ "$LIMIT" != 0 ] && [ "$LIMIT" -lt "$SL" ] && SL=$LIMIT
    PAD32=
    if command -v python3 >/dev/null 2>&1 && python3 - "$SL" "$TMP" <<'PY' 2>/dev/null; then PAD32=1; fi
import gzip, struct, sys
n, out = int(sys.argv[1]), sys.argv[2]
for name, count in (("train", n), ("t10k", 1000)):
    with gzip.open(f"data/mnist/{name}-images-idx3-ubyte.gz") as f:
        magic, total, rows, cols = struct.unpack(">IIII", f.read(16))
        count = min(count, total)
        data = f.read(count * rows * cols)
    pad = bytearray()
    for i in range(count):
        img = data[i * 784:(i + 1) * 784]
        pad += bytes(2 * 32)
        for r in range(28):
            pad += bytes(2) + img[r * 28:(r + 1) * 28] + bytes(2)
        pad += bytes(2 * 32)
    with open(f"{out}/{name}32-images", "wb") as f:
        f.write(struct.pack(">IIII", magic, count, 32, 32) + pad)
    with gzip.open(f"data/mnist/{name}-labels-idx1-ubyte.gz") as f:
        m, t = struct.unpack(">II", f.read(8))
        labels = f.read(count)
    with open(f"{out}/{name}32-labels", "wb") as f:
        f.write(struct.pack(">II", m, count) + labels)
PY
    echo
    echo "shape sweep: $SL training images per run, $NPROC threads, batch 64, median of $REPEATS; % of the default network's GFLOP/s (run alternately with each shape) and of the $PEAKNAME peak"
    echo "(GFLOP/s count the network's MFLOP a sample; 'computed' is the part the passes do where the pools read only part of a layer)"
    printf '%-24s %9s %9s %10s %8s %7s %7s  %s\n' network MFLOP/smp computed samples/s GFLOP/s "% dflt" "% peak" "kernels"
    while IFS='|' read -r name sets; do
        [ -n "$name" ] || continue
        if [ "$name" = "32x32 input" ]; then
            [ -n "$PAD32" ] || { printf '%-24s (skipped: needs python3 to pad MNIST)\n' "$name"; continue; }
            sets="$sets --set data.train_images=$TMP/train32-images --set data.train_labels=$TMP/train32-labels"
            sets="$sets --set data.test_images=$TMP/t10k32-images --set data.test_labels=$TMP/t10k32-labels"
        fi
        : >"$TMP/srates" && : >"$TMP/drates"
        for r in $(seq "$REPEATS"); do
            # Each shape side by side with the default network: the host's
            # speed drifts over the sweep, and a ratio of runs minutes apart
            # measured the drift as much as the shape.
            if [ -n "$sets" ]; then
                train_once "$TRAINER" "$NPROC" 64 dsweep --set data.limit="$SL"
                rate_of dsweep >>"$TMP/drates"
            fi
            # shellcheck disable=SC2086 # $sets is a list of --set options
            train_once "$TRAINER" "$NPROC" 64 sweep --set data.limit="$SL" $sets
            rate_of sweep >>"$TMP/srates"
        done
        m=$(median <"$TMP/srates")
        f=$(flops_of sweep)
        g=$(awk -v m="$m" -v f="$f" 'BEGIN { printf "%.1f", m * f / 1000 }')
        if [ -n "$sets" ]; then
            d=$(awk -v m="$(median <"$TMP/drates")" -v f="$(flops_of dsweep)" 'BEGIN { printf "%.1f", m * f / 1000 }')
        else
            d=$g
        fi
        awk -v n="$name" -v f="$f" -v c="$(computed_of sweep)" -v m="$m" -v g="$g" -v d="$d" -v p="$PEAK" -v t="$NPROC" \
            -v k="$(kernels_of sweep)" \
            'BEGIN { printf "%-24s %9.4f %9.4f %10.0f %8.1f %6.0f%% %6.1f%%  %s\n", n, f, c, m, g, 100 * g / d, 100 * g / (p * t), k }'
    done <<'EOF'
default (8@5x5, 16@5x5)|
conv1 16 filters|--set layer.conv1.filters=16
conv1 32 filters|--set layer.conv1.filters=32
conv2 32 filters|--set layer.conv2.filters=32
conv2 64 filters|--set layer.conv2.filters=64
3x3 kernels|--set layer.conv1.size=3 --set layer.conv2.size=3
7x7 kernels|--set layer.conv1.size=7 --set layer.conv2.size=7
12 and 12 filters|--set layer.conv1.filters=12 --set layer.conv2.filters=12
32x32 input|--set model.input_size=32
EOF
fi

# ---- evaluation and loading ----
EVALS=()
for r in $(seq "$REPEATS"); do
    OMP_NUM_THREADS=$NPROC "$TRAINER" "$CONFIG" --set train.epochs=1 --set data.limit=2000 \
        --set data.test_limit=0 --set output.progress=never --set output.model="$TMP/ev.model" \
        --set output.metrics= >"$TMP/ev.out" 2>&1 || { cat "$TMP/ev.out" >&2; exit 1; }
    EVALS+=("$(eval_of ev)")
done
printf 'evaluation of the 10,000 test images, %d threads: %s s (median of %d)\n' "$NPROC" \
    "$(printf '%s\n' "${EVALS[@]}" | median)" "$REPEATS"
if [ "$LIMIT" = 0 ]; then
    printf 'loading the 4 gz files (60,000 + 10,000 images): %s s (median of %d)\n' \
        "$(printf '%s\n' "${LOADS[@]}" | median)" "${#LOADS[@]}"
else
    printf 'loading (data.limit=%s training images): %s s (median of %d; run without BENCH_QUICK for all 60,000)\n' \
        "$LIMIT" "$(printf '%s\n' "${LOADS[@]}" | median)" "${#LOADS[@]}"
fi

# ---- the time to 99%: configs/fast.ini, seed by seed, and max RSS ----
# Each seed's whole run (start to exit, loading, every evaluation and save
# included) against the trainer's own figures: "loaded in", the seconds of
# every epoch and the "+N s eval" of every evaluation (both printed to 0.01 s;
# an epoch that train.test_every does not test prints none, and "evals"
# counts the epochs that evaluated).
# "other" is what the wall time holds beyond those: process start, network
# and buffer set-up, checkpoint and model saves. With BENCH_BASELINE the
# baseline runs each seed right after the trainer, and gets its own rows.
fast_row() { # BIN LABEL SEED CONFIG
    local bin=$1 label=$2 seed=$3 config=$4 t0 t1
    t0=$(date +%s.%N)
    $TIMEV "$bin" "$config" --threads "$NPROC" --set train.seed="$seed" --set output.progress=never \
        --set output.model="$TMP/fast.model" --set output.metrics="$TMP/fast.csv" >"$TMP/fast.out" 2>&1 ||
        { cat "$TMP/fast.out" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v label="$label" -v seed="$seed" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" '
        FNR == NR { if (FNR > 1) { train += $8; acc = 100 * $5 }; next } # the metrics CSV
        /loaded in/ { for (i = 1; i < NF; i++) if ($i == "in") load = $(i + 1) }
        /^epoch .*s eval\)/ { s = $0; sub(/.*\(\+/, "", s); sub(/ s eval.*/, "", s); ev += s; n++ } # evaluated epochs
        END {
            printf "%-9s %4s %8.2f%% %7.2f %7.2f %7.2f %7.2f %7.2f %6d  %s\n", label, seed, acc, wall, load, train, ev,
                   wall - load - train - ev, n, (acc >= 99.0 ? "yes" : "no")
        }' FS=, "$TMP/fast.csv" FS=' ' "$TMP/fast.out" | tee -a "$TMP/fast.rows"
}
if [ "${BENCH_SKIP_FAST:-0}" != 1 ]; then
    TIMEV=
    /usr/bin/time -v true >/dev/null 2>&1 && TIMEV="/usr/bin/time -v -o $TMP/time.txt"
    SEEDS=${BENCH_FAST_SEEDS:-"1 2 3 4 5"}
    echo
    echo "time to 99%: configs/fast.ini, $NPROC threads, seeds $SEEDS; seconds, wall = whole run from start to exit"
    printf '%-9s %4s %9s %7s %7s %7s %7s %7s %6s  %s\n' binary seed accuracy wall load train eval other evals ">=99%"
    : >"$TMP/fast.rows"
    for seed in $SEEDS; do
        fast_row "$TRAINER" trainer "$seed" configs/fast.ini
        [ -z "$BASELINE" ] || fast_row "$BASELINE" baseline "$seed" "${BENCH_BASELINE_FAST_CONFIG:-configs/fast.ini}"
    done
    for label in trainer ${BASELINE:+baseline}; do
        rows=$(awk -v l="$label" '$1 == l' "$TMP/fast.rows")
        col() { printf '%s\n' "$rows" | awk -v c="$1" '{ print $c }' | median; } # the median of column C
        printf '%s: %d of %d seeds reached 99.0%%; median wall %.2f s, load %.2f s, evaluation %.2f s\n' "$label" \
            "$(printf '%s\n' "$rows" | grep -c ' yes$')" "$(printf '%s\n' "$rows" | grep -c .)" "$(col 4)" "$(col 5)" "$(col 7)"
    done
    if [ -n "$TIMEV" ]; then
        awk -F': ' '/Maximum resident set size/ { printf "max RSS of the last run: %.1f MB\n", $2 / 1024 }' "$TMP/time.txt"
    else
        echo "max RSS: /usr/bin/time not available"
    fi
fi
