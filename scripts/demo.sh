#!/bin/sh
# The quick-start demo: compress the bundled sample photo and music excerpt with the embedded
# default models, decode them, and print size, compression ratio and quality.
set -eu
WALLOC=${1:-.build/release/walloc}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

demo() { # INPUT NAME EXTENSION
    input=$1; wlc="$OUT/$2.wlc"; decoded="$OUT/$2-decoded.$3"
    echo "== $input ($(wc -c < "$input") bytes)"
    "$WALLOC" encode "$input" -o "$wlc"
    "$WALLOC" decode --quiet "$wlc" -o "$decoded"
    echo "decoded to $(basename "$decoded"); against the original:"
    "$WALLOC" compare "$input" "$decoded" | sed 's/^/  /'
    echo
}

demo samples/chelsea.png chelsea png
demo samples/wanderer-excerpt.flac wanderer flac
echo "Encoded with the embedded default models (models/README.md); walloc --help for more."
