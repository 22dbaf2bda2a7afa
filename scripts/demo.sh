#!/bin/sh
# The quick-start demo: compress the bundled sample photo and music excerpt with the embedded
# default models at a low and a high quality setting, decode them, and print size, compression
# ratio and quality.
set -eu
WALLOC=${1:-.build/release/walloc}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

demo() { # INPUT NAME EXTENSION QUALITY
    input=$1; wlc="$OUT/$2-q$4.wlc"; decoded="$OUT/$2-q$4-decoded.$3"
    echo "== $input ($(wc -c < "$input") bytes), quality $4"
    "$WALLOC" encode --quality "$4" "$input" -o "$wlc"
    "$WALLOC" decode --quiet "$wlc" -o "$decoded"
    echo "decoded to $(basename "$decoded"); against the original:"
    "$WALLOC" compare "$input" "$decoded" | sed 's/^/  /'
    echo
}

for q in 20 80; do demo samples/chelsea.png chelsea png $q; done
for q in 20 80; do demo samples/wanderer-excerpt.flac wanderer flac $q; done
echo "Encoded with the embedded default models (models/README.md); --quality 1-100 sets the size,"
echo "--target-bpp / --target-kbps finds the setting for a size; walloc --help for more."
