#!/usr/bin/env bats
# predict on people's own pictures: PNG (every colour type and depth), JPEG,
# PPM, PGM of any size, made to look like MNIST (--preprocess mnist); what
# the network saw (--save-input); --json; bad pictures refused in one line.
# ImageMagick (Debian's, installed by `make test`) makes the pictures.

load helpers

# Measured with the model the last test trains (20,000 real images, 3
# epochs, shifts of up to 2 pixels; 98.46% on the MNIST test set) on the
# 120 font digits of tests/font_digits.sh: 0.9417 (113/120) with
# --preprocess mnist, 0.1500 (18/120) squashed to 28x28 by ImageMagick and
# read as they are.
MIN_FONT_ACCURACY=0.85

setup_file() {
    fixtures
    I=$BATS_FILE_TMPDIR/images
    mkdir -p "$I"
    train_small "$I" -q >"$I/train.out" 2>&1 || echo "train: $?" >"$I/train.rc"
    # Test image 0 (a 7), five times larger, black on white, in every
    # container and colour type predict reads.
    write_pgm "$MNIST/t10k-images-idx3-ubyte.gz" "$MNIST/t10k-labels-idx1-ubyte.gz" 0 "$I/seven.pgm" >"$I/label"
    (
        cd "$I" && convert seven.pgm -filter point -resize 500% -negate big.pgm &&
            convert big.pgm \
                \( +clone -threshold 50% -write bilevel.pgm -depth 1 -write png:gray1.png +delete \) \
                \( +clone -colorspace gray -depth 8 -write png:gray8.png +delete \) \
                \( +clone -colorspace gray -depth 16 -define png:bit-depth=16 -define png:color-type=0 -write gray16.png +delete \) \
                \( +clone -transparent white -define png:color-type=4 -write gray-alpha.png +delete \) \
                \( +clone -write PNG24:rgb.png +delete \) \
                \( +clone -interlace PNG -write PNG24:interlaced.png +delete \) \
                \( +clone -write PNG48:rgb16.png +delete \) \
                \( +clone -transparent white -write PNG32:rgba.png +delete \) \
                \( +clone -transparent white -write PNG64:rgba16.png +delete \) \
                \( +clone -depth 8 -write PPM:rgb.ppm +delete \) \
                \( +clone -quality 90 -write photo.jpg +delete \) null: &&
            convert big.pgm PNG8:palette.png
    ) >"$I/convert.out" 2>&1 || echo "convert: $?" >>"$I/train.rc"
}

setup() {
    I=$BATS_FILE_TMPDIR/images
    D=$BATS_TEST_TMPDIR
    [ ! -e "$I/train.rc" ] || fail "setup failed: $(cat "$I/train.rc")" "$(cat "$I/train.out" "$I/convert.out")"
}

# The part of a --json line after the file name (and index).
json_result() {
    sed 's/^{"file":"[^"]*",\("index":[0-9]*,\)\{0,1\}//'
}

@test "predict reads PNG (grey 1/8/16-bit, grey+alpha, palette, RGB, RGBA, 16-bit, interlaced), PPM, PGM and JPEG alike" {
    local lossless=(gray8.png gray16.png gray-alpha.png palette.png rgb.png interlaced.png rgb16.png
        rgba.png rgba16.png rgb.ppm big.pgm)
    run --separate-stderr "$TRAINER" predict "$I/m.model" "${lossless[@]/#/$I/}" "$I/photo.jpg" --json
    assert_status 0
    [ -z "$stderr" ] || fail "stderr: $stderr"
    [ "${#lines[@]}" -eq 12 ]
    # The same grey pixels whatever the container: the same bits out.
    local want i
    want=$(printf '%s\n' "${lines[0]}" | json_result)
    for ((i = 1; i < 11; i++)); do
        [ "$(printf '%s\n' "${lines[i]}" | json_result)" = "$want" ] ||
            fail "${lossless[i]} differs:" "${lines[i]}" "${lines[0]}"
    done
    # JPEG is lossy: the same class.
    [[ ${lines[11]} == *"\"class\":$(printf '%s\n' "$want" | sed 's/.*"class":\([0-9]*\).*/\1/'),"* ]] ||
        fail "the JPEG gives another class: ${lines[11]}" "$want"
    # 1-bit grey: the same as the two-level PGM it was written from
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$I/gray1.png" "$I/bilevel.pgm" --json
    assert_status 0
    file "$I/gray1.png" | grep -q "1-bit grayscale" || fail "$(file "$I/gray1.png")"
    [ "$(printf '%s\n' "${lines[0]}" | json_result)" = "$(printf '%s\n' "${lines[1]}" | json_result)" ]
}

@test "--save-input writes the 28x28 picture the network saw; read back with --preprocess none it gives the same answer" {
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$I/rgb.png" "$I/photo.jpg" --save-input "$D/seen" --json
    assert_status 0
    [ -s "$D/seen/rgb.png" ] && [ -s "$D/seen/photo.png" ]
    local first=${lines[0]}
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$D/seen/rgb.png" --preprocess none --json
    assert_status 0
    [ "$(printf '%s\n' "$output" | json_result)" = "$(printf '%s\n' "$first" | json_result)" ]
    # MNIST-like: 28x28, white digit on black, the border black, full-white ink
    [ "$(convert "$D/seen/rgb.png" -format '%w %h' info:)" = "28 28" ]
    convert "$D/seen/rgb.png" -colorspace gray -depth 8 gray:"$D/seen.raw"
    "$PY" - "$D/seen.raw" <<'EOF'
import sys
px = open(sys.argv[1], "rb").read()
assert len(px) == 784, len(px)
rows = [px[r * 28:(r + 1) * 28] for r in range(28)]
assert not any(rows[0] + rows[27] + bytes(r[0] for r in rows) + bytes(r[27] for r in rows)), "the border is not black"
assert max(px) == 255, "no full-white ink"
EOF
}

