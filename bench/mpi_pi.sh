#!/usr/bin/env bash
# Benchmark row for issue 8: a procpool subcommand on the MPI backend against
# the local process pool, with the same number of workers on this machine.
#
#   bench/mpi_pi.sh                          # pi --seeds 0..64, 2 workers, 5 repeats
#   WORKERS=3 REPEATS=7 bench/mpi_pi.sh square 0..200000
#   PROCPOOL=path/to/procpool bench/mpi_pi.sh   # that binary, built with --features mpi
#
# The MPI run is `mpirun -n WORKERS+1` (rank 0 supervises, the rest work); the
# local run is `-p WORKERS`. Runs alternate so that noise from other work on
# the machine hits both alike. Reported: the medians of the wall time of the
# whole command (start-up included) and of the map alone (the JSON summary's
# elapsed_ms). The subcommand must print a JSON Lines summary with --json.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=${WORKERS:-2}
repeats=${REPEATS:-5}
if (($# == 0)); then
    set -- pi --seeds 0..64
fi

if [[ -n ${PROCPOOL:-} ]]; then
    bin=$PROCPOOL
else
    cargo build --release --quiet --features mpi
    bin=$PWD/target/release/procpool
fi
mpirun=(mpirun --oversubscribe -n "$((workers + 1))")
if [[ $(id -u) -eq 0 ]]; then
    mpirun+=(--allow-run-as-root)
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT

# One run: prints "backend wall_ms map_ms", failing loudly if the run did.
run() {
    local backend=$1
    shift
    local start end summary
    start=$(date +%s%N)
    summary=$("$@" | tail -n 1)
    end=$(date +%s%N)
    python3 -c '
import json, sys
summary = json.loads(sys.argv[3])["summary"]
if summary["failed"] or summary["not_run"]:
    sys.exit(f"{sys.argv[1]}: tasks failed: {summary}")
print(sys.argv[1], sys.argv[2], summary["elapsed_ms"])
' "$backend" "$(((end - start) / 1000000))" "$summary"
}

for ((i = 0; i < repeats; i++)); do
    run local "$bin" -p "$workers" --json "$@" >>"$results"
    run mpi "${mpirun[@]}" "$bin" --backend mpi --json "$@" >>"$results"
done

python3 - "$results" "$workers" "$repeats" "$*" <<'PY'
import statistics, sys
path, workers, repeats, command = sys.argv[1:]
rows = {}
for line in open(path):
    backend, wall, map_ms = line.split()
    rows.setdefault(backend, []).append((float(wall), float(map_ms)))
print(f"procpool {command}: {workers} workers, median of {repeats} runs")
print("| backend | workers | wall ms | map ms |")
print("|---|---|---|---|")
for backend in ("local", "mpi"):
    walls = [w for w, _ in rows[backend]]
    maps = [m for _, m in rows[backend]]
    print(f"| {backend} | {workers} | {statistics.median(walls):.0f} | {statistics.median(maps):.1f} |")
PY
