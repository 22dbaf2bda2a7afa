#!/bin/sh
# The quick-start demo: compress the bundled sample photo and music excerpt with the embedded
# default models, decode them, and print size, compression ratio and quality.
set -eu
WALLOC=${1:-.build/release/walloc}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

demo() { # INPUT DECODED_NAME
    input=$1; name=$2
    echo "== $input"
    "$WALLOC" encode --quiet "$input" -o "$OUT/$name.wlc"
    "$WALLOC" decode --quiet "$OUT/$name.wlc" -o "$OUT/$name"
    "$WALLOC" info "$OUT/$name.wlc" | sed -n '1,4p'
    "$WALLOC" compare "$input" "$OUT/$name" --wlc "$OUT/$name.wlc"
    echo
}

demo samples/chelsea.png chelsea.png
demo samples/wanderer-excerpt.flac wanderer.flac
echo "(encoded with the embedded default models; see models/README.md)"
