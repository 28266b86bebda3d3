#!/usr/bin/env bats
# The HTML report: generated from small trained models, every referenced
# file present, PNGs that decode at the expected sizes, well-formed SVG;
# metrics tied to their model; charts that read honestly; several runs
# compared; a live page while training; and (where Chromium is installed)
# the page rendered at desktop and phone widths and printed, with its
# pixels and layout checked.

load helpers

setup_file() {
    export R=$BATS_FILE_TMPDIR ROOT
    # Small copies of MNIST in $R/mnist, named relative to $R: the models
    # record relative test-set paths, as a run from the project folder does.
    fixtures
    cd "$R"
    local -a data=(--set data.train_images=mnist/train-images.gz --set data.train_labels=mnist/train-labels.gz
        --set data.test_images=mnist/test-images.gz --set data.test_labels=mnist/test-labels.gz)
    # Run A: 2 epochs. Run B: 3 epochs at another learning rate.
    "$TRAINER" train "$ROOT/configs/default.ini" "${data[@]}" --set data.limit=1500 --set data.test_limit=300 \
        --set train.epochs=2 --set train.batch_size=32 --set "output.model=$R/m.model" \
        --set "output.metrics=$R/m.csv" --set "output.report=$R/auto" -q
    "$TRAINER" train "$ROOT/configs/default.ini" "${data[@]}" --set data.limit=1000 --set data.test_limit=300 \
        --set train.epochs=3 --set train.batch_size=32 --set train.lr=0.02 --set "output.model=$R/b.model" \
        --set "output.metrics=$R/b.metrics.csv" -q
    # Metrics of a long run that nears 100%, in the old eight-column format.
    printf '%s\n' epoch,train_loss,train_acc,val_acc,test_acc,lr,samples_per_s,seconds \
        1,0.30,0.950,-1,0.960,0.05,100,1.0 2,0.10,0.985,-1,0.985,0.04,53000,1.0 \
        3,0.05,0.995,-1,0.990,0.03,52000,1.0 4,0.03,0.998,-1,0.991,0.02,54000,1.0 \
        5,0.02,0.999,-1,0.9917,0.01,23000,1.0 >"$R/near100.csv"
}

# The models' test sets are named relative to $R.
setup() {
    cd "$R"
}

@test "output.report writes a complete report after training" {
    run "$PY" "$ROOT/tests/check_report.py" "$R/auto" kernels-conv1.png=436x58 kernels-conv2.png=436x868 \
        input-0.png=112x112 features-conv1-0.png=603x78 features-conv2-0.png=411x105
    echo "$output"
    [ "$status" -eq 0 ]
    grep -q 'loss.svg' "$R/auto/report.html"
    # the per-step curve, from m.steps.csv beside m.csv: 2 epochs of 47 steps
    grep -q 'loss-steps.svg' "$R/auto/report.html"
    [ "$(($(wc -l < "$R/m.steps.csv") - 1))" -eq 94 ]
    grep -q 'Confusion matrix' "$R/auto/report.html"
    grep -q -- '-&gt;' "$R/auto/report.html"
    # the run's own metrics: no warning
    ! grep -q 'class="warn"' "$R/auto/report.html"
}

@test "trainer report MODEL --metrics --out; the numbers match eval" {
    run --separate-stderr "$TRAINER" report "$R/m.model" --metrics "$R/m.csv" --out "$R/manual"
    assert_status 0
    [ "$output" = "report: $R/manual/report.html" ]
    [ -z "$stderr" ] || fail "unexpected stderr: $stderr"
    "$PY" "$ROOT/tests/check_report.py" "$R/manual"
    acc=$("$TRAINER" eval "$R/m.model" -q | sed -n 's/^accuracy: [0-9.]* (\(.*\))$/\1/p')
    grep -q "($acc)" "$R/manual/report.html"
    # one point per epoch on the accuracy curve, two curves
    [ "$(grep -c '<circle' "$R/manual/accuracy.svg")" -eq 4 ]
}

@test "defect 1: another run's metrics are named in a warning at the top of the page and on stderr" {
    run --separate-stderr "$TRAINER" report "$R/m.model" --metrics "$R/b.metrics.csv" --out "$R/mixed"
    assert_status 0
    assert_contains "$stderr" "trainer: warning: $R/b.metrics.csv does not belong to $R/m.model"
    assert_contains "$stderr" "ends at epoch 3, but $R/m.model was configured for 2 epochs"
    # The warning comes before the summary.
    local page
    page=$(cat "$R/mixed/report.html")
    [[ ${page%%<h2>Summary*} == *'class="warn"'*"does not belong to"* ]] || fail "no warning above the summary"
}

