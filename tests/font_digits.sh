#!/bin/bash
# Renders digits nobody drew for MNIST, with ImageMagick and Debian's fonts:
# several fonts, sizes, canvas shapes, positions and colours, light and dark
# backgrounds, some with noise, some rotated a little, some transparent, as
# PNG, JPEG and PPM. The same arguments give the same images.
#   tests/font_digits.sh DIR PER_DIGIT
# Writes DIR/NNN-dD.EXT and prints "FILE LABEL" per image.
set -eu
dir=$1
per=${2:-12}
mkdir -p "$dir"
fonts=()
for f in dejavu/DejaVuSans.ttf dejavu/DejaVuSerif-Bold.ttf dejavu/DejaVuSansMono.ttf \
    liberation/LiberationSans-Regular.ttf liberation/LiberationSerif-Regular.ttf \
    liberation/LiberationMono-Bold.ttf freefont/FreeSans.ttf freefont/FreeSerifItalic.ttf; do
    [ -e "/usr/share/fonts/truetype/$f" ] && fonts+=("/usr/share/fonts/truetype/$f")
done
[ "${#fonts[@]}" -ge 4 ] || { echo "font_digits.sh: too few fonts (install fonts-dejavu-core fonts-liberation fonts-freefont-ttf)" >&2; exit 1; }
# background / ink pairs: dark on light, light on dark, in colour too
bgs=(white "#f4f0e0" lightyellow black navy "#203020" white "#e8e8ff" "#303030" lightgray)
fgs=(black "#202080" darkred white yellow "#c0ffc0" "#1060d0" black "#f0f0f0" "#101010")

seed=12345
rnd() { # N -> RND in 0..N-1 (a fixed LCG: the same images every run)
    seed=$(((seed * 1103515245 + 12345) % 2147483648))
    RND=$(((seed / 65536) % $1))
}
args=()
n=$((per * 10))
for ((k = 0; k < n; k++)); do
    d=$((k % 10))
    rnd "${#fonts[@]}"; font=${fonts[$RND]}
    rnd 200; w=$((36 + RND))
    rnd 200; h=$((36 + RND))
    short=$((w < h ? w : h))
    rnd 40; pt=$((short * (50 + RND) / 100))
    rnd 10; scheme=$RND
    bg=${bgs[$scheme]} fg=${fgs[$scheme]}
    room_x=$(((w - pt * 6 / 10) / 3)) room_y=$(((h - pt) / 3))
    [ "$room_x" -gt 0 ] || room_x=1
    [ "$room_y" -gt 0 ] || room_y=1
    rnd $((2 * room_x + 1)); dx=$((RND - room_x))
    rnd $((2 * room_y + 1)); dy=$((RND - room_y))
    case $((k % 4)) in 0) ext=png ;; 1) ext=jpg ;; 2) ext=ppm ;; 3) ext=png ;; esac
    canvas="xc:$bg"
    if ((k % 8 == 7)); then canvas=xc:none bg=none fg=black; fi # a transparent PNG
    out=$(printf '%s/%03d-d%d.%s' "$dir" "$k" "$d" "$ext")
    step=(-size "${w}x${h}" "$canvas" -font "$font" -pointsize "$pt" -fill "$fg" -gravity center
        -annotate "$(printf '%+d%+d' "$dx" "$dy")" "$d")
    if ((k % 3 == 1)); then
        rnd 21
        step+=(-background "$bg" -rotate $((RND - 10)))
    fi
    if ((k % 5 == 2)); then step+=(-attenuate 0.5 +noise Gaussian); fi
    args+=("(" "${step[@]}" -write "$out" +delete ")")
    printf '%s %d\n' "$out" "$d"
done
convert "${args[@]}" xc: null:
