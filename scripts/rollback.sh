#!/bin/bash
# Moves production along the promotion log that retrain.sh keeps:
#
#   rollback.sh MODELS|CONFIG             back to the model that was production
#                                         before the current one
#   rollback.sh --to ID MODELS|CONFIG     make history/ID production ("pinned")
#   rollback.sh --list MODELS|CONFIG      the log, production marked with *
#
# MODELS is the directory retrain.sh promotes into; a CONFIG names it as
# retrain.sh finds it. The history is the log, not file names: promote A,
# promote B, roll back (A), promote C, roll back: production is A again.
# A model that retention removed is skipped. The swap is atomic and moves
# production.model and production.onnx together; it takes the same lock as
# retrain.sh, and records the outcome in MODELS/status.json.
#
# Exit status: 0 done, 1 nothing to go back to (or a failed write), 2 bad
# usage, 4 locked (a retraining run is active).
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$here/registry.sh"

usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit $REG_EXIT_USAGE; }
to="" list=0 arg=""
while [ $# -gt 0 ]; do
    case "$1" in
        --to) [ $# -ge 2 ] || usage; to=$2; shift 2 ;;
        --to=*) to=${1#--to=}; shift ;;
        --list) list=1; shift ;;
        -h|--help|-*) usage ;;
        *) [ -z "$arg" ] || usage; arg=$1; shift ;;
    esac
done
[ -n "$arg" ] || usage
REG_MODELS=$(reg_models_from "$arg") || {
    echo "rollback: $arg: not a model directory or a config file" >&2
    exit $REG_EXIT_USAGE
}
[ -d "$REG_MODELS" ] || { echo "rollback: $REG_MODELS: no such model directory" >&2; exit $REG_EXIT_USAGE; }
current=$(reg_production_id)

if [ "$list" = 1 ]; then
    [ -s "$REG_MODELS/promotions.jsonl" ] || { echo "rollback: $REG_MODELS has no promotion log yet" >&2; exit 1; }
    jq -r --arg cur "$current" '[(if .id == $cur then "*" else " " end), .time, .reason,
        (.accuracy // "-" | tostring), .id] | join("  ")' "$REG_MODELS/promotions.jsonl"
    exit 0
fi

started=$(reg_now)
# done_with CODE OUTCOME MESSAGE: status.json, rollback.log, and the answer.
done_with() {
    local code=$1 outcome=$2 msg=$3 status
    status=$(jq -n --arg outcome "$outcome" --argjson code "$code" --arg msg "$msg" --arg started "$started" \
        --arg finished "$(reg_now)" --argjson pid $$ --arg prod_id "$(reg_production_id)" --arg was "$current" \
        --arg model "$(readlink -f "$REG_MODELS/production.model" 2>/dev/null)" --arg last_ok "$(reg_last_success)" \
        '{outcome: $outcome, exit_code: $code, message: $msg, pid: $pid, started: $started, finished: $finished,
          production_id: $prod_id, previous_production_id: $was, production_model: $model,
          last_success: (if $last_ok == "" then null else $last_ok end)}')
    if ! reg_status_write "$status" final; then
        msg="$msg; and $REG_MODELS/status.json could not be written"
        [ "$code" = 0 ] && code=1
    fi
    mkdir -p "$REG_MODELS/logs" 2>/dev/null &&
        echo "$(reg_now) rollback: $outcome: $msg" >> "$REG_MODELS/logs/rollback.log"
    if [ "$code" = 0 ]; then echo "rollback: $msg"; else echo "rollback: $msg" >&2; fi
    exit "$code"
}

if ! reg_lock; then
    echo "rollback: locked: a retraining run holds $REG_MODELS/.lock ($REG_HOLDER)" >&2
    exit $REG_EXIT_LOCKED
fi
[ -n "$current" ] || done_with 1 failed "$REG_MODELS has no promoted production model"

if [ -n "$to" ]; then
    [[ "$to" =~ ^[A-Za-z0-9._-]+$ ]] && [ -s "$REG_MODELS/promotions.jsonl" ] &&
        jq -se --arg id "$to" 'any(.[]; .id == $id)' "$REG_MODELS/promotions.jsonl" >/dev/null ||
        done_with 1 failed "$to is not a model in $REG_MODELS/promotions.jsonl (see rollback.sh --list)"
    [ -d "$REG_MODELS/history/$to" ] || done_with 1 failed "history/$to was removed by retention; it cannot be restored"
    target=$to reason=pinned
else
    # The production history, newest first, without the current model; the
    # first that still exists is where we go.
    target=""
    while read -r id; do
        [ -d "$REG_MODELS/history/$id" ] && { target=$id; break; }
    done < <(reg_stack | tac | tail -n +2)
    [ -n "$target" ] || done_with 1 failed "the promotion log holds nothing before $current to go back to"
    reason="rolled back"
fi
acc=$(jq -r --arg id "$target" 'select(.id == $id and .accuracy != null) | .accuracy' \
    "$REG_MODELS/promotions.jsonl" | head -n 1)
reg_log_prepare "$reason" "$target" "$acc" "$current" || done_with 1 failed "cannot write $REG_MODELS/promotions.jsonl"
reg_swap "$target" || { rm -f "$REG_MODELS/promotions.jsonl.tmp"; done_with 1 failed "cannot swap $REG_MODELS/current"; }
reg_log_commit
done_with 0 "$reason" "production -> history/$target (was history/$current)"