@test "defect 2: the metrics beside the model are found; a test set that is not there says how to name it" {
    # From another directory the model's relative data paths do not resolve.
    cd "$ROOT"
    run --separate-stderr "$TRAINER" report "$R/m.model" --out "$R/found"
    assert_status 2
    assert_one_error_line "mnist/test-images.gz" "--set data.test_images="
    run --separate-stderr "$TRAINER" report "$R/m.model" --out "$R/found" \
        --set "data.test_images=$R/mnist/test-images.gz" --set "data.test_labels=$R/mnist/test-labels.gz"
    assert_status 0
    # m.csv beside m.model, and b.metrics.csv beside b.model
    grep -q '<img src="loss.svg"' "$R/found/report.html"
    grep -q "$R/m.csv" "$R/found/report.html"
    cd "$R"
    run "$TRAINER" report "$R/b.model" --out "$R/found-b"
    assert_status 0
    grep -q "$R/b.metrics.csv" "$R/found-b/report.html"
    [ "$(grep -c '<circle' "$R/found-b/accuracy.svg")" -eq 6 ]
}

# The legend's labels and the plot area of an SVG chart: every legend label
# must lie above the highest grid line, where no curve can run.
legend_clear_of_plot() { # SVG NAME...
    "$PY" - "$@" <<'EOF'
import re, sys
svg, names = open(sys.argv[1]).read(), sys.argv[2:]
grid = [float(re.search(r'y1="([0-9.]+)"', l).group(1)) for l in re.findall(r'<line[^>]*>', svg)
        if 'class="grid"' in l or 'stroke="#ddd"' in l]
top = min(grid)
for name in names:
    ys = [float(m) for m in re.findall(r'<text[^>]*y="([0-9.]+)"[^>]*>' + re.escape(name) + '</text>', svg)]
    assert ys, f"no legend label {name!r}"
    assert all(y < top for y in ys), f"legend label {name!r} at y={ys} is inside the plot (top {top})"
print("legend above the plot, which starts at", top)
EOF
}

@test "defect 3: the accuracy legend sits above the plot, clear of curves near 100%" {
    run "$TRAINER" report "$R/m.model" --metrics "$R/near100.csv" --out "$R/near100"
    assert_status 0
    legend_clear_of_plot "$R/near100/accuracy.svg" train test
    legend_clear_of_plot "$R/near100/loss.svg" train
}

@test "defect 4: a viewport for phones, images and charts that shrink, print CSS that keeps blocks whole" {
    grep -q '<meta name="viewport" content="width=device-width' "$R/auto/report.html"
    grep -q 'img,svg.sheet{max-width:100%' "$R/auto/report.html"
    grep -q '@media print{.*break-inside:avoid' "$R/auto/report.html"
}

@test "defect 5: the step chart has round ticks, a log y axis and says what a point is" {
    # 2000 steps: drawn as means of 4 steps each.
    awk 'BEGIN { print "step,epoch,loss,lr"; for (i = 1; i <= 2000; i++)
        printf "%d,%d,%.6f,%.6g\n", i, int((i - 1) / 1000) + 1, 2.3 * exp(-i / 300) + 0.01, 0.05 * (1 - i / 2001) }' \
        >"$R/long.steps.csv"
    run "$TRAINER" report "$R/m.model" --metrics "$R/m.csv" --steps "$R/long.steps.csv" --out "$R/steps"
    assert_status 0
    "$PY" - "$R/steps/loss-steps.svg" <<'EOF'
import math, re, sys
svg = open(sys.argv[1]).read()
assert "mean of each 4 steps" in svg, "the binned curve is not labelled as such"
assert "log scale" in svg, "the y axis is not log-scaled"
ticks = [float(t) for t in re.findall(r'text-anchor="middle">([0-9.e+]+)</text>', svg)]
ticks = [t for t in ticks if t > 0]
assert len(ticks) >= 3, f"too few x ticks: {ticks}"
step = ticks[1] - ticks[0]
lead = step / 10 ** math.floor(math.log10(step))
assert round(lead, 6) in (1, 2, 5), f"x tick step {step} is not 1, 2 or 5 times a power of ten"
assert all(abs(t / step - round(t / step)) < 1e-9 for t in ticks), f"x ticks are not multiples of {step}: {ticks}"
print("x ticks", ticks)
EOF
    # the learning rate per step, from the lr column
    grep -q '<img src="lr-steps.svg"' "$R/steps/report.html"
    grep -q 'Learning rate per step' "$R/steps/lr-steps.svg"
}

