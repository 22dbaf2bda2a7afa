#!/bin/sh
# Machine perceptual quality (docs/mpq.md): how well a classifier trained on original inputs does
# on inputs decoded from walloc, JPEG, WebP and AVIF (images) or walloc and Opus (audio) at
# several rates; the same classifier trained and tested on walloc latents at those rates; and the
# full-resolution accuracy as the upper bound. Uses the two tasks of docs/compressed-learning.md.
#
#   scripts/mpq.sh [image|audio|all]      (or: make mpq)
#
# Environment: IMAGE_MODEL / AUDIO_MODEL (variable-rate model directories; default: the embedded
# models), SEED (1), DATA (data/compressed-learning), IMAGE_TRAIN / IMAGE_TEST / AUDIO_TRAIN /
# AUDIO_TEST (8000 / 2000 / 6000 / 1500), EPOCHS (10), IMAGE_CODECS / AUDIO_CODECS (codec:setting
# lists for the decoded test sets), IMAGE_QUALITIES / AUDIO_QUALITIES (walloc settings, decoded
# and as latents), WALLOC and EXPERIMENTS (the executables).
# Everything generated goes under DATA/{image,audio}/mpq (ignored by git); results in
# DATA/mpq-results.md, DATA/mpq-{image,audio}.tsv and DATA/mpq-{image,audio}.svg. Finished
# conversions are kept; classifiers are retrained.
set -eu
TASK=${1:-all}
WALLOC=${WALLOC:-.build/release/walloc}
EXPERIMENTS=${EXPERIMENTS:-.build/release/walloc-experiments}
DATA=${DATA:-data/compressed-learning}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-10}
IMAGE_QUALITIES=${IMAGE_QUALITIES:-25 45 75}
IMAGE_CODECS=${IMAGE_CODECS:-jpeg:5 jpeg:15 jpeg:50 webp:0 webp:30 webp:85 avif:5 avif:35 avif:65}
AUDIO_QUALITIES=${AUDIO_QUALITIES:-10 30 60}
AUDIO_CODECS=${AUDIO_CODECS:-opus:8 opus:16 opus:32}
case $TASK in image|audio|all) ;; *) echo "usage: $0 [image|audio|all]" >&2; exit 2 ;; esac
MAKE_TARGET=mpq
# shellcheck source=scripts/learning-common.sh
. "$(dirname "$0")/learning-common.sh"

# train NAME TRAIN TEST: a classifier (the settings of docs/compressed-learning.md) into $mpq/classifier-NAME
# (its per-epoch log next to it).
train() {
    "$WALLOC" classify train "$2" --test "$3" -o "$mpq/classifier-$1" --epochs "$EPOCHS" --seed "$SEED" --force \
        --head max --lr 3e-3 --batch-size 64 --widths 32,64,128 > "$mpq/classifier-$1.log"
    grep '^epoch' "$mpq/classifier-$1.log" | tail -n 1
}

