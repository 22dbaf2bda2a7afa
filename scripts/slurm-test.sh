#!/bin/bash
# make slurm-test: a single-node Slurm cluster on localhost runs a 4-task job array that converts a
# dataset to latent shards (scripts/cluster/submit-latents.sh: the array, then a merge job), and the
# merged shards must be byte-identical to a one-worker run. Installs slurm-wlm and munge from
# Debian when missing (needs root), starts munged, slurmctld and slurmd with their state in a
# temporary folder, and stops exactly the daemons it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
walloc="$root/.build/release/walloc"
experiments="$root/.build/release/walloc-experiments"
[ -x "$walloc" ] && [ -x "$experiments" ] || { echo "slurm-test: build first (make build)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "slurm-test: installing slurm-wlm and munge from Debian"
    $sudo apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
fi
[ "$(id -u)" = 0 ] || { echo "slurm-test: slurmd must run as root; run make slurm-test as root" >&2; exit 1; }

work=$(mktemp -d /tmp/walloc-slurm-XXXXXX)
pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT
mkdir -p "$work"/{state,spool,log,munge}
chmod 700 "$work/munge"

# munge: its own key and socket, nothing shared with a system munged.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --foreground --force --key-file="$work/munge/munge.key" --socket="$socket" \
       --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" >"$work/log/munged.out" 2>&1 &
pids+=($!)

host=$(hostname -s)
cpus=$(nproc)
cat > "$work/slurm.conf" <<CONF
ClusterName=walloctest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$work/slurm.conf"
for i in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for i in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
    sleep 1
    [ "$i" = 60 ] && { echo "slurm-test: the node did not come up; logs:" >&2; tail -n 20 "$work"/log/* >&2; exit 1; }
done
echo "slurm-test: Slurm $(sinfo -V | awk '{print $2}') up on $host ($cpus CPUs)"

# A small image dataset (10 classes of rendered words), one worker, then the array.
[ -n "${SLURM_TEST_PAUSE:-}" ] && { echo "paused: SLURM_CONF=$SLURM_CONF"; sleep "$SLURM_TEST_PAUSE"; }
"$experiments" glyphs -o "$work/glyphs" --train 60 --test 10 >/dev/null
data="$work/glyphs/train"
"$walloc" latents "$data" -o "$work/one" --shard-size 6 --quiet
cd "$work"
status=0
DATA="$data" OUT="$work/array" WALLOC="$walloc" WALLOC_ARGS="--shard-size 6" SBATCH_OPTIONS="--cpus-per-task=1" \
    timeout 300 "$root/scripts/cluster/submit-latents.sh" 4 --wait || status=$?
for log in "$work"/walloc-*.log; do echo "  $(basename "$log"):"; sed 's/^/    /' "$log"; done
[ "$status" = 0 ] || { echo "slurm-test: the array or the merge failed (status $status)" >&2; squeue >&2 || true; exit 1; }
[ -f "$work/array/manifest.json" ] || { echo "slurm-test: no merged manifest" >&2; tail -n 20 "$work"/log/* >&2; exit 1; }
n=0
for f in "$work/one"/*; do
    cmp -s "$f" "$work/array/$(basename "$f")" || { echo "slurm-test: $(basename "$f") differs from the one-worker run" >&2; exit 1; }
    n=$((n + 1))
done
"$walloc" latents merge --verify "$work/array"
echo "slurm-test: passed: 4 array tasks + merge job; $n files byte-identical to a one-worker run"