@test "defect 6: grey gutters between kernels, a colour bar with the range, filter indices; maps per image" {
    # -B: importing check_render must not leave tests/__pycache__ behind
    "$PY" -B - "$R/auto/kernels-conv1.png" <<'EOF'
import sys
sys.path.insert(0, __import__("os").environ["ROOT"] + "/tests")
from check_render import decode_png
w, h, ch, rows = decode_png(sys.argv[1])
corner = tuple(rows[0][0:3])
assert corner == (128, 128, 128), f"the gutter is {corner}, not grey: a zero weight would vanish into it"
EOF
    local page
    page=$(cat "$R/auto/report.html")
    local lo_re='class="cbar-lo"[^>]*>-([0-9.]+)<' hi_re='class="cbar-hi"[^>]*>\+([0-9.]+)<'
    [[ $page =~ $lo_re ]] || fail "no colour bar low end"
    local lo=${BASH_REMATCH[1]}
    [[ $page =~ $hi_re ]] || fail "no colour bar high end"
    [ "$lo" = "${BASH_REMATCH[1]}" ]
    greater "$lo" 0
    assert_contains "$page" '>f7</text>'  # conv1: 8 filters
    assert_contains "$page" '>f15</text>' # conv2: 16 filters, one row each
    assert_contains "$page" '>in7</text>' # and its 8 input channels
    # each test image's maps under a heading that names the digit
    [ "$(grep -c '<section class="sample"><h3>Test image [0-9]: label [0-9], predicted [0-9]' \
        "$R/auto/report.html")" -eq 3 ]
}

@test "defect 7: median throughput, shortest floats, date, command, host, best epoch" {
    run "$TRAINER" report "$R/m.model" --metrics "$R/near100.csv" --out "$R/summary" --threads 1
    assert_status 0
    local page
    page=$(cat "$R/summary/report.html")
    assert_contains "$page" "52000 samples/s median over 5 epochs (100 to 54000)"
    assert_contains "$page" "lr = 0.05"
    [[ ! $page =~ [0-9]\.[0-9]{12} ]] || fail "a float printed with 12+ digits: ${BASH_REMATCH[0]}"
    assert_contains "$page" "<th>best test epoch</th><td>5 (99.17%)</td>"
    assert_contains "$page" "<th>host</th><td>$(hostname)</td>"
    assert_contains "$page" "<th>command</th><td>$TRAINER report $R/m.model --metrics"
    assert_contains "$page" "on 1 thread<"
    local date_re='<th>report written</th><td>20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC'
    [[ $page =~ $date_re ]] || fail "no date"
}

@test "test loss per epoch beside the training loss; an old metrics file still reads" {
    grep -q '>test</text>' "$R/auto/loss.svg"
    [ "$(head -1 "$R/m.csv")" = "epoch,train_loss,train_acc,val_acc,test_acc,lr,samples_per_s,seconds,test_loss,val_loss" ]
    # near100.csv has the old eight columns: train loss only
    grep -q '>train</text>' "$R/near100/loss.svg"
    ! grep -q '>test</text>' "$R/near100/loss.svg"
}

@test "epochs that train.test_every did not test (test_acc -1): gaps in the curves, no false tie warning" {
    # As a run with test_every 0 writes them: epoch 1 untested.
    awk -F, -v OFS=, 'NR == 2 { $5 = $9 = "-1.000000" } 1' "$R/m.csv" >"$R/first-untested.csv"
    run --separate-stderr "$TRAINER" report "$R/m.model" --metrics "$R/first-untested.csv" --out "$R/untested1"
    assert_status 0
    [ -z "$stderr" ] || fail "unexpected stderr: $stderr"
    local page
    page=$(cat "$R/untested1/report.html")
    refute_contains "$page" 'class="warn"'
    assert_contains "$page" "epochs and test accuracy agree with the model"
    assert_contains "$page" "; the only epoch tested)</td>"
    # two training points and one test point, none of them at -100%
    [ "$(grep -c '<circle' "$R/untested1/accuracy.svg")" -eq 3 ]
    grep -q '>test</text>' "$R/untested1/loss.svg"
    # The epoch the model keeps untested (a run stopped before its last epoch): not compared, and said so.
    awk -F, -v OFS=, 'NR == 3 { $5 = $9 = "-1.000000" } 1' "$R/m.csv" >"$R/last-untested.csv"
    run --separate-stderr "$TRAINER" report "$R/m.model" --metrics "$R/last-untested.csv" --out "$R/untested2"
    assert_status 0
    page=$(cat "$R/untested2/report.html")
    refute_contains "$page" 'class="warn"'
    assert_contains "$page" "did not test the epoch the model keeps"
    assert_contains "$page" "(the last; test set not evaluated then)"
}