# result KIND CODEC SETTING CLASSIFIER TEST [BYTES]: evaluates and appends a TSV line
# kind, codec, setting, mean coded bytes per item, test accuracy.
result() {
    json=$("$WALLOC" classify eval --model "$4" "$5" --json)
    acc=$(printf '%s' "$json" | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/')
    bytes=${6:-$(printf '%s' "$json" | sed -n 's/.*"mean_coded_bytes":\([0-9.e-]*\).*/\1/p')}
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${bytes:-0}" "$acc" >> "$tsv"
    printf '  %-8s %-7s %-4s %10s bytes  accuracy %s\n' "$1" "$2" "$3" "${bytes:-0}" "$acc"
}

# run_task NAME MODEL QUALITIES CODECS GENERATE...
run_task() {
    name=$1; model=$2; qualities=$3; codecs=$4; shift 4
    dir=$DATA/$name; mpq=$dir/mpq; tsv=$DATA/mpq-$name.tsv
    mkdir -p "$mpq"
    model_args=""
    if [ -n "$model" ]; then model_args="--model $model"; fi
    t0=$(now)
    echo "== $name: dataset"
    "$EXPERIMENTS" "$@" -o "$dir/files" --seed "$SEED"
    t1=$(now)
    echo "== $name: full-resolution inputs and the classifier trained on them"
    convert "$dir/files/train" "$mpq/signal-train" --signal
    convert "$dir/files/test" "$mpq/signal-test" --signal
    train signal "$mpq/signal-train" "$mpq/signal-test"
    printf 'kind\tcodec\tsetting\tbytes\taccuracy\n' > "$tsv"
    result original none - "$mpq/classifier-signal" "$mpq/signal-test" 0
    t2=$(now)
    echo "== $name: decoded test inputs"
    # walloc as walloc encode codes (images: shrunk at low settings, --downscale) and, for images,
    # also at full size (walloc encode --no-downscale), labelled walloc-full.
    for variant in $variants; do
        label=${variant%%:*}; flag=${variant#*:}
        for q in $qualities; do
            # shellcheck disable=SC2086
            convert "$dir/files/test" "$mpq/decoded-$label-$q" --signal --through "walloc:$q" $flag
            result decoded "$label" "$q" "$mpq/classifier-signal" "$mpq/decoded-$label-$q"
        done
    done
    for spec in $codecs; do
        convert "$dir/files/test" "$mpq/decoded-$spec" --signal --through "$spec"
        result decoded "${spec%%:*}" "${spec#*:}" "$mpq/classifier-signal" "$mpq/decoded-$spec"
    done
    t3=$(now)
    echo "== $name: classifiers on walloc latents"
    for variant in $variants; do
        label=${variant%%:*}; flag=${variant#*:}
        for q in $qualities; do
            # shellcheck disable=SC2086
            convert "$dir/files/train" "$mpq/latents-$label-q$q-train" --quality "$q" $flag
            # shellcheck disable=SC2086
            convert "$dir/files/test" "$mpq/latents-$label-q$q-test" --quality "$q" $flag
            train "latents-$label-q$q" "$mpq/latents-$label-q$q-train" "$mpq/latents-$label-q$q-test"
            bytes=$(awk -F'\t' -v q="$q" -v c="$label" '$1 == "decoded" && $2 == c && $3 == q { print $4 }' "$tsv")
            result latents "$label" "$q" "$mpq/classifier-latents-$label-q$q" "$mpq/latents-$label-q$q-test" "$bytes"
        done
    done
    t4=$(now)
    echo "$name	dataset $((t1 - t0)) s, originals and their classifier $((t2 - t1)) s, decoded test sets $((t3 - t2)) s, latents and their classifiers $((t4 - t3)) s, total $((t4 - t0)) s" > "$DATA/mpq-$name.time"
}

start=$(now)
if [ "$TASK" = image ] || [ "$TASK" = all ]; then
    PREPARE=""
    variants="walloc:--downscale walloc-full:"
    run_task image "${IMAGE_MODEL:-}" "$IMAGE_QUALITIES" "$IMAGE_CODECS" glyphs --train "${IMAGE_TRAIN:-8000}" --test "${IMAGE_TEST:-2000}"
fi
if [ "$TASK" = audio ] || [ "$TASK" = all ]; then
    PREPARE="--seconds 1"
    variants="walloc:"
    run_task audio "${AUDIO_MODEL:-}" "$AUDIO_QUALITIES" "$AUDIO_CODECS" speech --train "${AUDIO_TRAIN:-6000}" --test "${AUDIO_TEST:-1500}"
fi
total=$(($(now) - start))
tables=""
for t in image audio; do [ -f "$DATA/mpq-$t.tsv" ] && tables="$tables $DATA/mpq-$t.tsv"; done
# shellcheck disable=SC2086
"$EXPERIMENTS" mpq-report $tables --svg-dir "$DATA" --seed "$SEED" --total-seconds "$total" > "$DATA/mpq-results.md"
cat "$DATA/mpq-results.md"
echo "== total wall time: $total s; results in $DATA/mpq-results.md"
