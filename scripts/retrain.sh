#!/bin/bash
# One unattended retraining run, safe to call from cron:
#
#   scripts/retrain.sh [options] CONFIG [--set SECTION.KEY=VALUE]...
#
# Trains a candidate into MODELS/staging, evaluates it and the production
# model on the same held-out (test) set, and promotes the candidate only when
# its accuracy is at least the production accuracy minus --tolerance. The
# promotion is an atomic symlink swap of MODELS/production.model, so a reader
# sees the old model or the new one, never a mix or nothing. The last --keep
# promoted models stay in MODELS/history; scripts/rollback.sh goes back one.
#
# Options:
#   --models DIR     model directory (default: BASE/models)
#   --base DIR       working directory for the trainer, against which the
#                    config's relative paths resolve (default: the parent of
#                    the config's directory when that is named configs/, else
#                    the config's directory)
#   --keep K         promoted models to keep in history (default 5)
#   --tolerance T    promote when candidate >= production - T (default 0)
#   --warm-start     start from the production model's weights instead of
#                    from scratch (when there is one)
#   --keep-logs N    run logs to keep (default 30)
#
# Nothing is printed on success, so cron's mail stays quiet; a failure prints
# one line (and the log path) on stderr. Each run's log is
# MODELS/logs/retrain-STAMP.log; MODELS/status.json describes the last run.
#
# Exit status: 0 promoted, 1 failed (production untouched), 2 bad usage,
# 3 kept (candidate not good enough), 4 locked (another run holds the lock).
set -uo pipefail

EXIT_PROMOTED=0 EXIT_FAILED=1 EXIT_USAGE=2 EXIT_KEPT=3 EXIT_LOCKED=4

usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit $EXIT_USAGE; }
die_usage() { echo "retrain: $*" >&2; exit $EXIT_USAGE; }

models="" base="" keep=5 tolerance=0 warm=0 keep_logs=30 config="" sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models=${2:?}; shift 2 ;;
        --base) base=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        --tolerance) tolerance=${2:?}; shift 2 ;;
        --warm-start) warm=1; shift ;;
        --keep-logs) keep_logs=${2:?}; shift 2 ;;
        --set) sets+=(--set "${2:?}"); shift 2 ;;
        --set=*) sets+=(--set "${1#--set=}"); shift ;;
        -h|--help) usage ;;
        -*) die_usage "unknown option $1" ;;
        *) [ -z "$config" ] || die_usage "one CONFIG only"; config=$1; shift ;;
    esac
done
[ -n "$config" ] || usage
[ -f "$config" ] || die_usage "$config: no such config file"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die_usage "--keep needs a positive integer"
[[ "$keep_logs" =~ ^[1-9][0-9]*$ ]] || die_usage "--keep-logs needs a positive integer"
[[ "$tolerance" =~ ^[0-9]*\.?[0-9]+$ ]] || die_usage "--tolerance needs a number like 0.002"

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
config=$(readlink -f "$config")
if [ -z "$base" ]; then
    cdir=$(dirname "$config")
    if [ "$(basename "$cdir")" = configs ]; then base=$(dirname "$cdir"); else base=$cdir; fi
fi
base=$(readlink -f "$base")
[ -n "$models" ] || models="$base/models"
mkdir -p "$models" || die_usage "$models: cannot create the model directory"
models=$(readlink -f "$models")

# The trainer: $TRAINER, the source tree's, the installed one, then PATH.
trainer=${TRAINER:-}
for t in "$here/../trainer" "$here/../../../bin/trainer"; do
    [ -n "$trainer" ] && break
    [ -x "$t" ] && trainer=$(readlink -f "$t")
done
[ -n "$trainer" ] || trainer=$(command -v trainer || true)
[ -x "$trainer" ] || die_usage "cannot find the trainer binary (set TRAINER=/path/to/trainer)"

# ---- one run at a time per model directory ----
exec 9>>"$models/.lock"
if ! flock -n 9; then
    echo "retrain: locked: another run holds $models/.lock ($(cat "$models/.lock.owner" 2>/dev/null || echo 'owner unknown'))" >&2
    exit $EXIT_LOCKED
fi
stamp=$(date -u +%Y%m%dT%H%M%S%NZ)-$$
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
echo "pid $$ since $started" > "$models/.lock.owner"

mkdir -p "$models/logs" "$models/history" "$models/staging"
log="$models/logs/retrain-$stamp.log"
exec 3>&2 # keep the caller's stderr for the one-line failure report
exec >>"$log" 2>&1
say() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
json_num() { if [ -n "$1" ]; then printf '%s' "$1"; else printf 'null'; fi; }

