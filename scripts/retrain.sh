#!/bin/bash
# One unattended retraining run, safe to call from cron or a systemd timer:
#
#   retrain.sh [options] CONFIG [--set SECTION.KEY=VALUE]...
#
# Skips the run when the config, the data files and the trainer version are
# those production was trained from. Otherwise trains a candidate into
# MODELS/staging, scores it and the production model on the same test set (the
# one this config names), and promotes it only when its accuracy is at least
# production's minus --tolerance and its weights differ from production's.
# Promotion swaps MODELS/current atomically, which moves production.model and
# production.onnx together; each promotion is a line in MODELS/promotions.jsonl,
# which rollback.sh walks back. scripts/registry.sh describes the directory.
#
# Options:
#   --models DIR      model directory (default: BASE/models)
#   --base DIR        working directory for the trainer, against which the
#                     config's relative paths resolve (default: the parent of
#                     the config's directory when that is named configs/, else
#                     the config's directory)
#   --keep K          promoted models to keep in history (default 5)
#   --tolerance T     promote when candidate >= production - T (default 0)
#   --warm-start      start from the production model's weights
#   --force           train even when nothing changed
#   --timeout SECONDS stop a training that runs longer (it checkpoints; exit 1)
#   --prom FILE       write a node_exporter textfile-collector file (atomic)
#   --keep-logs N     run logs to keep (default 30)
#
# Nothing is printed on success, so cron's mail stays quiet; a failure prints
# one line with the trainer's own error and the log path on stderr. Each run
# logs to MODELS/logs/retrain-ID.log and to syslog (tag trainer-retrain);
# MODELS/status.json says "running" while it runs and the outcome after.
#
# Exit status: 0 promoted, 1 failed (production untouched), 2 bad usage,
# 3 kept or unchanged, 4 locked (another run holds the lock).
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$here/registry.sh"

REG_MODELS="" prom="" started=$(reg_now) t0=$(date +%s) outcome="" code=""
usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit $REG_EXIT_USAGE; }
# A usage error is recorded too when the models directory is known.
die_usage() {
    echo "retrain: $*" >&2
    if [ -n "$REG_MODELS" ] && [ -d "$REG_MODELS" ]; then
        record usage $REG_EXIT_USAGE "$*" || true
    fi
    exit $REG_EXIT_USAGE
}

models="" base="" keep=5 tolerance=0 warm=0 force=0 timeout="" keep_logs=30 config="" sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --models|--base|--keep|--tolerance|--timeout|--prom|--keep-logs|--set)
            [ $# -ge 2 ] || { echo "retrain: $1 needs a value" >&2; exit $REG_EXIT_USAGE; } ;;
    esac
    case "$1" in
        --models) models=$2; shift 2 ;;
        --base) base=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        --tolerance) tolerance=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --prom) prom=$2; shift 2 ;;
        --keep-logs) keep_logs=$2; shift 2 ;;
        --warm-start) warm=1; shift ;;
        --force) force=1; shift ;;
        --set) sets+=(--set "$2"); shift 2 ;;
        --set=*) sets+=(--set "${1#--set=}"); shift ;;
        -h|--help) usage ;;
        -*) bad="unknown option $1"; shift ;;
        *) [ -z "$config" ] || bad="one CONFIG only"; config=$1; shift ;;
    esac
done
[ -n "$config" ] || usage
if [ -f "$config" ]; then
    config=$(readlink -f "$config")
    [ -n "$base" ] || base=$(reg_base_of "$config")
    [ -n "$models" ] || models="$base/models"
fi
if [ -n "$models" ] && mkdir -p "$models" 2>/dev/null; then REG_MODELS=$(readlink -f "$models"); fi
[ -n "$prom" ] && prom=$(readlink -m "$prom")

# ---- the record every exit leaves: status.json, the Prometheus file, syslog ----
version="" cand_acc="" prod_acc="" test_json=null run_id="" log="" prod_id_before=""
json_acc() { [ -n "$1" ] && echo "$1" || echo null; }

