#!/bin/sh
# The compressed-domain learning experiment (docs/compressed-learning.md): the same classifier
# trained on WaLLoC latents of full-resolution inputs and on the inputs resized to as many values.
#
#   scripts/compressed-learning.sh [image|audio|all]      (or: make compressed-learning)
#
# Environment: IMAGE_MODEL / AUDIO_MODEL (model directories; default: the embedded models),
# SEED (1), DATA (data/compressed-learning), IMAGE_TRAIN / IMAGE_TEST / IMAGE_EPOCHS,
# AUDIO_TRAIN / AUDIO_TEST / AUDIO_EPOCHS, WALLOC and EXPERIMENTS (the executables, built with
# `swift build -c release --product walloc` and `--product walloc-experiments`).
# Generated files go under DATA (ignored by git); the Markdown table of both tasks ends up in
# DATA/results.md. Every step skips work already done: datasets are generated once per setting,
# finished latent shards are kept (latents made with another model are removed and made again);
# classifiers are retrained.
set -eu
TASK=${1:-all}
WALLOC=${WALLOC:-.build/release/walloc}
EXPERIMENTS=${EXPERIMENTS:-.build/release/walloc-experiments}
DATA=${DATA:-data/compressed-learning}
SEED=${SEED:-1}
case $TASK in image|audio|all) ;; *) echo "usage: $0 [image|audio|all]" >&2; exit 2 ;; esac
MAKE_TARGET=compressed-learning
# shellcheck source=scripts/learning-common.sh
. "$(dirname "$0")/learning-common.sh"

# run_task NAME MODEL EPOCHS GENERATE... : generate, convert both ways, train both classifiers, report.
run_task() {
    name=$1; model=$2; epochs=$3; shift 3
    dir=$DATA/$name
    mkdir -p "$dir"
    model_args=""
    if [ -n "$model" ]; then model_args="--model $model"; fi
    t0=$(now)
    echo "== $name: dataset"
    "$EXPERIMENTS" "$@" -o "$dir/files" --seed "$SEED"
    t1=$(now)
    echo "== $name: latents and resized baseline"
    for split in train test; do
        convert "$dir/files/$split" "$dir/latents-$split"
        convert "$dir/files/$split" "$dir/resized-$split" --resized
    done
    t2=$(now)
    for kind in latents resized; do
        echo "== $name: classifier on $kind"
        # shellcheck disable=SC2086
        "$WALLOC" classify train "$dir/$kind-train" --test "$dir/$kind-test" -o "$dir/classifier-$kind" \
            --epochs "$epochs" --seed "$SEED" --force $CLASSIFIER
    done
    t3=$(now)
    {
        echo "### $name: $*, seed $SEED"
        echo
        "$EXPERIMENTS" report "$dir/classifier-latents" "$dir/classifier-resized"
        echo
        echo "Codec: $(sed -n 's/.*"fingerprint" : "\(.*\)".*/\1/p' "$dir/latents-train/manifest.json") ($(if [ -n "$model" ]; then echo "$model"; else echo "embedded default model"; fi))." \
            "Wall time: dataset $((t1 - t0)) s, latents and baseline $((t2 - t1)) s, both classifiers $((t3 - t2)) s, total $((t3 - t0)) s."
    } > "$dir/results.md"
    echo "== $name: results ($dir/results.md)"
    cat "$dir/results.md"
}

start=$(now)
if [ "$TASK" = image ] || [ "$TASK" = all ]; then
    PREPARE=""
    CLASSIFIER="--head max --lr 3e-3 --batch-size 64 --widths 32,64,128"
    run_task image "${IMAGE_MODEL:-}" "${IMAGE_EPOCHS:-10}" glyphs --train "${IMAGE_TRAIN:-8000}" --test "${IMAGE_TEST:-2000}"
fi
if [ "$TASK" = audio ] || [ "$TASK" = all ]; then
    PREPARE="--seconds 1"
    CLASSIFIER="--head max --lr 3e-3 --batch-size 64 --widths 32,64,128"
    run_task audio "${AUDIO_MODEL:-}" "${AUDIO_EPOCHS:-10}" speech --train "${AUDIO_TRAIN:-6000}" --test "${AUDIO_TEST:-1500}"
fi
total=$(($(now) - start))
{
    echo "## Compressed-domain learning ($(date -u +%Y-%m-%d), $(nproc) cores, seed $SEED)"
    echo
    for t in image audio; do
        if { [ "$TASK" = "$t" ] || [ "$TASK" = all ]; } && [ -f "$DATA/$t/results.md" ]; then cat "$DATA/$t/results.md"; echo; fi
    done
    echo "Total wall time ($TASK): $total s."
} > "$DATA/results.md"
echo "== total wall time: $total s; tables in $DATA/results.md"
