# Shared helpers for the command-line tests (tests/*.bats).
#
# tests/run.sh sets TRAINER (absolute path of the binary under test) and
# FLAVOUR (test or asan). Every training here is tiny: the suite runs twice,
# the second time under ASan+UBSan, which is about ten times slower.

bats_require_minimum_version 1.5.0

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
export TRAINER=${TRAINER:-$ROOT/build/test/trainer}
export FLAVOUR=${FLAVOUR:-test}
MNIST=$ROOT/data/mnist
CONFIG=$ROOT/configs/default.ini

# The pyenv shim costs a third of a second per call; the system python does not.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

# ---- small real-MNIST fixtures ----
#
# The first images of the real files, rewritten as small gzipped IDX files
# once per .bats file, so that a run does not inflate all 60,000 images.
# Same pixels and labels as the real files with data.limit, far less work.

make_small_mnist() { # DIR TRAIN_COUNT TEST_COUNT
    mkdir -p "$1"
    "$PY" - "$MNIST" "$1" "$2" "$3" <<'EOF'
import gzip, struct, sys
src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def cut(name, out, n):
    with gzip.open(f"{src}/{name}", "rb") as f:
        head = f.read(4)
        dims = struct.unpack(">I", head)[0] & 0xff
        shape = list(struct.unpack(">" + "I" * dims, f.read(4 * dims)))
        per = 1
        for d in shape[1:]:
            per *= d
        body = f.read(n * per)
    shape[0] = n
    with gzip.open(f"{dst}/{out}", "wb", compresslevel=1) as g:
        g.write(head + struct.pack(">" + "I" * dims, *shape) + body)
cut("train-images-idx3-ubyte.gz", "train-images.gz", ntrain)
cut("train-labels-idx1-ubyte.gz", "train-labels.gz", ntrain)
cut("t10k-images-idx3-ubyte.gz", "test-images.gz", ntest)
cut("t10k-labels-idx1-ubyte.gz", "test-labels.gz", ntest)
EOF
}

# The --set options that point a run at the fixtures made by make_small_mnist.
small_data_sets() { # DIR
    printf '%s\n' --set "data.train_images=$1/train-images.gz" --set "data.train_labels=$1/train-labels.gz" \
        --set "data.test_images=$1/test-images.gz" --set "data.test_labels=$1/test-labels.gz"
}

# Fixtures shared by the tests of one file, made on first use.
FIXTURES=$BATS_FILE_TMPDIR/mnist
fixtures() {
    [ -e "$FIXTURES/test-labels.gz" ] || make_small_mnist "$FIXTURES" 3000 1000
}

# ---- running the trainer ----

# train_small DIR [ARGS...]: trains on the fixtures, writing DIR/m.model
# (checkpoint DIR/m.model.ckpt) and DIR/m.csv. Defaults: 1030 images (the
# last batch of 50 is partial: 30), 500 test images, 1 epoch, batch 50;
# later --set options override them.
small_args() { # DIR -> the argument list, one per line
    local dir=$1
    [ -e "$FIXTURES/test-labels.gz" ] || fail "no fixtures in $FIXTURES: call fixtures in setup_file" || return
    printf '%s\n' "$CONFIG"
    small_data_sets "$FIXTURES"
    printf '%s\n' --set data.limit=1030 --set data.test_limit=500 --set train.epochs=1 \
        --set train.batch_size=50 --set "output.model=$dir/m.model" --set "output.metrics=$dir/m.csv"
}

train_small() { # DIR [ARGS...]
    local dir=$1
    shift
    local -a ARGS
    small_argv "$dir" || return
    "$TRAINER" train "${ARGS[@]}" "$@"
}

# Sets the array ARGS to what small_args prints.
small_argv() { # DIR
    fixtures || return
    mapfile -t ARGS < <(small_args "$1")
    [ "${#ARGS[@]}" -gt 10 ] || fail "small_args failed"
}

# ---- assertions (each prints what it saw before failing) ----

fail() {
    printf '%s\n' "$@" >&2
    return 1
}

assert_status() { # WANT
    [ "$status" -eq "$1" ] || fail "exit status $status, want $1" "output: $output" "stderr: ${stderr-}"
}

assert_contains() { # HAYSTACK NEEDLE
    [[ $1 == *"$2"* ]] || fail "expected to find: $2" "in: $1"
}