prom_write() { # exit code, outcome, last success (ISO 8601 or "")
    [ -n "$prom" ] || return 0
    local now last_ok prod_age="" id at
    now=$(date +%s)
    last_ok=$([ -z "$3" ] || date -u -d "$3" +%s 2>/dev/null)
    id=$(reg_production_id)
    if [ -n "$id" ]; then at=$(reg_promoted_at "$id") && [ -n "$at" ] && prod_age=$((now - at)); fi
    {
        m() { # name type help value
            [ -n "$4" ] || return 0
            printf '# HELP %s %s\n# TYPE %s %s\n%s %s\n' "$1" "$3" "$1" "$2" "$1" "$4"
        }
        m trainer_retrain_last_run_timestamp_seconds gauge "When the last run ended (Unix time)." "$now"
        m trainer_retrain_last_success_timestamp_seconds gauge \
            "When a run last ended promoted, kept or unchanged (Unix time)." "$last_ok"
        m trainer_retrain_exit_code gauge "Exit status of the last run: 0 promoted, 1 failed, 2 usage, 3 kept or unchanged, 4 locked." "$1"
        printf '# HELP trainer_retrain_outcome The last run'"'"'s outcome (1 for the one it had).\n'
        printf '# TYPE trainer_retrain_outcome gauge\n'
        for o in promoted kept unchanged failed usage locked; do
            printf 'trainer_retrain_outcome{outcome="%s"} %d\n' "$o" "$([ "$o" = "$2" ] && echo 1 || echo 0)"
        done
        m trainer_retrain_duration_seconds gauge "How long the last run took." "$(( now - t0 ))"
        m trainer_retrain_candidate_accuracy gauge "Test accuracy of the last candidate (0-1)." "$cand_acc"
        m trainer_retrain_production_accuracy gauge \
            "Test accuracy of the production model on the same test set (0-1)." "$prod_acc"
        m trainer_retrain_production_model_age_seconds gauge "Time since production was last promoted or rolled back." "$prod_age"
    } > "$prom.tmp" && mv -f "$prom.tmp" "$prom"
}

# record OUTCOME CODE MESSAGE: status.json and the Prometheus file.
record() {
    local last_ok now
    now=$(reg_now)
    last_ok=$(reg_last_success)
    case "$1" in promoted|kept|unchanged) last_ok=$now ;; esac
    reg_status_write "$(jq -n --arg outcome "$1" --argjson code "$2" --arg msg "$3" --arg started "$started" \
        --arg finished "$now" --argjson duration "$(( $(date +%s) - t0 ))" --argjson pid $$ \
        --argjson cand "$(json_acc "$cand_acc")" --argjson prod "$(json_acc "$prod_acc")" \
        --arg run "$run_id" --arg prod_id "$(reg_production_id)" --arg was "$prod_id_before" \
        --arg model "$(readlink -f "$REG_MODELS/production.model" 2>/dev/null)" --argjson test "$test_json" \
        --arg config "$config" --arg version "$version" --arg log "$log" --arg last_ok "$last_ok" \
        '{outcome: $outcome, exit_code: $code, message: $msg, pid: $pid, started: $started,
          finished: (if $outcome == "running" then null else $finished end), duration_s: $duration,
          run_id: $run, candidate_accuracy: $cand, production_accuracy: $prod,
          production_id: $prod_id, previous_production_id: $was, production_model: $model,
          test: $test, config: $config, trainer_version: $version, log: $log,
          last_success: (if $last_ok == "" then null else $last_ok end)}')" \
        "$([ "$1" = running ] || echo final)" || return 1
    [ "$1" = running ] || prom_write "$2" "$1" "$last_ok"
}

