# The model registry that retrain.sh and rollback.sh share (sourced, not run).
#
# A models directory holds:
#   history/ID/          one promoted model each: candidate.model, candidate.onnx
#                        (when the trainer can export), candidate.metrics.csv,
#                        candidate.metrics.steps.csv, info.json (`trainer info --json`)
#   current -> history/ID          production; swapped atomically (rename)
#   production.model -> current/candidate.model
#   production.onnx  -> current/candidate.onnx
#                        fixed links, so one swap of `current` moves the model
#                        and its ONNX file together
#   promotions.jsonl     append-only: one JSON object a line, {time, id, reason
#                        ("promoted", "rolled back" or "pinned"), accuracy,
#                        previous}; rollback walks it, never file names
#   status.json          the last run (retrain or rollback), or the running one
#   staging/ID/          a run's work; what a dead run left is cleared
#   logs/                one log per retrain run; rollback.log
#   .lock, .lock.owner   one run at a time; the owner line names the holder
#
# IDs sort by time: UTCSTAMP-PID.

REG_EXIT_OK=0 REG_EXIT_FAILED=1 REG_EXIT_USAGE=2 REG_EXIT_KEPT=3 REG_EXIT_LOCKED=4

reg_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# reg_base_of CONFIG: the project directory a config belongs to, against
# which its relative paths resolve: the parent of configs/, else its own.
reg_base_of() {
    local cdir
    cdir=$(dirname "$(readlink -f "$1")")
    if [ "$(basename "$cdir")" = configs ]; then dirname "$cdir"; else echo "$cdir"; fi
}

# reg_models_from ARG: a models directory, or a config (its project's models/).
reg_models_from() {
    if [ -d "$1" ]; then
        readlink -f "$1"
    elif [ -f "$1" ]; then
        echo "$(reg_base_of "$1")/models"
    else
        return 1
    fi
}

# reg_lock: takes MODELS/.lock on fd 9 without waiting. On failure prints who
# holds it. Children that must not keep the lock are started with 9>&-.
reg_lock() {
    exec 9>>"$REG_MODELS/.lock" || return 1
    flock -n 9 && return 0
    REG_HOLDER=$(cat "$REG_MODELS/.lock.owner" 2>/dev/null || echo "owner unknown")
    return 1
}

reg_set_owner() { # text
    printf '%s\n' "$1" > "$REG_MODELS/.lock.owner.tmp" && mv -f "$REG_MODELS/.lock.owner.tmp" "$REG_MODELS/.lock.owner"
}

# reg_publish FILE: moves FILE.tmp onto FILE (same directory: atomic).
reg_publish() {
    sync "$1.tmp" 2>/dev/null
    mv -f "$1.tmp" "$1"
}

# reg_clear_stale: with the lock held, nothing but this run may be working
# here, so whatever a killed run left goes.
reg_clear_stale() {
    rm -rf "$REG_MODELS"/staging/* "$REG_MODELS"/history/*.tmp "$REG_MODELS"/.*.tmp "$REG_MODELS"/*.tmp \
        "$REG_MODELS"/.current.new 2>/dev/null
    return 0
}

reg_production_id() {
    local t
    t=$(readlink "$REG_MODELS/current" 2>/dev/null) || return 0
    basename "$t"
}

# reg_log_prepare REASON ID ACCURACY PREVIOUS, then reg_log_commit: the log
# with one more line is written whole into a temp file first, so a promotion
# writes everything that may fail before it swaps production, and a full disk
# never leaves half a line.
reg_log_prepare() {
    local log=$REG_MODELS/promotions.jsonl
    {
        [ ! -e "$log" ] || cat "$log"
        jq -cn --arg time "$(reg_now)" --arg id "$2" --arg reason "$1" --arg acc "$3" --arg prev "$4" \
            '{time: $time, id: $id, reason: $reason,
              accuracy: (if $acc == "" then null else ($acc | tonumber) end),
              previous: (if $prev == "" then null else $prev end)}'
    } > "$log.tmp" && sync "$log.tmp" 2>/dev/null
}
reg_log_commit() { mv -f "$REG_MODELS/promotions.jsonl.tmp" "$REG_MODELS/promotions.jsonl"; }

# reg_stack: the production history, oldest first, one ID a line. Promoted and
# pinned models are pushed; a rollback to X pops down to X.
reg_stack() {
    [ -s "$REG_MODELS/promotions.jsonl" ] || return 0
    jq -rs 'reduce .[] as $e ([];
              if $e.reason == "rolled back" then
                  (map(. == $e.id) | rindex(true)) as $i | if $i == null then . + [$e.id] else .[:$i + 1] end
              else . + [$e.id] end) | .[]' "$REG_MODELS/promotions.jsonl"
}

# reg_swap ID: production becomes history/ID, model and ONNX file at once.
reg_swap() {
    ln -sfn "history/$1" "$REG_MODELS/.current.new" && mv -Tf "$REG_MODELS/.current.new" "$REG_MODELS/current" || {
        rm -f "$REG_MODELS/.current.new"
        return 1
    }
    local f
    for f in model onnx; do
        [ "$(readlink "$REG_MODELS/production.$f" 2>/dev/null)" = "current/candidate.$f" ] && continue
        ln -sfn "current/candidate.$f" "$REG_MODELS/.production.$f.new" &&
            mv -Tf "$REG_MODELS/.production.$f.new" "$REG_MODELS/production.$f" || return 1
    done
    sync "$REG_MODELS" 2>/dev/null
    return 0
}

# reg_promoted_at ID: seconds since the epoch when ID last became production.
reg_promoted_at() {
    local t
    [ -s "$REG_MODELS/promotions.jsonl" ] || return 0
    t=$(jq -rs --arg id "$1" 'map(select(.id == $id)) | last | .time // empty' "$REG_MODELS/promotions.jsonl" 2>/dev/null)
    [ -n "$t" ] && date -u -d "$t" +%s
}

# reg_status_write JSON [final]: publishes JSON (an object) as status.json,
# atomically. On a full disk that fails for want of a block for the temp
# file, and an older record would stand; so a run's final record then
# overwrites status.json in place, reusing the blocks it frees (a reader
# may see it half-written for an instant, never a stale outcome after).
reg_status_write() {
    { printf '%s\n' "$1" > "$REG_MODELS/status.json.tmp" && reg_publish "$REG_MODELS/status.json"; } 2>/dev/null && return 0
    rm -f "$REG_MODELS/status.json.tmp"
    [ "${2:-}" = final ] && [ -f "$REG_MODELS/status.json" ] || return 1
    printf '%s\n' "$1" 2>/dev/null > "$REG_MODELS/status.json"
}

# reg_last_success: the last success time recorded in status.json, if any.
reg_last_success() {
    jq -r '.last_success // empty' "$REG_MODELS/status.json" 2>/dev/null || true
}