refute_contains() { # HAYSTACK NEEDLE
    [[ $1 != *"$2"* ]] || fail "expected not to find: $2" "in: $1"
}

assert_same_file() { # A B
    cmp "$1" "$2" || fail "$1 and $2 differ"
}

# Model and checkpoint files (docs/model-format.md) end with the run's
# creation time and training time, then the CRC-32: the same model is the
# same bytes but for those last 20, in files of the same length. Both files
# must carry provenance (flags bit 1), so the cut never hides weights.
assert_same_model() { # A B
    local a b f
    a=$(stat -c %s "$1") && b=$(stat -c %s "$2") || return
    [ "$a" -eq "$b" ] || fail "$1 ($a bytes) and $2 ($b bytes) differ in length" || return
    for f in "$1" "$2"; do
        (( $(od -An -tu4 -j 12 -N 4 --endian=little "$f") & 2 )) || fail "$f records no provenance" || return
    done
    cmp -n $((a - 20)) "$1" "$2" || fail "$1 and $2 differ before the run's times"
}

# After `run --separate-stderr`: stderr is exactly one line, starting with
# "trainer: ", containing every given string. SHOW_ERRORS=1 in the
# environment prints each such line in the TAP output, for review.
assert_one_error_line() { # NEEDLE...
    [ -z "${SHOW_ERRORS-}" ] || printf "# %s\n" "$stderr" >&3
    [ "${#stderr_lines[@]}" -eq 1 ] || fail "want one line on stderr, got ${#stderr_lines[@]}:" "$stderr"
    [[ ${stderr_lines[0]} == "trainer: "* ]] || fail "stderr does not start with 'trainer: '" "$stderr"
    local n
    for n in "$@"; do
        assert_contains "$stderr" "$n"
    done
}

# The numbers of a final `accuracy: 0.9123 (912/1000)` line.
# Sets ACC, CORRECT, TOTAL; fails if the last line is not such a line.
parse_accuracy() { # TEXT
    local last
    last=$(printf '%s\n' "$1" | tail -n 1)
    [[ $last =~ ^accuracy:\ ([01]\.[0-9]{4})\ \(([0-9]+)/([0-9]+)\)$ ]] ||
        fail "the last line is not 'accuracy: A (C/T)': $last"
    ACC=${BASH_REMATCH[1]}
    CORRECT=${BASH_REMATCH[2]}
    TOTAL=${BASH_REMATCH[3]}
}

# True when A > B for decimal numbers.
greater() { # A B
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'
}

# Waits (up to TIMEOUT seconds) until FILE exists and contains PATTERN
# (a grep -E pattern), or until the process PID is gone.
wait_for() { # PID FILE PATTERN TIMEOUT
    local pid=$1 file=$2 pattern=$3 i
    for ((i = 0; i < $4 * 100; i++)); do
        grep -qE "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# Prints, in hex, the parameters of a model file (docs/model-format.md): the
# bytes after the magic, version, flags and config text, up to nparams floats.
model_params() { # FILE
    local len n
    len=$(od -An -tu4 -j 16 -N 4 --endian=little "$1" | tr -d ' ')
    n=$(od -An -tu8 -j $((20 + len)) -N 8 --endian=little "$1" | tr -d ' ')
    od -An -v -tx1 -j $((28 + len)) -N $((4 * n)) "$1"
}

# Writes image INDEX of the IDX image file IDX (gzipped or not) as a binary
# PGM (P5) to OUT, and prints its label from LABELS.
write_pgm() { # IDX LABELS INDEX OUT
    "$PY" - "$@" <<'EOF'
import gzip, struct, sys
images, labels, index, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
op = lambda p: gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
with op(images) as f:
    data = f.read()
n, rows, cols = struct.unpack(">III", data[4:16])
px = data[16 + index * rows * cols: 16 + (index + 1) * rows * cols]
with open(out, "wb") as g:
    g.write(b"P5\n%d %d\n255\n" % (cols, rows) + px)
with op(labels) as f:
    print(f.read()[8 + index])
EOF
}

# Prints the labels of an IDX label file, one per line.
idx_labels() { # FILE
    "$PY" - "$1" <<'EOF'
import gzip, sys
p = sys.argv[1]
with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
    print("\n".join(str(b) for b in f.read()[8:]))
EOF
}
