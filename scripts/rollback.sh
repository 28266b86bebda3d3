#!/bin/bash
# Restores the previously promoted model:
#
#   scripts/rollback.sh MODELS_DIR      (the directory retrain.sh promotes into)
#   scripts/rollback.sh CONFIG          (the same, found as retrain.sh does)
#
# production.model is switched, by an atomic symlink swap, to the newest
# model in MODELS/history that is older than the current one. The newer
# model stays in history, so a second rollback goes back one more step.
# It takes the same lock as retrain.sh.
#
# Exit status: 0 rolled back, 1 nothing older to go back to, 2 bad usage,
# 4 locked (a retraining run is active).
set -uo pipefail

[ $# -eq 1 ] || { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
arg=$1
if [ -d "$arg" ]; then
    models=$(readlink -f "$arg")
elif [ -f "$arg" ]; then
    cdir=$(dirname "$(readlink -f "$arg")")
    if [ "$(basename "$cdir")" = configs ]; then models="$(dirname "$cdir")/models"; else models="$cdir/models"; fi
else
    echo "rollback: $arg: not a model directory or a config file" >&2
    exit 2
fi
prod="$models/production.model"
[ -L "$prod" ] || { echo "rollback: $prod: no promoted production model" >&2; exit 1; }

exec 9>>"$models/.lock"
flock -n 9 || { echo "rollback: locked: a retraining run holds $models/.lock" >&2; exit 4; }

current=$(basename "$(readlink "$prod")")
previous=$(ls -1 "$models"/history/*.model 2>/dev/null | xargs -r -n1 basename | sort |
           awk -v cur="$current" '$0 < cur { prev = $0 } END { print prev }')
if [ -z "$previous" ]; then
    echo "rollback: $models/history holds nothing older than $current" >&2
    exit 1
fi
ln -sfn "history/$previous" "$models/.production.model.new" && mv -Tf "$models/.production.model.new" "$prod" || {
    echo "rollback: cannot swap $prod" >&2
    exit 1
}
mkdir -p "$models/logs"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) rollback: production.model -> history/$previous (was history/$current)" \
    >> "$models/logs/rollback.log"
echo "rollback: production.model -> history/$previous (was history/$current)"
