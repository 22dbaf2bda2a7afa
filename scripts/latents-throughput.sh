#!/bin/sh
# Dataset conversion at scale (docs/compressed-learning.md, BENCHMARKS.md): 1,000 full-HD JPEGs
# to latents with one worker (all cores), then with two workers (--shard 1/2 and 2/2, one thread
# each, at the same time), merged; checks that the merged shards and manifest are byte for byte
# those of the one worker.
#
#   scripts/latents-throughput.sh [MODEL_DIR]       (default: the embedded image model)
#
# Environment: DATA (data/latents-throughput), COUNT (1000), WALLOC, EXPERIMENTS.
set -eu
WALLOC=${WALLOC:-.build/release/walloc}
EXPERIMENTS=${EXPERIMENTS:-.build/release/walloc-experiments}
DATA=${DATA:-data/latents-throughput}
COUNT=${COUNT:-1000}
model_args=""
if [ -n "${1:-}" ]; then model_args="--model $1"; fi
mkdir -p "$DATA"
"$EXPERIMENTS" fullhd -o "$DATA/images" --count "$COUNT"
rm -rf "$DATA/one" "$DATA/w1" "$DATA/w2"
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$WALLOC" latents $model_args "$DATA/images" -o "$DATA/one" --quiet
t1=$(date +%s.%N)
for i in 1 2; do
    # shellcheck disable=SC2086
    "$WALLOC" latents $model_args "$DATA/images" -o "$DATA/w$i" --shard "$i/2" --threads 1 --quiet &
done
wait
t2=$(date +%s.%N)
"$WALLOC" latents merge "$DATA/w1" "$DATA/w2" -o "$DATA/w1"
"$WALLOC" latents merge --verify "$DATA/one"
(cd "$DATA/one" && sha256sum shard-*.safetensors manifest.json) > "$DATA/one.sha256"
(cd "$DATA/w1" && sha256sum shard-*.safetensors manifest.json) > "$DATA/two.sha256"
if cmp -s "$DATA/one.sha256" "$DATA/two.sha256"; then same="identical"; else same="DIFFERENT"; fi
one=$(elapsed "$t0" "$t1"); two=$(elapsed "$t1" "$t2")
rate() { awk -v n="$COUNT" -v t="$1" 'BEGIN { printf "%.1f", n / t }'; }
echo "one worker ($(nproc) threads): $COUNT images in $one s ($(rate "$one") images/s); two workers (one thread each): $two s ($(rate "$two") images/s)"
echo "merged shards and manifest of the two workers vs the one worker: $same"
[ "$same" = identical ]
