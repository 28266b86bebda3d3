#!/bin/bash
# Accuracy of `trainer predict` on the font-rendered digits of
# tests/font_digits.sh, with --preprocess mnist and without it. Without it
# the pictures must already be 28x28: each is squashed to 28x28 grey by
# ImageMagick (what one would do by hand), then read as it is.
#   tests/font_accuracy.sh TRAINER MODEL DIR [PER_DIGIT]
# Prints "mnist C/T A" and "none C/T A" (A: accuracy to 4 places).
set -eu
trainer=$1 model=$2 dir=$3 per=${4:-12}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
"$here/font_digits.sh" "$dir/pictures" "$per" >"$dir/labels.txt"
args=()
while read -r file label; do
    base=${file##*/}
    args+=("(" "$file" -background white -flatten -colorspace gray -resize '28x28!' -write "$dir/naive/${base%.*}.pgm" +delete ")")
done <"$dir/labels.txt"
mkdir -p "$dir/naive"
convert "${args[@]}" xc: null:
score() { # NAME FILES... (in label order)
    local name=$1
    shift
    "$trainer" predict "$model" "$@" --json ${PREPROCESS:+--preprocess "$PREPROCESS"} >"$dir/$name.jsonl"
    paste -d' ' <(sed 's/.*"class":\([0-9]*\).*/\1/' "$dir/$name.jsonl") <(awk '{ print $2 }' "$dir/labels.txt") |
        awk -v name="$name" '$1 == $2 { c++ } END { printf "%s %d/%d %.4f\n", name, c, NR, c / NR }'
}
mapfile -t pictures < <(awk '{ print $1 }' "$dir/labels.txt")
mapfile -t naive < <(awk '{ n = $1; sub(/.*\//, "", n); sub(/\.[a-z]+$/, ".pgm", n); print d "/naive/" n }' d="$dir" "$dir/labels.txt")
PREPROCESS=mnist score mnist "${pictures[@]}"
PREPROCESS=none score none "${naive[@]}"