critical=0 pending_signal="" tpid=""
finish() { # outcome, exit code, message
    local o=$1 c=$2 msg=$3
    trap '' INT TERM HUP
    [ -n "$log" ] && echo "$(reg_now) $o: $msg"
    if ! record "$o" "$c" "$msg"; then
        msg="$msg; and status.json or $prom could not be written"
        o=failed c=$REG_EXIT_FAILED
    fi
    rm -rf "$REG_MODELS/staging/$run_id" "$REG_MODELS/staging/$run_id.tmp" "$REG_MODELS/status.json.tmp" \
        "${prom:+$prom.tmp}" 2>/dev/null
    ls -1t "$REG_MODELS"/logs/retrain-*.log 2>/dev/null | tail -n +$((keep_logs + 1)) | xargs -r rm -f
    logger -t trainer-retrain -- "$o (exit $c): $msg" 2>/dev/null || true
    [ "$c" = "$REG_EXIT_FAILED" ] && echo "retrain: failed: $msg${log:+ (log: $log)}" >&3
    exit "$c"
}

on_signal() { # name
    if [ "$critical" = 1 ]; then pending_signal=$1; return; fi
    if [ -n "$tpid" ]; then
        kill -TERM "$tpid" 2>/dev/null
        wait "$tpid" 2>/dev/null
    fi
    finish failed $REG_EXIT_FAILED "stopped by SIG$1; production untouched"
}

