#!/bin/sh
# The quick-start demo: describe a model, encode a signal to latents, decode it back, time it.
# Until the default models are trained (see models/README.md once they exist), the model is the
# reference-fixture Codec2D bundled with the tests.
set -eu
WALLOC=${1:-.build/release/walloc}
MODEL=Tests/Fixtures/reference/codec2d_light
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "== walloc info --model $MODEL"
"$WALLOC" info --model "$MODEL"
echo "== walloc latents / reconstruct"
"$WALLOC" latents --model "$MODEL" "$MODEL/input.npy" -o "$OUT/latents.npy"
"$WALLOC" reconstruct --model "$MODEL" "$OUT/latents.npy" -o "$OUT/output.npy"
ls -l "$OUT"
echo "== walloc bench (768x512 RGB, random weights)"
"$WALLOC" bench --nd 128 --repeat 3