@test "several runs: curves overlaid per run, a table of config differences and final accuracies" {
    run --separate-stderr "$TRAINER" report "$R/m.model" "$R/b.model" --out "$R/compare"
    assert_status 0
    local page
    page=$(cat "$R/compare/report.html")
    assert_contains "$page" "<h2>Runs compared</h2>"
    assert_contains "$page" "[train] lr = 0.02"
    assert_contains "$page" "[train] epochs = 3"
    assert_contains "$page" "[data] limit = 1000"
    b_acc=$("$TRAINER" eval "$R/b.model" -q | sed -n 's/^accuracy: [0-9.]* (\(.*\))$/\1/p')
    assert_contains "$page" "($b_acc)"
    grep -q '>run 1 train</text>' "$R/compare/accuracy.svg"
    grep -q '>run 2 test</text>' "$R/compare/accuracy.svg"
    # 2 + 3 epochs, two curves each
    [ "$(grep -c '<circle' "$R/compare/accuracy.svg")" -eq 10 ]
}

@test "live report: rewritten after each epoch and reloading itself while training, not after" {
    local D=$BATS_TEST_TMPDIR
    "$TRAINER" train "$ROOT/configs/default.ini" $(small_data_sets "$FIXTURES") --set data.limit=600 --set data.test_limit=200 \
        --set train.epochs=3 --set train.batch_size=32 --set "output.model=$D/l.model" \
        --set "output.metrics=$D/l.csv" --set "output.report=$D/live" -q &
    local pid=$!
    wait_for "$pid" "$D/live/report.html" 'http-equiv="refresh"' 120 || fail "no live page while training"
    grep -q 'Training in progress: epoch [12] of 3 done' "$D/live/report.html"
    wait "$pid"
    ! grep -q 'http-equiv="refresh"' "$D/live/report.html"
    ! grep -q 'Training in progress' "$D/live/report.html"
    ! grep -q 'class="warn"' "$D/live/report.html"
}

@test "live report: a run stopped by SIGINT leaves a page that no longer reloads" {
    local D=$BATS_TEST_TMPDIR
    "$TRAINER" train "$ROOT/configs/default.ini" $(small_data_sets "$FIXTURES") --set data.limit=600 --set data.test_limit=200 \
        --set train.epochs=50 --set train.batch_size=32 --set "output.model=$D/l.model" \
        --set "output.metrics=$D/l.csv" --set "output.report=$D/live" -q 2>"$D/err" &
    local pid=$!
    wait_for "$pid" "$D/live/report.html" 'http-equiv="refresh"' 120 || fail "no live page while training"
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 130 ] || fail "exit $rc, want 130" "$(cat "$D/err")"
    ! grep -q 'http-equiv="refresh"' "$D/live/report.html"
    grep -q 'class="warn".*a run that stopped early' "$D/live/report.html"
    # stderr keeps to the stop message and the resume hint
    [ "$(grep -c . "$D/err")" -eq 2 ] || fail "$(cat "$D/err")"
}

@test "report without metrics has no curves but everything else; bad inputs fail cleanly" {
    run "$TRAINER" report "$R/m.model" --metrics= --out "$R/nometrics"
    [ "$status" -eq 0 ]
    "$PY" "$ROOT/tests/check_report.py" "$R/nometrics"
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

# ---- in Chromium (test flavour only: it checks the page, not our memory use) ----

need_chromium() {
    [ "$FLAVOUR" = asan ] && skip "the rendered page is checked in the test flavour only"
    command -v chromium >/dev/null || skip "chromium is not installed (scripts/install-deps.sh --test installs it)"
}

@test "Chromium at 1280 px: no sideways scroll, kernels and heat map in colour, each image's maps in one row" {
    need_chromium
    run "$PY" "$ROOT/tests/check_render.py" "$R/auto" 1280 "$R/shot-1280.png"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "Chromium at 390 px (a phone): no sideways scroll, kernels and heat map fit and are in colour" {
    need_chromium
    run "$PY" "$ROOT/tests/check_render.py" "$R/auto" 390 "$R/shot-390.png"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "printed to PDF: the whole config, the confusion matrix on one page" {
    need_chromium
    command -v pdftotext >/dev/null || skip "pdftotext is not installed (poppler-utils)"
    run "$PY" "$ROOT/tests/check_render.py" "$R/auto" print "$R/report.pdf"
    echo "$output"
    [ "$status" -eq 0 ]
}