cand_acc="" prod_acc="" version=$("$trainer" --version 2>/dev/null | awk '{print $2}')
finish() { # outcome, exit code, message
    local outcome=$1 code=$2 msg=$3 now
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    say "$outcome: $msg"
    {
        printf '{\n'
        printf '  "outcome": %s,\n' "$(json_str "$outcome")"
        printf '  "exit_code": %d,\n' "$code"
        printf '  "message": %s,\n' "$(json_str "$msg")"
        printf '  "started": %s,\n' "$(json_str "$started")"
        printf '  "finished": %s,\n' "$(json_str "$now")"
        printf '  "duration_s": %d,\n' "$(( $(date +%s) - t0 ))"
        printf '  "candidate_accuracy": %s,\n' "$(json_num "$cand_acc")"
        printf '  "production_accuracy": %s,\n' "$(json_num "$prod_acc")"
        printf '  "production_model": %s,\n' "$(json_str "$(readlink -f "$models/production.model" 2>/dev/null || true)")"
        printf '  "config": %s,\n' "$(json_str "$config")"
        printf '  "trainer_version": %s,\n' "$(json_str "$version")"
        printf '  "log": %s\n' "$(json_str "$log")"
        printf '}\n'
    } > "$models/status.json.tmp" && mv -f "$models/status.json.tmp" "$models/status.json"
    rm -rf "$models/staging/$stamp"
    # Old logs go, newest kept_logs stay.
    ls -1t "$models"/logs/retrain-*.log 2>/dev/null | tail -n +$((keep_logs + 1)) | xargs -r rm -f
    if [ "$code" = "$EXIT_FAILED" ]; then
        echo "retrain: failed: $msg (log: $log)" >&3
    fi
    exit "$code"
}
trap 'finish failed $EXIT_FAILED "interrupted by a signal"' INT TERM HUP

accuracy_of() { # model -> prints accuracy, or fails
    local out
    out=$(cd "$base" && "$trainer" eval "$1" -q "${eval_sets[@]}") || return 1
    printf '%s\n' "$out" | awk '/^accuracy: /{print $2}' | tail -n 1
}

say "retrain $stamp: config $config, base $base, models $models, trainer $trainer ($version)"
stage="$models/staging/$stamp"
mkdir -p "$stage"
prod="$models/production.model"
# eval must see the same test set the candidate is trained against.
eval_sets=()
for ((i = 1; i < ${#sets[@]}; i += 2)); do
    case "${sets[$i]}" in data.test_*) eval_sets+=(--set "${sets[$i]}") ;; esac
done

train_args=(train "$config" "${sets[@]}" --set "output.model=$stage/candidate.model"
            --set "output.metrics=$stage/metrics.csv" --set "output.checkpoint=$stage/candidate.ckpt"
            --set output.progress=never)
if [ "$warm" = 1 ] && [ -e "$prod" ]; then
    train_args+=(--init "$prod")
    say "warm start from $(readlink -f "$prod")"
fi
say "training: $trainer ${train_args[*]}"
(cd "$base" && "$trainer" "${train_args[@]}")
rc=$?
if [ $rc -ne 0 ]; then
    finish failed $EXIT_FAILED "training failed with exit status $rc; production untouched"
fi
cand_acc=$(accuracy_of "$stage/candidate.model") || finish failed $EXIT_FAILED "evaluating the candidate failed"
[ -n "$cand_acc" ] || finish failed $EXIT_FAILED "no accuracy line from evaluating the candidate"
if [ -e "$prod" ]; then
    prod_acc=$(accuracy_of "$prod") || prod_acc=""
    if [ -z "$prod_acc" ]; then
        say "the production model could not be evaluated; treating it as accuracy 0"
        prod_acc=0
    fi
fi
say "candidate accuracy $cand_acc, production accuracy ${prod_acc:-none}, tolerance $tolerance"

if [ -n "$prod_acc" ] && ! awk -v c="$cand_acc" -v p="$prod_acc" -v t="$tolerance" 'BEGIN { exit !(c >= p - t) }'; then
    finish kept $EXIT_KEPT "candidate $cand_acc is below production $prod_acc (tolerance $tolerance); kept production"
fi

# ---- promotion: copy into history, then swap the symlink atomically ----
hist="$models/history/$stamp.model"
cp "$stage/candidate.model" "$hist.tmp" && sync "$hist.tmp" && mv -f "$hist.tmp" "$hist" ||
    finish failed $EXIT_FAILED "cannot copy the candidate into $models/history"
cp "$stage/metrics.csv" "$models/history/$stamp.metrics.csv" 2>/dev/null || true
printf '{"accuracy": %s, "promoted": "%s", "config": %s}\n' "$cand_acc" "$started" "$(json_str "$config")" \
    > "$models/history/$stamp.json"
ln -sfn "history/$stamp.model" "$models/.production.model.new" &&
    mv -Tf "$models/.production.model.new" "$prod" ||
    finish failed $EXIT_FAILED "cannot swap $prod"
sync "$models" 2>/dev/null || true

# Retention: the newest K promoted models stay; production is never removed.
current=$(readlink -f "$prod")
ls -1 "$models"/history/*.model 2>/dev/null | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    [ "$(readlink -f "$old")" = "$current" ] && continue
    rm -f "$old" "${old%.model}.json" "${old%.model}.metrics.csv"
done
finish promoted $EXIT_PROMOTED "promoted $hist (accuracy $cand_acc, was ${prod_acc:-none})"
