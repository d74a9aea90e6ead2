#!/usr/bin/env bash
# Per-job overhead of `procpool jobs` against `xargs -P 2 sh -c` (and GNU
# parallel when installed): N `true` jobs on 2 processes, several repeats
# interleaved, medians of wall time and of CPU time (all processes).
#   procpool       --no-logs (it still writes the status TSV), vs xargs
#   procpool+logs  two log files per job, vs xargs+logs writing the same files
#
#   bench/jobs.sh [JOBS=1000] [REPEATS=7]
#   PROCPOOL=target/release/procpool bench/jobs.sh
set -euo pipefail

jobs=${1:-1000}
repeats=${2:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
procpool=${PROCPOOL:-$here/target/release/procpool}
if [[ ! -x $procpool ]]; then
    echo "building $procpool" >&2
    (cd "$here" && cargo build --release --quiet --bin procpool)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((i = 0; i < jobs; i++)); do echo true; done > "$work/jobs.txt"

# "wall cpu" seconds of one run of "$@", output discarded; cpu is user + system
# time of the run and all its processes.
seconds() {
    local TIMEFORMAT='%R %U %S' t
    t=$({ time "$@" > /dev/null 2>&1; } 2>&1)
    awk '{ printf "%.4f %.4f", $1, $2 + $3 }' <<< "$t"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Each run writes its logs to a new directory: deleting thousands of files
# just before a run slows the file system down for the next one, so the old
# directories are removed only at the end.
run=0
logs() { echo "$work/logs-$run"; }
run_procpool() {
    "$procpool" -p 2 jobs "$work/jobs.txt" --status "$work/status.tsv" --no-logs
}
run_xargs() { xargs -P 2 -I{} sh -c {} < "$work/jobs.txt"; }
run_procpool_logs() {
    "$procpool" -p 2 jobs "$work/jobs.txt" --status "$work/status.tsv" --logs "$(logs)"
}
run_xargs_logs() {
    mkdir "$(logs)"
    xargs -P 2 -I{} sh -c '{} > "$0/$$.out" 2> "$0/$$.err"' "$(logs)" < "$work/jobs.txt"
}
run_parallel() { parallel -j 2 < "$work/jobs.txt"; }

tools=(procpool xargs procpool_logs xargs_logs)
command -v parallel > /dev/null && tools+=(parallel)

declare -A walls cpus
for ((r = 1; r <= repeats; r++)); do
    for tool in "${tools[@]}"; do
        run=$((run + 1))
        read -r wall cpu <<< "$(seconds "run_$tool")"
        walls[$tool]+="$wall "
        cpus[$tool]+="$cpu "
    done
done
rows=$(wc -l < "$work/status.tsv")
if [[ $rows -ne $((jobs + 1)) ]]; then
    echo "procpool wrote $rows status lines, expected $((jobs + 1))" >&2
    exit 1
fi

med() { tr ' ' '\n' <<< "$1" | grep . | median; }
echo "$jobs 'true' jobs, 2 processes, $repeats interleaved repeats, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); medians:"
printf '%-14s %8s %8s %9s %11s %9s   %s\n' tool wall ms/job "vs xargs" "cpu ms/job" "vs xargs" "all walls (s)"
base_wall=$(med "${walls[xargs]}")
base_cpu=$(med "${cpus[xargs]}")
for tool in "${tools[@]}"; do
    awk -v t="${tool/_/+}" -v w="$(med "${walls[$tool]}")" -v c="$(med "${cpus[$tool]}")" \
        -v n="$jobs" -v bw="$base_wall" -v bc="$base_cpu" -v all="${walls[$tool]}" \
        'BEGIN { printf "%-14s %8.3f %8.3f %8.2fx %11.3f %8.2fx   %s\n", t, w, w * 1000 / n, w / bw, c * 1000 / n, c / bc, all }'
done
