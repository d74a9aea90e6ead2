#!/usr/bin/env bash
# A procpool subcommand on the MPI backend against the local process pool,
# with the same number of workers: MPI on this host (shared memory), and, as
# root, MPI across two hosts simulated with network namespaces (TCP, as
# bin/tests/it/cluster.rs does), with no delay added and with DELAY_MS (1)
# more round trip. The link between them is bench/link.py (two TUN devices
# and a process that relays each packet, late by the delay one way): this
# machine's kernel has no tc netem.
#
#   bench/mpi.sh                              # square 0..2000000, 2 workers, 5 repeats
#   WORKERS=3 REPEATS=7 bench/mpi.sh pi --seeds 0..64
#   PROCPOOL=path/to/procpool bench/mpi.sh    # that binary, built with --features mpi
#   BEFORE=path/to/old/procpool bench/mpi.sh  # and every MPI row again for that one
#
# The MPI run is `mpirun -n WORKERS+1` (rank 0 supervises, the rest work); the
# local run is `-p WORKERS`. Under mpirun rank 0's stdout is a terminal that
# mpirun reads and copies out, which costs as much as the map for millions of
# lines: the MPI rows write each rank's stdout to a file, and one row
# ("stdout through mpirun") shows what that copy costs. Runs alternate so that
# noise from other work on the machine hits all alike. Reported: medians of
# the wall time of the whole command (start-up included), of its CPU time
# (user + system, of every process it started), and of the map alone (the
# JSON summary's elapsed_ms). The subcommand must print a JSON Lines summary
# with --json.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=${WORKERS:-2}
repeats=${REPEATS:-5}
delay_ms=${DELAY_MS:-1}
if (($# == 0)); then
    set -- square 0..2000000
fi

if [[ -n ${PROCPOOL:-} ]]; then
    bin=$PROCPOOL
else
    cargo build --release --quiet -p procpool-cli --features mpi
    bin=$PWD/target/release/procpool
fi
builds=(now)
declare -A binary=([now]=$bin)
if [[ -n ${BEFORE:-} ]]; then
    builds=(before now)
    binary[before]=$BEFORE
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
        kill "$link" 2>/dev/null || true
        ip netns del bench-h1 2>/dev/null || true
        ip netns del bench-h2 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Each rank's stdout to its own file, rank 0's summary read from there.
printf '#!/bin/sh\nexec "$@" >"%s/out.$OMPI_COMM_WORLD_RANK"\n' "$scratch" >"$scratch/to-file"
chmod +x "$scratch/to-file"

# Two hosts, h1 (192.0.2.1, rank 0 and half the workers) and h2 (192.0.2.2),
# when we may make network namespaces.
if [[ $(id -u) -eq 0 ]] && ip netns add bench-h1 2>/dev/null; then
    two_hosts=1
    ip netns add bench-h2
    python3 bench/link.py bench-ta bench-tb "$scratch/link-ready" "$scratch/delay" &
    link=$!
    for ((w = 0; w < 100; w++)); do
        [[ -e $scratch/link-ready ]] && break
        sleep 0.05
    done
    [[ -e $scratch/link-ready ]] || { echo "bench/link.py did not start" >&2; exit 1; }
    ip link set bench-ta netns bench-h1
    ip link set bench-tb netns bench-h2
    ip -n bench-h1 addr add 192.0.2.1/24 dev bench-ta
    ip -n bench-h2 addr add 192.0.2.2/24 dev bench-tb
    for h in bench-h1:bench-ta bench-h2:bench-tb; do
        ip -n "${h%:*}" link set "${h#*:}" mtu 65000 up
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

# The delay added to packets from h1 to h2, in milliseconds.
delay() {
    echo "$1" >"$scratch/delay"
    kill -USR1 "$link"
}

# One run: prints "row wall_ms cpu_ms map_ms", failing loudly if the run did.
# With `file` as its second word the summary is read from rank 0's file.
run() {
    local row=$1 from=$2
    shift 2
    local summary
    rm -f "$scratch"/out.*
    summary=$(/usr/bin/time -f "%e %U %S" -o "$scratch/time" "$@" | tail -n 1)
    if [[ $from == file ]]; then
        summary=$(tail -n 1 "$scratch/out.0")
    fi
    python3 -c '
import json, sys
summary = json.loads(sys.argv[3])["summary"]
if summary["failed"] or summary["not_run"]:
    sys.exit(f"{sys.argv[1]}: tasks failed: {summary}")
wall, user, system = map(float, sys.argv[2].split())
print(sys.argv[1], wall * 1e3, (user + system) * 1e3, summary["elapsed_ms"])
' "$row" "$(tail -n 1 "$scratch/time")" "$summary"
}

for ((i = 0; i < repeats; i++)); do
    run local stdout "$bin" -p "$workers" --json "$@" >>"$results"
    for build in "${builds[@]}"; do
        b=${binary[$build]}
        run "$build:mpi-tty" stdout "${mpirun[@]}" "$b" --backend mpi --json "$@" >>"$results"
        run "$build:mpi" file "${mpirun[@]}" "$scratch/to-file" "$b" --backend mpi --json "$@" >>"$results"
        if [[ -n ${two_hosts:-} ]]; then
            for ms in 0 "$delay_ms"; do
                delay "$ms"
                run "$build:mpi-2-hosts-${ms}ms" file "${two[@]}" "$scratch/to-file" "$b" \
                    --backend mpi --json "$@" >>"$results"
            done
            delay 0
        fi
    done
done

python3 - "$results" "$workers" "$repeats" "$*" <<'PY'
import statistics, sys
path, workers, repeats, command = sys.argv[1:]
rows = {}
for line in open(path):
    row, wall, cpu, map_ms = line.split()
    rows.setdefault(row, []).append((float(wall), float(cpu), float(map_ms)))
print(f"procpool {command}: {workers} workers, median of {repeats} interleaved runs")
print("| build | backend | wall ms | CPU ms | map ms | map vs local |")
print("|---|---|---|---|---|---|")
local_map = statistics.median(r[2] for r in rows["local"])
def name(backend):
    if backend == "local":
        return "local processes"
    if backend == "mpi-tty":
        return "MPI, one host, stdout through mpirun"
    if backend == "mpi":
        return "MPI, one host (shared memory)"
    ms = backend.removeprefix("mpi-2-hosts-").removesuffix("ms")
    return f"MPI, two hosts (TCP, namespaces), +{ms} ms round trip"
for row in rows:
    build, _, backend = row.rpartition(":")
    wall, cpu, map_ms = (statistics.median(r[i] for r in rows[row]) for i in range(3))
    print(f"| {build or '-'} | {name(backend)} | {wall:.0f} | {cpu:.0f} | {map_ms:.1f} | {map_ms / local_map:.2f}x |")
PY
