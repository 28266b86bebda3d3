#!/usr/bin/env bats
# Inputs that the fuzzers (make fuzz) once crashed or exhausted memory with:
# each must now give one error line and exit 2, never a crash. Run in both
# the normal and the sanitizer build.

bats_require_minimum_version 1.5.0

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    TRAINER=${TRAINER:-$ROOT/trainer}
    R=$ROOT/tests/fuzz/regressions
}

refused() { # expected text, command...
    local want=$1
    shift
    run --separate-stderr timeout 60 "$@"
    echo "status $status; stderr: $stderr"
    [ "$status" -eq 2 ]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == *"$want"* ]]
}

@test "a gzip whose trailer claims 4 GB is not trusted with the allocation" {
    refused "idx-forged-isize.gz" "$TRAINER" train "$ROOT/configs/default.ini" \
        --set "data.train_images=$R/idx-forged-isize.gz" --set output.model="$BATS_TEST_TMPDIR/m.model" --set output.metrics=
}

@test "a gzipped 'model' that would inflate past the size cap" {
    refused "model-oom" "$TRAINER" eval "$R/model-oom"
}

@test "a config whose layer has no type" {
    refused "config-unset-type.ini" "$TRAINER" train "$R/config-unset-type.ini" \
        --set output.model="$BATS_TEST_TMPDIR/m.model" --set output.metrics=
}
