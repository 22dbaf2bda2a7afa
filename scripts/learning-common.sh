# Shared by scripts/compressed-learning.sh and scripts/mpq.sh (sourced, not run): the executables
# check, a clock, and `convert`. Needs WALLOC, EXPERIMENTS, DATA, MAKE_TARGET; `convert` also reads
# model_args and PREPARE.
for exe in "$WALLOC" "$EXPERIMENTS"; do
    [ -x "$exe" ] || { echo "error: $exe not found; build first (make $MAKE_TARGET builds and runs everything)" >&2; exit 1; }
done
mkdir -p "$DATA"

now() { date +%s; }

# convert INPUT OUT [options]: walloc latents, keeping finished shards; an OUT made by another
# conversion (another model, dataset or options) is removed and made again.
convert() {
    in=$1; out=$2; shift 2
    # shellcheck disable=SC2086
    if ! "$WALLOC" latents $model_args $PREPARE "$in" -o "$out" --quiet "$@" 2>"$DATA/.convert-error"; then
        if grep -q "belongs to another conversion" "$DATA/.convert-error"; then
            echo "$out: made by another conversion; converting again"
            rm -rf "$out"
            # shellcheck disable=SC2086
            "$WALLOC" latents $model_args $PREPARE "$in" -o "$out" --quiet "$@"
        else
            cat "$DATA/.convert-error" >&2; exit 1
        fi
    fi
}