@test "--preprocess none takes pictures as they are and refuses a size the model does not take; IDX is unprocessed by default" {
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$I/rgb.png" --preprocess none
    assert_status 2
    assert_one_error_line "$I/rgb.png" "140x140" "28x28" "--preprocess mnist"
    # The PGM of test image 0 as it is, and image 0 of the IDX file by default
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$I/seven.pgm" --preprocess none --json
    assert_status 0
    local pgm
    pgm=$(printf '%s\n' "$output" | json_result)
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$MNIST/t10k-images-idx3-ubyte.gz" --json
    assert_status 0
    [ "${#lines[@]}" -eq 10000 ]
    [ "$(printf '%s\n' "${lines[0]}" | json_result)" = "$pgm" ]
    # and the same picture through --preprocess mnist is another input
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$I/seven.pgm" --json
    assert_status 0
    [ "$(printf '%s\n' "$output" | json_result)" != "$pgm" ]
}

@test "--json: one object per picture and per IDX image, with file, class and probabilities" {
    cp "$I/rgb.png" "$D/a \"quoted\" name.png"
    run --separate-stderr "$TRAINER" predict "$I/m.model" "$D/a \"quoted\" name.png" "$FIXTURES/test-images.gz" --json
    assert_status 0
    [ "${#lines[@]}" -eq 1001 ]
    printf '%s\n' "${lines[@]}" | "$PY" -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin]
assert objs[0]["file"].endswith("a \"quoted\" name.png"), objs[0]
assert "index" not in objs[0] and objs[1]["index"] == 0 and objs[-1]["index"] == 999
for o in objs:
    p = o["probabilities"]
    assert len(p) == 10 and abs(sum(p) - 1) < 1e-5 and p.index(max(p)) == o["class"], o
'
}

# A PNG whose header claims W x H (8-bit grey), with one tiny IDAT.
png_claiming() { # OUT W H
    "$PY" - "$@" <<'EOF'
import struct, sys, zlib
out, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))
EOF
}

@test "bad pictures: text, empty, truncated PNG and JPEG, blank, 100k x 100k headers: one line naming the file, exit 2" {
    printf 'hello, world\n' >"$D/text.png"
    : >"$D/empty.png"
    head -c $(($(stat -c %s "$I/rgb.png") / 2)) "$I/rgb.png" >"$D/cut.png"
    head -c $(($(stat -c %s "$I/photo.jpg") * 6 / 10)) "$I/photo.jpg" >"$D/cut.jpg"
    convert -size 64x48 xc:white "$D/blank.png"
    convert -size 64x48 xc:navy -quality 95 "$D/blank.jpg"
    png_claiming "$D/huge.png" 100000 100000
    # a JPEG whose frame header claims 65000 x 65000
    "$PY" - "$I/photo.jpg" "$D/huge.jpg" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = next(d.index(m) for m in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2") if m in d)
d[i + 5:i + 9] = (65000).to_bytes(2, "big") * 2
open(sys.argv[2], "wb").write(d)
EOF
    printf 'P5\n100000 100000\n255\n\x01\x02' >"$D/huge.pgm"
    local f
    for f in text.png:"not a PNG, JPEG" empty.png:empty cut.png:truncated cut.jpg:truncated blank.png:blank \
        blank.jpg:blank huge.png:100000x100000 huge.jpg:65000x65000 huge.pgm:100000x100000; do
        run --separate-stderr "$TRAINER" predict "$I/m.model" "$D/${f%%:*}"
        assert_status 2
        assert_one_error_line "$D/${f%%:*}" "${f#*:}"
    done
}

@test "digits rendered from fonts: --preprocess mnist is right on more than $MIN_FONT_ACCURACY of them, and beats none" {
    [ "$FLAVOUR" = asan ] && skip "the accuracy measure runs in the test flavour only"
    # A quick but real model: 20,000 training images, 3 epochs, shifts.
    "$TRAINER" train "$CONFIG" -q --set data.limit=20000 --set train.epochs=3 --set data.augment_shift=2 \
        --set "data.train_images=$MNIST/train-images-idx3-ubyte.gz" \
        --set "data.train_labels=$MNIST/train-labels-idx1-ubyte.gz" \
        --set "data.test_images=$MNIST/t10k-images-idx3-ubyte.gz" \
        --set "data.test_labels=$MNIST/t10k-labels-idx1-ubyte.gz" \
        --set "output.model=$D/quick.model" --set output.metrics= >"$D/train.out"
    run --separate-stderr "$ROOT/tests/font_accuracy.sh" "$TRAINER" "$D/quick.model" "$D/fonts" 12
    assert_status 0
    printf '# font digits: %s\n' "${lines[@]}" >&3
    [[ ${lines[0]} =~ ^mnist\ [0-9]+/120\ ([01]\.[0-9]{4})$ ]] || fail "unexpected: ${lines[0]}"
    local mnist=${BASH_REMATCH[1]}
    [[ ${lines[1]} =~ ^none\ [0-9]+/120\ ([01]\.[0-9]{4})$ ]] || fail "unexpected: ${lines[1]}"
    local none=${BASH_REMATCH[1]}
    greater "$mnist" "$MIN_FONT_ACCURACY" || fail "font digits: $mnist with --preprocess mnist, want > $MIN_FONT_ACCURACY"
    greater "$mnist" "$none" || fail "preprocessing does not help: mnist $mnist, none $none"
}
