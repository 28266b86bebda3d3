#!/bin/bash
# Runs the whole suite twice: the -Werror build (build/test), then the same
# tests under AddressSanitizer and UndefinedBehaviorSanitizer (build/asan).
# Every suite speaks TAP; the closing line counts the tests of both passes.
#
# Tests write only inside their own temp dirs: the source tree, with its
# ignored files (models/, data/, runs/) and untracked ones, must be byte for
# byte the same afterwards, or the suite fails and names what changed. Only
# build/ and the binaries the build makes are left out of that check.
#
#   tests/run.sh                      everything
#   tests/run.sh tests/mpi.bats ...   only these .bats files, no unit tests
set -u
cd "$(dirname "$0")/.."

# One line per entry of the tree: type, mode, path, and a checksum of each
# regular file's bytes (a link's target stands for a link).
tree_state() {
    find . \( -path ./build -o -path ./.git -o -path ./trainer \) -prune -o -printf '%y %m %p %l\n' |
        LC_ALL=C sort
    find . \( -path ./build -o -path ./.git -o -path ./trainer \) -prune -o -type f -print0 |
        LC_ALL=C sort -z | xargs -0 -r sha256sum
}
before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
tree_state >"$before"

pass=0
fail=0
failed_names=()

run_tap() { # name, command...
    local name=$1
    shift
    local out t0=$SECONDS
    out=$("$@" 2>&1)
    local rc=$?
    printf "%s\n" "$out" | sed "s|^|[$name] |"
    echo "[$name] # $((SECONDS - t0)) s" # where the suite's time goes
    local ok notok
    ok=$(printf '%s\n' "$out" | grep -cE '^ok ')
    notok=$(printf '%s\n' "$out" | grep -cE '^not ok ')
    pass=$((pass + ok))
    fail=$((fail + notok))
    if [ "$notok" -gt 0 ]; then
        failed_names+=("$name")
    elif [ "$rc" -ne 0 ]; then
        fail=$((fail + 1)) # a crash or a non-zero exit with no failed test to show for it
        failed_names+=("$name (exit $rc)")
    fi
}

files=("$@")
[ $# -gt 0 ] || files=(tests/*.bats)

for flavour in test asan; do
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    [ $# -gt 0 ] || run_tap "$flavour/unit" env CMOCKA_MESSAGE_OUTPUT=TAP "build/$flavour/unit_tests"
    if [ $# -eq 0 ] && [ "$flavour" = test ]; then
        for v in avx2 generic novec; do # the kernels built for other CPUs (Makefile: KERNEL_VARIANTS)
            run_tap "test/kernels-$v" env CMOCKA_MESSAGE_OUTPUT=TAP "build/kernels-$v/kernel_tests"
        done
    fi
    for f in "${files[@]}"; do
        [ -e "$f" ] || continue
        # Open MPI's own allocations would drown ASan's report; the MPI
        # tests run once, against the MPI build.
        [ "$flavour" = asan ] && [ "$f" = tests/mpi.bats ] && continue
        # The retraining tests exercise the shell scripts around the trainer
        # (a dozen trainings); the trainer itself is under ASan elsewhere.
        [ "$flavour" = asan ] && [ "$f" = tests/retrain.bats ] && continue
        run_tap "$flavour/$(basename "$f" .bats)" env TRAINER="$PWD/build/$flavour/trainer" \
            MPI_TRAINER="$PWD/build/mpi/trainer" FLAVOUR="$flavour" bats --tap "$f"
    done
done

tree_state >"$after"
if ! cmp -s "$before" "$after"; then
    echo "not ok - the tests changed the source tree (lines: - before, + after):"
    diff "$before" "$after" | grep '^[<>]' | sed 's/^</  -/; s/^>/  +/' | head -n 40
    fail=$((fail + 1))
    failed_names+=("source tree changed")
fi

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failing suites: ${failed_names[*]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
