#!/bin/bash
# Runs the whole suite twice: the -Werror build (build/test), then the same
# tests under AddressSanitizer and UndefinedBehaviorSanitizer (build/asan).
# Every suite speaks TAP; the closing line counts the tests of both passes.
set -u
cd "$(dirname "$0")/.."

pass=0
fail=0
failed_names=()

run_tap() { # name, command...
    local name=$1
    shift
    local out
    out=$("$@" 2>&1)
    local rc=$?
    printf "%s\n" "$out" | sed "s|^|[$name] |"
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

for flavour in test asan; do
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_tap "$flavour/unit" env CMOCKA_MESSAGE_OUTPUT=TAP "build/$flavour/unit_tests"
    for f in tests/*.bats; do
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

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failing suites: ${failed_names[*]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
