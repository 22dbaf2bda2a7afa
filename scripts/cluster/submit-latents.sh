#!/bin/bash
# Submits the conversion array (latents.sbatch) and a merge job that runs once every task has
# succeeded (it is cancelled if a task fails); with --wait, returns when the merge is done, with
# its exit status (non-zero when a task failed).
#   DATA=/datasets/photos OUT=/scratch/photo-latents scripts/cluster/submit-latents.sh 16 [--wait]
set -euo pipefail
TASKS=${1:?usage: submit-latents.sh TASKS [--wait]}
here=$(cd "$(dirname "$0")" && pwd)
: "${DATA:?set DATA}" "${OUT:?set OUT}"
WALLOC=${WALLOC:-walloc}
# SBATCH_OPTIONS: more sbatch options for the array (e.g. --partition=cpu --cpus-per-task=8).
# shellcheck disable=SC2086
array=$(sbatch --parsable --export=ALL --array=0-$((TASKS - 1)) ${SBATCH_OPTIONS:-} "$here/latents.sbatch")
echo "conversion: job array $array ($TASKS tasks)"
merge=(sbatch --parsable --export=ALL --dependency=afterok:"$array" --kill-on-invalid-dep=yes --job-name=walloc-merge
       --output=walloc-merge-%j.log --wrap "\"$WALLOC\" latents merge \"$OUT\"")
[ "${2:-}" = --wait ] && merge+=(--wait)
job=$("${merge[@]}")
echo "merge: job $job (after $array succeeds): walloc latents merge $OUT"
