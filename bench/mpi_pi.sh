#!/usr/bin/env bash
# A procpool subcommand on the MPI backend against the local process pool,
# with the same number of workers: MPI on this host (shared memory), and, as
# root, MPI across two hosts simulated with network namespaces (TCP over a
# veth link, as bin/tests/it/cluster.rs does).
#
#   bench/mpi_pi.sh                          # pi --seeds 0..64, 2 workers, 5 repeats
#   WORKERS=3 REPEATS=7 bench/mpi_pi.sh square 0..200000
#   PROCPOOL=path/to/procpool bench/mpi_pi.sh   # that binary, built with --features mpi
#
# The MPI run is `mpirun -n WORKERS+1` (rank 0 supervises, the rest work); the
# local run is `-p WORKERS`. Runs alternate so that noise from other work on
# the machine hits all alike. Reported: the medians of the wall time of the
# whole command (start-up included), of its CPU time (user + system, of every
# process it started), and of the map alone (the JSON summary's elapsed_ms).
# The subcommand must print a JSON Lines summary with --json.
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
    cargo build --release --quiet -p procpool-cli --features mpi
    bin=$PWD/target/release/procpool
fi
mpirun=(mpirun --oversubscribe -n "$((workers + 1))")
if [[ $(id -u) -eq 0 ]]; then
    mpirun+=(--allow-run-as-root)
fi

results=$(mktemp)
scratch=$(mktemp -d)
cleanup() {
    rm -rf "$results" "$scratch"
    if [[ -n ${two_hosts:-} ]]; then
        ip netns del bench-h1 2>/dev/null || true
        ip netns del bench-h2 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Two hosts, h1 (192.0.2.1, rank 0 and half the workers) and h2 (192.0.2.2),
# when we may make network namespaces.
if [[ $(id -u) -eq 0 ]] && ip netns add bench-h1 2>/dev/null; then
    two_hosts=1
    ip netns add bench-h2
    ip link add bench-va type veth peer name bench-vb
    ip link set bench-va netns bench-h1
    ip link set bench-vb netns bench-h2
    ip -n bench-h1 addr add 192.0.2.1/24 dev bench-va
    ip -n bench-h2 addr add 192.0.2.2/24 dev bench-vb
    for h in bench-h1:bench-va bench-h2:bench-vb; do
        ip -n "${h%:*}" link set "${h#*:}" up
        ip -n "${h%:*}" link set lo up
    done
    cat >"$scratch/on" <<'END'
#!/bin/sh
host=$1; shift
case $host in 192.0.2.1) name=h1 ;; *) name=h2 ;; esac
exec ip netns exec "bench-$name" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$name" "$@"
END
    printf '#!/bin/sh\nhost=$1; shift\nexec %s/on "$host" sh -c "$*"\n' "$scratch" >"$scratch/agent"
    chmod +x "$scratch/on" "$scratch/agent"
    per_host=$(((workers + 2) / 2))
    printf '192.0.2.1 slots=%d\n192.0.2.2 slots=%d\n' "$per_host" "$per_host" >"$scratch/hosts"
    two=("$scratch/on" 192.0.2.1 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        mpirun --hostfile "$scratch/hosts" -n "$((workers + 1))"
        --mca plm_rsh_agent "$scratch/agent" --mca btl tcp,self
        --mca btl_tcp_if_include 192.0.2.0/24 --mca oob_tcp_if_include 192.0.2.0/24)
fi

# One run: prints "backend wall_ms map_ms", failing loudly if the run did.
run() {
    local backend=$1
    shift
    local summary
    summary=$(/usr/bin/time -f "%e %U %S" -o "$scratch/time" "$@" | tail -n 1)
    python3 -c '
import json, sys
summary = json.loads(sys.argv[3])["summary"]
if summary["failed"] or summary["not_run"]:
    sys.exit(f"{sys.argv[1]}: tasks failed: {summary}")
wall, user, system = map(float, sys.argv[2].split())
print(sys.argv[1], wall * 1e3, (user + system) * 1e3, summary["elapsed_ms"])
' "$backend" "$(tail -n 1 "$scratch/time")" "$summary"
}

for ((i = 0; i < repeats; i++)); do
    run local "$bin" -p "$workers" --json "$@" >>"$results"
    run mpi "${mpirun[@]}" "$bin" --backend mpi --json "$@" >>"$results"
    if [[ -n ${two_hosts:-} ]]; then
        run mpi-2-hosts "${two[@]}" "$bin" --backend mpi --json "$@" >>"$results"
    fi
done

python3 - "$results" "$workers" "$repeats" "$*" <<'PY'
import statistics, sys
path, workers, repeats, command = sys.argv[1:]
rows = {}
for line in open(path):
    backend, wall, cpu, map_ms = line.split()
    rows.setdefault(backend, []).append((float(wall), float(cpu), float(map_ms)))
print(f"procpool {command}: {workers} workers, median of {repeats} interleaved runs")
print("| backend | workers | wall ms | CPU ms | map ms | map vs local |")
print("|---|---|---|---|---|---|")
local_map = statistics.median(r[2] for r in rows["local"])
names = {"local": "local processes", "mpi": "MPI, one host (shared memory)",
         "mpi-2-hosts": "MPI, two hosts (TCP, namespaces)"}
for backend in ("local", "mpi", "mpi-2-hosts"):
    if backend not in rows:
        continue
    wall, cpu, map_ms = (statistics.median(r[i] for r in rows[backend]) for i in range(3))
    print(f"| {names[backend]} | {workers} | {wall:.0f} | {cpu:.0f} | {map_ms:.1f} | {map_ms / local_map:.2f}x |")
PY
