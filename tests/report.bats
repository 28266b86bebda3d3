#!/usr/bin/env bats
# The HTML report: generated from a small trained model, every referenced
# file present, PNGs that decode at the expected sizes, well-formed SVG, and
# (where Chromium is installed) a page that renders to something not blank.

setup_file() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
    export ROOT
    export TRAINER=${TRAINER:-$ROOT/trainer}
    export R=$BATS_FILE_TMPDIR
    "$TRAINER" train "$ROOT/configs/default.ini" --set data.limit=1500 --set data.test_limit=300 \
        --set train.epochs=2 --set train.batch_size=32 --set "output.model=$R/m.model" \
        --set "output.metrics=$R/m.csv" --set "output.report=$R/auto" -q
}

@test "output.report writes a complete report after training" {
    run python3 "$ROOT/tests/check_report.py" "$R/auto" kernels-conv1.png=436x58 kernels-conv2.png=436x868 \
        input-0.png=112x112 features-conv1-0.png=603x78 features-conv2-0.png=411x105
    echo "$output"
    [ "$status" -eq 0 ]
    grep -q 'loss.svg' "$R/auto/report.html"
    # the per-step curve, from m.steps.csv beside m.csv: 2 epochs of 47 steps
    grep -q 'loss-steps.svg' "$R/auto/report.html"
    [ "$(($(wc -l < "$R/m.steps.csv") - 1))" -eq 94 ]
    grep -q 'Confusion matrix' "$R/auto/report.html"
    grep -q -- '-&gt;' "$R/auto/report.html"
}

@test "trainer report MODEL --metrics --out; the numbers match eval" {
    run "$TRAINER" report "$R/m.model" --metrics "$R/m.csv" --out "$R/manual"
    [ "$status" -eq 0 ]
    [ "$output" = "report: $R/manual/report.html" ]
    python3 "$ROOT/tests/check_report.py" "$R/manual"
    acc=$("$TRAINER" eval "$R/m.model" -q | sed -n 's/^accuracy: [0-9.]* (\(.*\))$/\1/p')
    grep -q "($acc)" "$R/manual/report.html"
    # one point per epoch on the accuracy curve, two curves
    [ "$(grep -c '<circle' "$R/manual/accuracy.svg")" -eq 4 ]
}

@test "report without metrics has no curves but everything else; bad inputs fail cleanly" {
    run "$TRAINER" report "$R/m.model" --out "$R/nometrics"
    [ "$status" -eq 0 ]
    python3 "$ROOT/tests/check_report.py" "$R/nometrics"
    [ ! -e "$R/nometrics/loss.svg" ]
    run "$TRAINER" report "$R/m.model" --metrics "$R/missing.csv" --out "$R/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"missing.csv"* ]]
    echo "not,a,metrics,file" > "$R/bad.csv"
    echo "1,2" >> "$R/bad.csv"
    run "$TRAINER" report "$R/m.model" --metrics "$R/bad.csv" --out "$R/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"bad.csv:"* ]]
}

@test "report.html renders in headless Chromium (skipped where chromium is not installed)" {
    command -v chromium >/dev/null || skip "chromium is not installed (apt-get install chromium)"
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$R/chrome" --window-size=1200,2400 --screenshot="$R/shot.png" \
        "file://$R/auto/report.html" 2>/dev/null
    [ -s "$R/shot.png" ]
    python3 - "$R/shot.png" <<'PY'
import sys
sys.path.insert(0, sys.argv[0] and __import__("os").environ["ROOT"] + "/tests")
from check_report import png_size
w, h, raw = png_size(__import__("pathlib").Path(sys.argv[1]))
distinct = len(set(raw))
assert distinct > 20, f"screenshot looks blank ({distinct} distinct byte values)"
print(f"screenshot {w}x{h}, {distinct} distinct byte values")
PY
}