[ -z "${bad:-}" ] || die_usage "$bad"
[ -f "$config" ] || die_usage "$config: no such config file"
[ -n "$REG_MODELS" ] || die_usage "$models: cannot create the model directory"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die_usage "--keep needs a positive integer"
[[ "$keep_logs" =~ ^[1-9][0-9]*$ ]] || die_usage "--keep-logs needs a positive integer"
[[ "$tolerance" =~ ^[0-9]*\.?[0-9]+$ ]] || die_usage "--tolerance needs a number like 0.002"
[ -z "$timeout" ] || [[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die_usage "--timeout needs a whole number of seconds"
base=$(readlink -f "$base")

# The trainer: $TRAINER, the source tree's, the installed one, then PATH.
trainer=${TRAINER:-}
for t in "$here/../trainer" "$here/../../../bin/trainer"; do
    [ -n "$trainer" ] && break
    [ -x "$t" ] && trainer=$(readlink -f "$t")
done
[ -n "$trainer" ] || trainer=$(command -v trainer || true)
[ -x "$trainer" ] || die_usage "cannot find the trainer binary (set TRAINER=/path/to/trainer)"
version=$("$trainer" --version 2>/dev/null | awk '{print $2}')

# ---- one run at a time per model directory ----
if ! reg_lock; then
    echo "retrain: locked: another run holds $REG_MODELS/.lock ($REG_HOLDER)" >&2
    record locked $REG_EXIT_LOCKED "another run holds the lock: $REG_HOLDER" || true
    exit $REG_EXIT_LOCKED
fi
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
run_id=$(date -u +%Y%m%dT%H%M%SZ)-$$
reg_set_owner "retrain pid $$ since $started" 2>/dev/null
reg_clear_stale
exec 3>&2 # the caller's stderr, for the one-line failure report
mkdir -p "$REG_MODELS/logs" "$REG_MODELS/history" "$REG_MODELS/staging/$run_id" 2>/dev/null ||
    finish failed $REG_EXIT_FAILED "cannot create directories in $REG_MODELS"
log="$REG_MODELS/logs/retrain-$run_id.log"
exec >>"$log" 2>&1
prod_id_before=$(reg_production_id)
record running 0 "training" || finish failed $REG_EXIT_FAILED "cannot write $REG_MODELS/status.json"
stage="$REG_MODELS/staging/$run_id"
prod="$REG_MODELS/production.model"
say() { echo "$(reg_now) $*"; }
say "retrain $run_id: config $config, base $base, models $REG_MODELS, trainer $trainer ($version)"

# trainer_error FILE: the trainer's own error line from its stderr.
trainer_error() {
    local e
    e=$(grep '^trainer: ' "$1" 2>/dev/null | tail -n 1 | sed 's/^trainer: //')
    echo "${e:-no error line (its stderr could not be written: is the disk full?)}"
}

# info ARGS...: `trainer info ... --json`, run where the config's paths resolve.
info() {
    (cd "$base" && "$trainer" info "$@" --json) 9>&- 2>"$stage/info.stderr"
}

# ---- what would be trained, and on what it is judged ----
want=$(info --config "$config" "${sets[@]}") ||
    finish failed $REG_EXIT_FAILED "the config or its data is not usable: $(trainer_error "$stage/info.stderr")"
# One jq for all of it (each costs tens of milliseconds); config values hold
# no newlines.
mapfile -t w < <(jq -r '.fingerprint, .test.images, .test.labels, (.test.limit | tostring), (.test | tojson)' <<<"$want")
want_fp=${w[0]} test_json=${w[4]}
test_sets=(--set "data.test_images=${w[1]}" --set "data.test_labels=${w[2]}" --set "data.test_limit=${w[3]}")
have="" have_fp="" have_w=""
if [ -e "$prod" ]; then
    if have=$(info "$prod"); then
        { read -r have_fp; read -r have_w; } < <(jq -r '.fingerprint // "", .weights_sha256 // ""' <<<"$have")
    else
        say "the production model cannot be read: $(trainer_error "$stage/info.stderr")"
    fi
fi
if [ -n "$have_fp" ] && [ "$force" = 0 ] && [ "$want_fp" = "$have_fp" ]; then
    finish unchanged $REG_EXIT_KEPT "config, data and trainer version are those of production; nothing to do (--force trains anyway)"
fi

# ---- training ----
train_args=(train "$config" "${sets[@]}" --set "output.model=$stage/candidate.model"
            --set "output.metrics=$stage/candidate.metrics.csv" --set "output.checkpoint=$stage/candidate.ckpt"
            --set output.progress=never)
if [ "$warm" = 1 ] && [ -e "$prod" ]; then
    train_args+=(--init "$prod")
    say "warm start from $(readlink -f "$prod")"
fi
say "training: $trainer ${train_args[*]}"
# The trainer does not inherit the lock (fd 9): only this script holds it, so
# the owner line is the truth; and if this script is killed outright, the
# kernel sends the trainer SIGTERM (pdeathsig), which checkpoints and stops it.
(cd "$base" && exec setpriv --pdeathsig TERM "$trainer" "${train_args[@]}") 9>&- 2>"$stage/trainer.stderr" &
tpid=$!
reg_set_owner "retrain pid $$ since $started (its trainer: pid $tpid)" 2>/dev/null
timed_out=0 tstart=$(date +%s)
while kill -0 "$tpid" 2>/dev/null; do
    if [ -n "$timeout" ] && [ $(( $(date +%s) - tstart )) -ge "$timeout" ] && [ "$timed_out" = 0 ]; then
        say "timeout: training ran past $timeout s; stopping it"
        timed_out=1
        kill -TERM "$tpid" 2>/dev/null
    fi
    sleep 0.25 9>&- & wait $! # a wait, so that a signal is handled at once
done
wait "$tpid"
rc=$?
tpid=""
cat "$stage/trainer.stderr"
[ "$timed_out" = 0 ] ||
    finish failed $REG_EXIT_FAILED "timed out: training ran longer than --timeout $timeout s and was stopped; production untouched"
[ $rc -eq 0 ] ||
    finish failed $REG_EXIT_FAILED "training failed (exit $rc): $(trainer_error "$stage/trainer.stderr"); production untouched"

# ---- both models on the same yardstick ----
# score MODEL -> "correct total"
score() {
    local out
    out=$( (cd "$base" && "$trainer" eval "$1" -q "${test_sets[@]}") 9>&- 2>"$stage/eval.stderr") || return 1
    sed -n 's/^accuracy: [0-9.]* (\([0-9]*\)\/\([0-9]*\))$/\1 \2/p' <<<"$out" | tail -n 1
}
cand_score=$(score "$stage/candidate.model") && [ -n "$cand_score" ] ||
    finish failed $REG_EXIT_FAILED "evaluating the candidate failed: $(trainer_error "$stage/eval.stderr")"
acc() { awk '{ printf "%.6f", $1 / $2 }' <<<"$1"; }
cand_acc=$(acc "$cand_score")
test_json=$(jq -c --argjson n "${cand_score#* }" '. + {count: $n}' <<<"$test_json")
prod_score=""
if [ -e "$prod" ]; then
    if prod_score=$(score "$prod") && [ -n "$prod_score" ]; then
        prod_acc=$(acc "$prod_score")
    else
        say "the production model could not be evaluated ($(trainer_error "$stage/eval.stderr")); treating it as accuracy 0"
        prod_score="0 1" prod_acc=0
    fi
fi
say "candidate accuracy $cand_acc, production accuracy ${prod_acc:-none} on $test_json, tolerance $tolerance"

cand_info=$(info "$stage/candidate.model") ||
    finish failed $REG_EXIT_FAILED "reading the candidate failed: $(trainer_error "$stage/info.stderr")"
if [ -n "$have_w" ] && [ "$(jq -r .weights_sha256 <<<"$cand_info")" = "$have_w" ]; then
    finish kept $REG_EXIT_KEPT "the candidate's weights equal production's; kept production"
fi
if [ -n "$prod_score" ] && ! awk -v c="$cand_score" -v p="$prod_score" -v t="$tolerance" \
        'BEGIN { split(c, a, " "); split(p, b, " "); exit !(a[1] / a[2] >= b[1] / b[2] - t) }'; then
    finish kept $REG_EXIT_KEPT "candidate $cand_acc is below production $prod_acc (tolerance $tolerance); kept production"
fi

# ---- promotion ----
# Everything that can fail (export, writes) happens in staging first; the
# rename into history needs no space; the log is written whole before the
# swap and published after it. Signals wait until it is done.
critical=1
promote_failed() { # message
    rm -rf "$REG_MODELS/history/$run_id" "$REG_MODELS/promotions.jsonl.tmp"
    critical=0
    finish failed $REG_EXIT_FAILED "$1; production untouched"
}
if "$trainer" --help 2>/dev/null | grep -q '^ *trainer export '; then
    "$trainer" export "$stage/candidate.model" "$stage/candidate.onnx" 9>&- 2>"$stage/export.stderr" ||
        promote_failed "exporting the candidate to ONNX failed: $(trainer_error "$stage/export.stderr")"
fi
printf '%s\n' "$cand_info" > "$stage/info.json" || promote_failed "cannot write $stage/info.json"
# The trainer's output locks and the checkpoint do not belong in history.
rm -f "$stage"/candidate.ckpt "$stage"/*.stderr "$stage"/*.lock
mv -T "$stage" "$REG_MODELS/history/$run_id" || promote_failed "cannot move the candidate into $REG_MODELS/history"
reg_log_prepare promoted "$run_id" "$cand_acc" "$prod_id_before" ||
    promote_failed "cannot write $REG_MODELS/promotions.jsonl"
reg_swap "$run_id" || promote_failed "cannot swap $REG_MODELS/current"
reg_log_commit
critical=0
[ -z "$pending_signal" ] || say "SIG$pending_signal arrived during the promotion; it completed first"

# Retention: the newest K promoted models stay; production is never removed.
ls -1d "$REG_MODELS"/history/*/ 2>/dev/null | sort -r | tail -n +$((keep + 1)) | while read -r old; do
    [ "$(basename "$old")" = "$run_id" ] || rm -rf "$old"
done
finish promoted $REG_EXIT_OK "promoted $run_id (accuracy $cand_acc, was ${prod_acc:-none})"
